"""The trainer: a pure step, scan = loop, a frozen member stops changing, the learning rate is state."""

import jax
import jax.numpy as jnp
import numpy as np

from decompvae.data import make_batcher, make_pinwheel
from decompvae.networks import make_networks
from decompvae.objective import Hyperparams, make_objective
from decompvae.priors import make_prior
from decompvae.train import make_trainer, merge_state, split_state


def _trainer(poison_from=None):
    pin = make_pinwheel(jax.random.key(0), 50)
    batcher = make_batcher(pin.x_train, 32)
    enc, dec = make_networks("mlp", 2, data_shape=(2,), hidden=(16,))
    base = make_objective(enc, dec, likelihood="gaussian", prior=make_prior("isotropic", 2), regulariser="mmd")

    def objective(key, params, hyper, x):
        loss, terms = base(key, params, hyper, x)
        if poison_from is None:
            return loss, terms
        return jnp.where(hyper.beta > poison_from, jnp.nan, loss), terms  # hyper.beta grows in the test

    def init_params(key, hyper):
        k1, k2 = jax.random.split(key)
        return {"encoder": enc.init(k1, jnp.zeros((1, 2))), "decoder": dec.init(k2, jnp.zeros((1, 2)))}

    return make_trainer(objective, init_params, batcher.batch_at), batcher.data


HYPER = Hyperparams(beta=1.0, alpha=1.0)


def test_run_equals_repeated_steps():
    trainer, data = _trainer()
    state = trainer.init(jax.random.key(0), HYPER, 1e-3)
    scanned, info = jax.jit(trainer.run, static_argnums=3)(state, HYPER, data, 5)
    step = jax.jit(trainer.step)
    looped = state
    for _ in range(5):
        looped, last = step(looped, HYPER, data)
    assert int(scanned.step) == int(looped.step) == 5 and info.loss.shape == (5,)
    for a, b in zip(jax.tree.leaves(scanned.params), jax.tree.leaves(looped.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(info.loss[-1], last.loss, rtol=1e-6)


def test_the_step_is_a_pure_function_of_the_state():
    trainer, data = _trainer()
    state = trainer.init(jax.random.key(1), HYPER, 1e-3)
    a, _ = trainer.step(state, HYPER, data)
    b, _ = trainer.step(state, HYPER, data)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_learning_rate_is_state_and_scales_the_first_update():
    trainer, data = _trainer()
    moved = {}
    for lr in (1e-3, 2e-3):
        state = trainer.init(jax.random.key(2), HYPER, lr)
        assert float(state.opt_state.hyperparams["learning_rate"]) == np.float32(lr)
        new, _ = trainer.step(state, HYPER, data)
        moved[lr] = jax.tree.map(lambda n, o: n - o, new.params, state.params)
    for small, large in zip(jax.tree.leaves(moved[1e-3]), jax.tree.leaves(moved[2e-3])):
        np.testing.assert_allclose(2 * small, large, rtol=1e-4, atol=1e-9)  # Adam's first step is lr·sign-like


def test_a_member_that_diverges_is_frozen_and_its_step_recorded():
    trainer, data = _trainer(poison_from=1.5)
    state = trainer.init(jax.random.key(3), HYPER, 1e-3)
    state, _ = trainer.step(state, HYPER, data)
    poisoned = HYPER._replace(beta=2.0)
    frozen, info = trainer.step(state, poisoned, data)
    assert not bool(info.finite) and int(frozen.diverged_at) == 1 and int(frozen.step) == 2
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(frozen.params)):
        np.testing.assert_array_equal(a, b)
    healthy_again, _ = trainer.step(frozen, HYPER, data)  # a frozen member stays frozen
    assert int(healthy_again.diverged_at) == 1
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(healthy_again.params)):
        np.testing.assert_array_equal(a, b)


def test_split_and_merge_state_are_inverse():
    params = {"encoder": {"params": {"w": jnp.ones(2)}, "batch_stats": {"mean": jnp.zeros(2)}},
              "decoder": {"params": {"w": jnp.ones(3)}}, "prior": {"logits": jnp.zeros(2)}}
    trainable, stats = split_state(params)
    assert "batch_stats" not in trainable["encoder"] and list(stats) == ["encoder"]
    np.testing.assert_array_equal(stats["encoder"]["batch_stats"]["mean"], jnp.zeros(2))
    merged = merge_state(trainable, stats)
    assert jax.tree.structure(merged) == jax.tree.structure(params)
