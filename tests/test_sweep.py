"""Sweeps: the grid, sweep = singles, sharded = unsharded, chunked = whole, diverging members isolated."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import sweep as sw
from decompvae.data import make_batcher, make_pinwheel
from decompvae.networks import make_networks
from decompvae.objective import make_objective
from decompvae.priors import make_prior
from decompvae.train import make_trainer

STEPS = 30
TOL = 2e-5  # vmapped vs single programs differ only in float rounding


def _trainer(poison_beta=None, light=False):
    """The sweep tests' trainer: Student-t prior and MMD, or (``light``) the isotropic prior alone, which
    compiles in about half the time, for the tests that compile many programs."""
    pin = make_pinwheel(jax.random.key(0), 50)
    batcher = make_batcher(pin.x_train, 32)
    enc, dec = make_networks("mlp", 2, data_shape=(2,), hidden=(16,))
    objective = make_objective(
        enc, dec, likelihood="gaussian", prior=make_prior("isotropic" if light else "student_t", 2),
        regulariser=None if light else "mmd",
    )
    if poison_beta is not None:  # a member that diverges at its first step
        base = objective

        def objective(key, params, hyper, x):
            loss, terms = base(key, params, hyper, x)
            return jnp.where(hyper.beta == poison_beta, jnp.nan, loss), terms

    def init_params(key, hyper):
        k1, k2 = jax.random.split(key)
        return {"encoder": enc.init(k1, jnp.zeros((1, 2))), "decoder": dec.init(k2, jnp.zeros((1, 2)))}

    return make_trainer(objective, init_params, batcher.batch_at), batcher.data


GRID = sw.Grid(beta=[1.0, 4.0], alpha=[0.0, 2.0], prior={"df": [3.0]}, learning_rate=[1e-3, 3e-3], seed=[0, 1], mode="zip")


def test_grid_expansion():
    assert len(sw.Grid(beta=[1, 2, 4], seed=[0, 1])) == 6
    members = GRID.members()
    assert [m.beta for m in members] == [1.0, 4.0] and [m.seed for m in members] == [0, 1]
    assert [m.prior["df"] for m in members] == [3.0, 3.0]  # length-1 lists broadcast in zip mode
    with pytest.raises(ValueError, match="zip"):
        sw.Grid(beta=[1, 2], seed=[0, 1, 2], mode="zip")
    with pytest.raises(ValueError, match="beta"):
        sw.Grid(beta=[-1.0])
    with pytest.raises(ValueError, match="learning_rate"):
        sw.Grid(learning_rate=[0.0])


SIX = sw.Grid(beta=[1.0, 4.0, 8.0], seed=[0, 1], learning_rate=[1e-3], fixed_prior={"df": 3.0})


@pytest.fixture(scope="module")
def reference():
    """Six members trained by one unsharded, unchunked vmapped program."""
    trainer, data = _trainer()
    members = SIX.members()
    hyper, lrs, keys = sw.stack_members(members, SIX.fixed_prior)
    plain = sw.make_sweep(trainer, vectorize=len(members))
    state, info = sw.run_members(plain, sw.init_members(plain, keys, hyper, lrs), hyper, data, STEPS)
    return trainer, data, members, (hyper, lrs, keys), state, info


def test_sweep_equals_single_runs(reference):
    trainer, data, members, _, state, info = reference
    assert info.loss.shape == (6, STEPS)
    hyper, lrs, keys = sw.stack_members(members, SIX.fixed_prior)
    init, run = jax.jit(trainer.init), jax.jit(trainer.run, static_argnums=3)
    for i in (0, 5):
        h = jax.tree.map(lambda a: a[i], hyper)
        single, _ = run(init(keys[i], h, lrs[i]), h, data, STEPS)
        for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(state.params)):
            np.testing.assert_allclose(np.asarray(b)[i], a, atol=TOL, rtol=TOL)


def test_sharded_and_chunked_equal_unsharded(reference):
    assert len(jax.devices()) == 4, "conftest sets 4 simulated CPU devices"
    trainer, data, _, (hyper, lrs, keys), expected, _ = reference
    # 2 devices, one chunk; 4 devices with chunks of 4 (6 members: the last chunk padded).
    for mesh, chunk in [(sw.sweep_mesh(jax.devices()[:2]), None), (sw.sweep_mesh(), 4)]:
        sweep = sw.make_sweep(trainer, mesh=mesh, chunk_size=chunk)
        state, _ = sw.run_members(sweep, sw.init_members(sweep, keys, hyper, lrs), hyper, data, STEPS)
        for a, b in zip(jax.tree.leaves(expected.params), jax.tree.leaves(state.params)):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=TOL, rtol=TOL)


def test_looped_groups_equal_vmapped(reference):
    """``vectorize=4`` loops over groups of vmapped members: a group of 4 and a remainder of 2."""
    _check_looped_members(reference, vectorize=4, devices=1)


@pytest.mark.slow
@pytest.mark.parametrize("devices", [1, 2])
def test_looped_members_equal_vmapped(reference, devices):
    """``vectorize=1`` loops over the members one by one; sharded over 2 devices too."""
    _check_looped_members(reference, vectorize=1, devices=devices)


def _check_looped_members(reference, vectorize, devices):
    trainer, data, _, (hyper, lrs, keys), expected, expected_info = reference
    mesh = sw.sweep_mesh(jax.devices()[:devices]) if devices > 1 else None
    sweep = sw.make_sweep(trainer, mesh=mesh, vectorize=vectorize)
    state, info = sw.run_members(sweep, sw.init_members(sweep, keys, hyper, lrs), hyper, data, STEPS)
    np.testing.assert_allclose(np.asarray(info.loss), np.asarray(expected_info.loss), atol=TOL, rtol=TOL)
    for a, b in zip(jax.tree.leaves(expected.params), jax.tree.leaves(state.params)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=TOL, rtol=TOL)


def test_one_member_runs_bit_for_bit_as_trainer_run_and_as_in_the_loop(reference):
    """A sweep of one member (a shard of one, ``decompvae train``) is ``Trainer.run`` exactly, and so is the same
    member looped among others (``vectorize=1``): a member's numbers do not depend on the sharding, to the bit."""
    trainer, data, _, (hyper, lrs, keys), _, _ = reference
    looped = sw.make_sweep(trainer, vectorize=1)
    together, _ = sw.run_members(looped, sw.init_members(looped, keys, hyper, lrs), hyper, data, STEPS)
    run = jax.jit(trainer.run, static_argnums=3)
    for i in (0, 5):
        pick = lambda tree: jax.tree.map(lambda a: a[i:i + 1], tree)  # noqa: E731
        for vectorize in (1, None):
            sweep = sw.make_sweep(trainer, vectorize=vectorize)
            alone, _ = sw.run_members(sweep, sw.init_members(sweep, pick(keys), pick(hyper), pick(lrs)), pick(hyper),
                                      data, STEPS)
            for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(together.params)):
                np.testing.assert_array_equal(np.asarray(a)[0], np.asarray(b)[i])
        h = jax.tree.map(lambda a: a[i], hyper)
        single, _ = run(jax.jit(trainer.init)(keys[i], h, lrs[i]), h, data, STEPS)
        for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(alone.params)):
            np.testing.assert_array_equal(np.asarray(b)[0], np.asarray(a))


def test_resolve_vectorize():
    assert sw.resolve_vectorize(3) == 3
    assert sw.resolve_vectorize(None, "gpu") is None and sw.resolve_vectorize(0, "tpu") is None
    assert sw.resolve_vectorize(0, "cpu") == sw.CPU_VECTORIZE
    with pytest.raises(ValueError, match="vectorize"):
        sw.resolve_vectorize(-2)


def test_diverging_member_is_frozen_others_unaffected(reference):
    _, data, _, _, expected, _ = reference
    trainer, _ = _trainer(poison_beta=4.0)
    hyper, lrs, keys = sw.stack_members(SIX.members(), SIX.fixed_prior)
    sweep = sw.make_sweep(trainer)
    init = sw.init_members(sweep, keys, hyper, lrs)
    state, info = sw.run_members(sweep, init, hyper, data, STEPS)
    poisoned = np.asarray(hyper.beta) == 4.0
    np.testing.assert_array_equal(np.asarray(state.diverged_at) == 0, poisoned)
    np.testing.assert_array_equal(np.asarray(info.finite).all(axis=1), ~poisoned)
    for a, b, c in zip(jax.tree.leaves(init.params), jax.tree.leaves(state.params), jax.tree.leaves(expected.params)):
        np.testing.assert_array_equal(np.asarray(b)[poisoned], np.asarray(a)[poisoned])  # frozen at the start
        np.testing.assert_allclose(np.asarray(b)[~poisoned], np.asarray(c)[~poisoned], atol=TOL, rtol=TOL)



def test_memory_estimate_and_chunk_size():
    """XLA's footprint grows per member; looped members cost less; the chunk is the budget ÷ one member."""
    trainer, data = _trainer(light=True)
    hyper, lrs, keys = sw.stack_members(sw.Grid(beta=[1.0, 4.0]).members())
    state = jax.vmap(trainer.init)(jax.vmap(jax.random.wrap_key_data)(keys), hyper, lrs)
    vmapped = [sw.program_bytes(trainer, state, hyper, data, 5, n, vectorize=4) for n in (1, 2, 4)]
    looped = sw.program_bytes(trainer, state, hyper, data, 5, 4, vectorize=1)
    assert 0 < vmapped[0] < vmapped[1] < vmapped[2] and looped < vmapped[2]
    per_member = vmapped[1] - vmapped[0]
    budget = 10 * per_member
    chunk = sw.estimate_chunk_size(trainer, state, hyper, data, 5, memory_bytes=budget, vectorize=2)
    assert chunk == int(0.8 * budget) // per_member == 8
    assert sw.chunk_for_budget(per_member, budget, n_devices=3) == 24  # a multiple of the devices
    assert sw.chunk_for_budget(per_member, per_member // 2, n_devices=3) == 3  # at least one member per device
