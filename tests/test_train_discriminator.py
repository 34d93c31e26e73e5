"""Trainers with an adversary (FactorVAE's discriminator) and step-dependent regularisers:
the one-pass step equals separate updates, sweeps over γ equal single runs, plain trainers keep
their state and checkpoint layout, and the capacity schedule sees the step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decompvae import sweep as sw
from decompvae.checkpoint import Checkpointer
from decompvae.data import make_batcher, make_pinwheel
from decompvae.regularisers import make_regulariser
from decompvae.penalties import capacity_schedule
from decompvae.networks import make_networks
from decompvae.objective import Hyperparams, make_objective
from decompvae.regularisers import adversaries, make_regularisers
from decompvae.priors import make_prior
from decompvae.train import AdversaryState, TrainState, make_optimizer, make_trainer

STEPS = 6
TOL = 2e-5  # vmapped vs single programs differ only in float rounding


def _setup(divergence, regulariser_options=None):
    pin = make_pinwheel(jax.random.key(0), 50)
    batcher = make_batcher(pin.x_train, 32)
    enc, dec = make_networks("mlp", 2, data_shape=(2,), hidden=(16,))
    regs = make_regularisers(divergence, regulariser_options)
    objective = make_objective(enc, dec, likelihood="gaussian", prior=make_prior("isotropic", 2), regulariser=regs)

    def init_params(key, hyper):
        k1, k2 = jax.random.split(key)
        return {"encoder": enc.init(k1, jnp.zeros((1, 2))), "decoder": dec.init(k2, jnp.zeros((1, 2)))}

    trainer = make_trainer(objective, init_params, batcher.batch_at, adversaries=adversaries(regs))
    return trainer, objective, batcher, regs


FACTOR_VAE = {"fv": "factor_vae", "dip": "dip_offdiagonal"}
FACTOR_VAE_OPTIONS = {"fv": {"latent_dim": 2, "hidden": (16, 16)}}


def test_one_step_equals_separate_vae_and_discriminator_updates():
    trainer, objective, batcher, regs = _setup(FACTOR_VAE, FACTOR_VAE_OPTIONS)
    hyper = Hyperparams(beta=1.0, alpha={"fv": 10.0, "dip": 1.0})
    state = jax.jit(trainer.init)(jax.random.key(3), hyper, 1e-3)
    assert isinstance(state.adversary, AdversaryState) and set(state.adversary.params) == {"fv"}
    new, info = jax.jit(trainer.step)(state, hyper, batcher.data)
    # The same batch, key and step the trainer uses.
    key_data, key_model = jax.random.split(jax.random.wrap_key_data(state.key))
    x = batcher.batch_at(key_data, state.step, batcher.data)
    key = jax.random.fold_in(key_model, state.step)
    h = hyper._replace(step=state.step)
    fixed = state.adversary.params

    # The VAE: the objective's gradient with the discriminator held fixed, then AMSGrad.
    def vae_loss(params):
        return objective(key, {**params, "adversary": fixed}, h, x)[0]

    grads = jax.jit(jax.grad(vae_loss))(state.params)
    updates, _ = make_optimizer().update(grads, state.opt_state, state.params)
    for a, b in zip(jax.tree.leaves(optax.apply_updates(state.params, updates)), jax.tree.leaves(new.params)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)

    # The discriminator: its own loss's gradient (z held fixed), then its own Adam.
    def disc_loss(adv):
        return objective(key, {**state.params, "adversary": adv}, h, x)[1].adversary_loss["fv"]

    disc_value, adv_grads = jax.jit(jax.value_and_grad(disc_loss))(fixed)
    opt = regs.named["fv"].adversary.optimizer
    adv_updates, _ = opt.update(adv_grads["fv"], state.adversary.opt_state["fv"], fixed["fv"])
    expected = optax.apply_updates(fixed["fv"], adv_updates)
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(new.adversary.params)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(info.adversary_loss["fv"], disc_value, rtol=1e-6)
    assert set(info.regulariser) == {"fv", "dip"} and bool(info.finite)


@pytest.mark.slow  # ≈ 10 s: four compilations
def test_sweep_over_gamma_equals_single_runs():
    trainer, _, batcher, _ = _setup(FACTOR_VAE, FACTOR_VAE_OPTIONS)
    grid = sw.Grid(alpha={"fv": [0.0, 20.0], "dip": [1.0]}, seed=[0, 1], learning_rate=[1e-3])
    members = grid.members()
    assert [m.alpha["fv"] for m in members] == [0.0, 0.0, 20.0, 20.0]
    hyper, lrs, keys = sw.stack_members(members)
    assert set(hyper.alpha) == {"fv", "dip"} and hyper.alpha["fv"].shape == (4,)
    sweep = sw.make_sweep(trainer)
    state, info = sw.run_members(sweep, sw.init_members(sweep, keys, hyper, lrs), hyper, batcher.data, STEPS)
    assert info.adversary_loss["fv"].shape == (4, STEPS)
    init, run = jax.jit(trainer.init), jax.jit(trainer.run, static_argnums=3)
    for i in (2,):  # γ = 20, seed 0
        h = jax.tree.map(lambda a: a[i], hyper)
        single, _ = run(init(keys[i], h, lrs[i]), h, batcher.data, STEPS)
        for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(state)):
            np.testing.assert_allclose(np.asarray(b)[i], a, atol=TOL, rtol=TOL)


def test_plain_trainer_state_and_checkpoint_layout_unchanged(tmp_path):
    trainer, _, batcher, _ = _setup("mmd")
    state = jax.jit(trainer.init)(jax.random.key(0), Hyperparams(alpha=1.0), 1e-3)
    assert state.adversary is None
    assert list(state._asdict()) == ["step", "params", "opt_state", "key", "diverged_at"]
    assert TrainState(**state._asdict()) == state
    # A state with an adversary round-trips through the checkpointer as it is.
    adv_trainer, _, _, _ = _setup(FACTOR_VAE, FACTOR_VAE_OPTIONS)
    hyper = Hyperparams(alpha={"fv": 1.0, "dip": 1.0})
    adv_state = jax.jit(adv_trainer.init)(jax.random.key(0), hyper, 1e-3)
    adv_state = jax.jit(adv_trainer.step)(adv_state, hyper, batcher.data)[0]
    for i, s in enumerate((state, adv_state)):
        writer = Checkpointer(tmp_path / str(i), writer=True)
        writer.save(int(s.step), s)
        restored = Checkpointer(tmp_path / str(i)).restore(s, int(s.step))
        assert jax.tree.structure(restored) == jax.tree.structure(s)
        for a, b in zip(jax.tree.leaves(s), jax.tree.leaves(restored)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_capacity_schedule_follows_the_training_step():
    trainer, _, batcher, _ = _setup({"capacity": "capacity"}, {"capacity": {"num_steps": 4}})
    hyper = Hyperparams(beta=0.0, alpha={"capacity": 5.0}, regulariser_params={"capacity": {"c_max": 2.0}})
    state = jax.jit(trainer.init)(jax.random.key(0), hyper, 1e-3)
    _, info = jax.jit(trainer.run, static_argnums=3)(state, hyper, batcher.data, STEPS)
    capacity = capacity_schedule(jnp.arange(STEPS), 2.0, 4)  # 0, 0.5, 1, 1.5, 2, 2
    np.testing.assert_allclose(info.regulariser["capacity"], jnp.abs(info.kl - capacity), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info.loss, -info.recon + 5.0 * info.regulariser["capacity"], rtol=1e-5)


def test_make_regulariser_factor_vae_needs_latent_dim():
    with pytest.raises(TypeError, match="latent_dim"):
        make_regulariser("factor_vae")
    with pytest.raises(ValueError, match="latent_dim"):
        make_regulariser("factor_vae", latent_dim=0)
