"""The published networks and BatchNorm statistics carried in the train state.

dSprites: layer shapes, parameter counts, the linear dense 128. Fashion-MNIST
(DCGAN style): shapes, no conv bias in the body, N(0, 0.02²) kernels,
formulations equal. BatchNorm: a training step sets the running statistics to
flax's momentum update of the batch statistics (momentum 0.9 = PyTorch's 0.1,
epsilon 1e-5) of the very pass that gave the loss, the optimiser never moves
them, evaluation uses them, divergence freezes them, and a vmapped sweep
equals single runs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import runner
from decompvae import sweep as sw
from decompvae.config import load_config
from decompvae.likelihoods import make_likelihood
from decompvae.networks import Conv2D, ConvTranspose2D, make_networks
from decompvae.networks.models import BN_EPSILON, BN_MOMENTUM, DCGANDecoder, DCGANEncoder
from decompvae.objective import Hyperparams, make_objective
from decompvae.posteriors import make_posterior
from decompvae.priors import make_prior
from decompvae.train import make_trainer, split_state

FWD_TOL = 1e-5  # float32, relative to the output scale
GRAD_TOL = 1e-4  # float32 gradients, relative to the gradient scale
STATS_TOL = 1e-5  # running statistics recomputed by hand in float32
SWEEP_TOL = 2e-5  # vmapped vs single programs differ only in float rounding
INIT_STD_RTOL = 0.02  # std of 0.02 estimated from ~10⁵ draws: relative error ~0.2%
D, BASE, BATCH = 3, 4, 6  # small fashion networks for the BatchNorm tests


def _close(a, b, tol):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.max(np.abs(b))))
    np.testing.assert_allclose(a, b, rtol=0, atol=tol * scale)


def _count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


# --------------------------------------------------------------------------
# The published dSprites network.


def test_dsprites_published_shapes_and_counts(key):
    enc, dec = make_networks("dsprites", 10)
    p_enc = jax.eval_shape(enc.init, key, jnp.zeros((1, 64, 64, 1)))["params"]
    p_dec = jax.eval_shape(dec.init, key, jnp.zeros((1, 10)))["params"]
    enc_kernels = {
        "conv0": (4, 4, 1, 32), "conv1": (4, 4, 32, 32), "conv2": (4, 4, 32, 64), "conv3": (4, 4, 64, 64),
        "dense0": (1024, 128), "loc": (128, 10), "raw": (128, 10),
    }
    dec_kernels = {
        "dense0": (10, 128), "project": (128, 1024),
        "deconv0": (4, 4, 64, 64), "deconv1": (4, 4, 64, 64), "deconv2": (4, 4, 64, 32), "deconv3": (4, 4, 32, 1),
    }
    for params, kernels in ((p_enc, enc_kernels), (p_dec, dec_kernels)):
        assert set(params) == set(kernels)
        for name, shape in kernels.items():
            assert params[name]["kernel"].shape == shape, name
            assert params[name]["bias"].shape == (shape[-1],), name
    # Kernels plus biases, layer by layer (PyTorch's layers all have a bias).
    assert _count(p_enc) == sum(int(np.prod(s)) + s[-1] for s in enc_kernels.values()) == 249_172
    assert _count(p_dec) == sum(int(np.prod(s)) + s[-1] for s in dec_kernels.values()) == 298_017
    x, z = jnp.zeros((2, 64, 64, 1)), jnp.zeros((2, 10))
    assert jax.eval_shape(lambda k: enc.apply(enc.init(k, x), x), key)[0].shape == (2, 10)  # shapes: nothing compiled
    assert jax.eval_shape(lambda k: dec.apply(dec.init(k, z), z), key).shape == (2, 64, 64, 1)


def test_dsprites_dense_128_is_linear(key):
    """With dense0's pre-activation h = −3 everywhere, loc = h·Σ W_loc + b_loc (a ReLU would give b_loc)."""
    enc, _ = make_networks("dsprites", 10)
    x = jax.random.uniform(key, (2, 64, 64, 1))
    variables = enc.init(key, x)
    p = variables["params"]
    p["dense0"] = {"kernel": jnp.zeros_like(p["dense0"]["kernel"]), "bias": jnp.full((128,), -3.0)}
    loc, raw = enc.apply(variables, x)
    h = jnp.full((2, 128), -3.0)
    _close(loc, h @ p["loc"]["kernel"] + p["loc"]["bias"], FWD_TOL)
    _close(raw, h @ p["raw"]["kernel"] + p["raw"]["bias"], FWD_TOL)
    assert not np.allclose(loc, p["loc"]["bias"])
    # conv32 keeps its ReLU after the dense layer.
    enc32, _ = make_networks("conv32", 4)
    x32 = jax.random.uniform(key, (2, 32, 32, 1))
    v32 = enc32.init(key, x32)
    q = v32["params"]
    q["dense0"] = {"kernel": jnp.zeros_like(q["dense0"]["kernel"]), "bias": jnp.full((256,), -3.0)}
    _close(enc32.apply(v32, x32)[0], jnp.broadcast_to(q["loc"]["bias"], (2, 4)), FWD_TOL)


# --------------------------------------------------------------------------
# The published Fashion-MNIST (DCGAN) network.


def test_fashion_shapes_bias_and_init(key):
    d = 50
    enc, dec = make_networks("fashion", d)
    x, z = jnp.zeros((3, 32, 32, 1)), jnp.zeros((3, d))
    v_enc, v_dec = jax.jit(enc.init)(key, x), jax.jit(dec.init)(jax.random.fold_in(key, 1), z)  # not op by op
    loc, raw = jax.eval_shape(enc.apply, v_enc, x)  # shapes: nothing compiled
    assert loc.shape == raw.shape == (3, d)
    assert jax.eval_shape(dec.apply, v_dec, z).shape == (3, 32, 32, 1)
    kernels = lambda p: {k: v["kernel"].shape for k, v in p.items() if "kernel" in v}  # noqa: E731
    assert kernels(v_enc["params"]) == {
        "conv0": (4, 4, 1, 32), "conv1": (4, 4, 32, 64), "conv2": (4, 4, 64, 128),
        "loc": (4, 4, 128, d), "raw": (4, 4, 128, d),
    }
    assert kernels(v_dec["params"]) == {
        "deconv0": (4, 4, d, 128), "deconv1": (4, 4, 128, 64), "deconv2": (4, 4, 64, 32), "deconv3": (4, 4, 32, 1),
    }
    # No bias in the convolutions of the body; the heads keep PyTorch's default
    # (zero-initialised) bias, as in the published nn.Conv2d(4f, D, 4).
    for params in (v_enc["params"], v_dec["params"]):
        for name, layer in params.items():
            if name.startswith(("conv", "deconv")):
                assert set(layer) == {"kernel"}, name
    for head in ("loc", "raw"):
        np.testing.assert_array_equal(v_enc["params"][head]["bias"], np.zeros(d))
    # BatchNorm: affine parameters in "params", running statistics in "batch_stats".
    stats = {k: jax.tree.map(jnp.shape, v) for k, v in {**v_enc["batch_stats"], **v_dec["batch_stats"]}.items()}
    assert set(v_enc["batch_stats"]) == {"bn1", "bn2"} and set(v_dec["batch_stats"]) == {"bn0", "bn1", "bn2"}
    assert stats["bn0"] == {"mean": (128,), "var": (128,)}
    np.testing.assert_array_equal(v_dec["batch_stats"]["bn0"]["var"], np.ones(128))
    # Kernels ~ N(0, 0.02²): deconv0 has 4·4·50·128 = 102 400 entries.
    w = np.asarray(v_dec["params"]["deconv0"]["kernel"])
    np.testing.assert_allclose(w.std(), 0.02, rtol=INIT_STD_RTOL)
    assert abs(w.mean()) < 5 * 0.02 / np.sqrt(w.size)


def test_fashion_formulations_agree_in_train_mode(key):
    """matmul vs lax (and phase) on the published fashion network: outputs, new statistics, gradients."""
    nets = {impl: make_networks("fashion", 8, conv_impl=impl) for impl in ("lax", "phase", "matmul")}
    x = jax.random.uniform(key, (4, 32, 32, 1))
    objective = {
        impl: make_objective(enc, dec, likelihood=make_likelihood("laplace", scale=0.1),
                             prior=make_prior("isotropic", 8), posterior="gaussian_softplus", train=True)
        for impl, (enc, dec) in nets.items()
    }
    enc, dec = nets["lax"]
    params = {"encoder": enc.init(key, x), "decoder": dec.init(jax.random.fold_in(key, 1), jnp.zeros((1, 8)))}

    def value_and_grad(impl):
        f = lambda p: objective[impl](jax.random.key(3), p, Hyperparams(), x)  # noqa: E731
        return jax.jit(jax.value_and_grad(f, has_aux=True))(params)

    (loss_ref, terms_ref), grads_ref = value_and_grad("lax")
    assert set(terms_ref.state_updates) == {"encoder", "decoder"}
    for impl in ("phase", "matmul"):
        (loss, terms), grads = value_and_grad(impl)
        _close(loss, loss_ref, FWD_TOL)
        for a, b in zip(jax.tree.leaves(terms.state_updates), jax.tree.leaves(terms_ref.state_updates)):
            _close(a, b, FWD_TOL)
        for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_ref)):
            _close(a, b, GRAD_TOL)


# --------------------------------------------------------------------------
# BatchNorm state.


def _small():
    enc = DCGANEncoder(D, base=BASE, conv_impl="lax")
    dec = DCGANDecoder(base=BASE, latent_dim=D, conv_impl="lax")
    kw = dict(likelihood=make_likelihood("laplace", scale=0.1), prior=make_prior("isotropic", D),
              posterior="gaussian_softplus")
    return enc, dec, kw


def _init_params(enc, dec):
    def init_params(key, hyper):
        k1, k2 = jax.random.split(key)
        params = {"encoder": enc.init(k1, jnp.zeros((1, 32, 32, 1))), "decoder": dec.init(k2, jnp.zeros((1, D)))}
        # Non-trivial running statistics, so that the momentum's old term shows.
        for net in ("encoder", "decoder"):
            params[net]["batch_stats"] = jax.tree.map(lambda a: a + 0.5, params[net]["batch_stats"])
        return params

    return init_params


def _x(seed=0):
    return jax.random.uniform(jax.random.key(seed), (BATCH, 32, 32, 1))


def _conv_outputs(module, variables, inputs):
    """Every (transposed) convolution's output in a training-mode pass, by layer name."""
    _, state = module.apply(
        variables, inputs, train=True, mutable=["batch_stats", "intermediates"],
        capture_intermediates=lambda mdl, method: isinstance(mdl, (Conv2D, ConvTranspose2D)),
    )
    return {name: v["__call__"][0] for name, v in state["intermediates"].items()}


def _momentum_update(old, activations):
    """flax nn.BatchNorm: running ← m·running + (1 − m)·batch, biased variance over [b, h, w]."""
    a = np.asarray(activations, np.float64)
    mean, var = a.mean(axis=(0, 1, 2)), a.var(axis=(0, 1, 2))
    m = BN_MOMENTUM
    return {"mean": m * np.asarray(old["mean"]) + (1 - m) * mean, "var": m * np.asarray(old["var"]) + (1 - m) * var}


def _expected_stats(enc, dec, kw, params, key, x):
    """The running statistics a training pass of the objective at (key, x) must produce, by hand."""
    acts = _conv_outputs(enc, params["encoder"], x)
    enc_new = {f"bn{i}": _momentum_update(params["encoder"]["batch_stats"][f"bn{i}"], acts[f"conv{i}"])
               for i in (1, 2)}
    # The decoder's pass is on the sample z the objective draws: key → (key_z, key_d), z ~ q(z|x).
    (loc, raw), _ = enc.apply(params["encoder"], x, train=True, mutable=["batch_stats"])
    z = make_posterior(kw["posterior"])(loc, raw).sample(seed=jax.random.split(key)[0], sample_shape=(1,))[0]
    acts = _conv_outputs(dec, params["decoder"], z)
    dec_new = {f"bn{i}": _momentum_update(params["decoder"]["batch_stats"][f"bn{i}"], acts[f"deconv{i}"])
               for i in (0, 1, 2)}
    out, _ = dec.apply(params["decoder"], z, train=True, mutable=["batch_stats"])
    return {"encoder": {"batch_stats": enc_new}, "decoder": {"batch_stats": dec_new}}, kw["likelihood"](x, out)


def test_momentum_matches_the_published_pytorch_settings():
    assert BN_MOMENTUM == 0.9 and BN_EPSILON == 1e-5  # PyTorch BatchNorm2d(momentum=0.1, eps=1e-5)
    enc, dec, _ = _small()
    bns = [enc.momentum, dec.momentum, enc.epsilon, dec.epsilon]
    assert bns == [0.9, 0.9, 1e-5, 1e-5]


@pytest.mark.parametrize("jit", (False, True))
def test_objective_returns_the_momentum_update_of_its_own_pass(jit):
    enc, dec, kw = _small()
    params = _init_params(enc, dec)(jax.random.key(1), None)
    key, x = jax.random.key(7), _x()
    objective = make_objective(enc, dec, train=True, **kw)
    loss, terms = (jax.jit(objective) if jit else objective)(key, params, Hyperparams(), x)
    expected, log_lik = _expected_stats(enc, dec, kw, params, key, x)
    assert jax.tree.structure(terms.state_updates) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(terms.state_updates), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=STATS_TOL, atol=STATS_TOL)
    # The decoder statistics come from the pass that gave the reconstruction term.
    np.testing.assert_allclose(terms.recon, log_lik, rtol=FWD_TOL)
    # Evaluation mode: no state, the running averages used.
    _, eval_terms = make_objective(enc, dec, **kw)(key, params, Hyperparams(), x)
    assert eval_terms.state_updates == {}
    assert not np.allclose(eval_terms.recon, terms.recon)


def test_networks_without_batch_stats_are_unaffected_by_train(key):
    enc, dec = make_networks("mlp", 2, data_shape=(2,), hidden=(8,))
    params = {"encoder": enc.init(key, jnp.zeros((1, 2))), "decoder": dec.init(key, jnp.zeros((1, 2)))}
    x = jax.random.normal(key, (5, 2))
    kw = dict(likelihood="gaussian", prior=make_prior("isotropic", 2), regulariser="mmd")
    loss_t, terms_t = make_objective(enc, dec, train=True, **kw)(key, params, Hyperparams(), x)
    loss_e, terms_e = make_objective(enc, dec, **kw)(key, params, Hyperparams(), x)
    assert terms_t.state_updates == terms_e.state_updates == {}
    np.testing.assert_array_equal(loss_t, loss_e)
    np.testing.assert_array_equal(terms_t.recon, terms_e.recon)


def test_eval_mode_uses_the_running_averages():
    enc, dec, kw = _small()
    params = _init_params(enc, dec)(jax.random.key(1), None)
    x = _x()
    train_out, _ = enc.apply(params["encoder"], x, train=True, mutable=["batch_stats"])
    eval_out = enc.apply(params["encoder"], x)
    assert not np.allclose(train_out[0], eval_out[0])
    # Per example: an image's code does not depend on the rest of the batch.
    _close(enc.apply(params["encoder"], x[:1])[0], eval_out[0][:1], FWD_TOL)
    # With the running averages set to this batch's (biased) statistics, evaluation equals training.
    acts = _conv_outputs(enc, params["encoder"], x)
    stats = {f"bn{i}": {"mean": jnp.mean(acts[f"conv{i}"], axis=(0, 1, 2)),
                        "var": jnp.var(acts[f"conv{i}"], axis=(0, 1, 2))} for i in (1, 2)}
    matched = {"params": params["encoder"]["params"], "batch_stats": stats}
    for a, b in zip(enc.apply(matched, x), train_out):
        _close(a, b, 1e-4)


def test_trainer_step_replaces_the_statistics_and_the_optimizer_never_moves_them():
    enc, dec, kw = _small()
    x = _x()
    batch = lambda key, step, data: data  # noqa: E731 (one fixed batch)
    objective = make_objective(enc, dec, train=True, **kw)
    trainer = make_trainer(objective, _init_params(enc, dec), batch)
    hyper = Hyperparams()
    state = jax.jit(trainer.init)(jax.random.key(0), hyper, 1e-3)
    # The optimiser state holds moments for the trainable variables only.
    trainable, stats = split_state(state.params)
    assert set(stats) == {"encoder", "decoder"}
    mu = state.opt_state.inner_state[0].mu
    assert jax.tree.structure(mu) == jax.tree.structure(trainable)
    new, info = jax.jit(trainer.step)(state, hyper, x)
    assert bool(info.finite)
    # The trainer's key for step 0, and the objective evaluated by hand there.
    _, key_model = jax.random.split(jax.random.wrap_key_data(state.key))
    key = jax.random.fold_in(key_model, 0)
    _, terms = objective(key, state.params, hyper, x)
    expected, _ = _expected_stats(enc, dec, kw, state.params, key, x)
    for net in ("encoder", "decoder"):
        for a, b, c in zip(jax.tree.leaves(new.params[net]["batch_stats"]),
                           jax.tree.leaves(terms.state_updates[net]["batch_stats"]),
                           jax.tree.leaves(expected[net]["batch_stats"])):
            np.testing.assert_allclose(a, b, rtol=STATS_TOL, atol=STATS_TOL)
            np.testing.assert_allclose(a, c, rtol=STATS_TOL, atol=STATS_TOL)
    # An objective that hands back the old statistics: they stay bit-for-bit while the weights move.
    def keep_stats(key, params, hyper, x):
        loss, terms = objective(key, params, hyper, x)
        return loss, terms._replace(state_updates={n: {"batch_stats": params[n]["batch_stats"]} for n in stats})

    kept, _ = jax.jit(make_trainer(keep_stats, _init_params(enc, dec), batch).step)(state, hyper, x)
    for a, b in zip(jax.tree.leaves(split_state(kept.params)[1]), jax.tree.leaves(stats)):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(kept.params["encoder"]["params"]["conv1"]["kernel"],
                           state.params["encoder"]["params"]["conv1"]["kernel"])


def test_trainer_rejects_an_objective_without_state_updates():
    enc, dec, kw = _small()
    trainer = make_trainer(make_objective(enc, dec, **kw), _init_params(enc, dec), lambda k, s, d: d)
    state = trainer.init(jax.random.key(0), Hyperparams(), 1e-3)
    with pytest.raises(ValueError, match="train=True"):
        jax.jit(trainer.step)(state, Hyperparams(), _x())


def test_divergence_freezes_the_statistics():
    enc, dec, kw = _small()
    base = make_objective(enc, dec, train=True, **kw)

    def poisoned(key, params, hyper, x):
        loss, terms = base(key, params, hyper, x)
        return jnp.where(hyper.beta > 2.0, jnp.nan, loss), terms

    trainer = make_trainer(poisoned, _init_params(enc, dec), lambda k, s, d: d)
    hyper = Hyperparams(beta=jnp.float32(4.0))
    state = trainer.init(jax.random.key(0), hyper, 1e-3)
    new, _ = jax.jit(trainer.run, static_argnums=3)(state, hyper, _x(), 2)
    assert int(new.diverged_at) == 0
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(a, b)


def test_sweep_of_two_equals_single_runs():
    enc, dec, kw = _small()
    data = jax.random.uniform(jax.random.key(5), (4 * BATCH, 32, 32, 1))

    def batch(key, step, data):  # a pure, key-dependent batch
        return data[jax.random.choice(jax.random.fold_in(key, step), data.shape[0], (BATCH,), replace=False)]

    trainer = make_trainer(make_objective(enc, dec, train=True, **kw), _init_params(enc, dec), batch)
    grid = sw.Grid(beta=[1.0, 4.0], seed=[0, 1], learning_rate=[1e-3], mode="zip")
    hyper, lrs, keys = sw.stack_members(grid.members())
    sweep = sw.make_sweep(trainer)
    steps = 3
    state, _ = sw.run_members(sweep, sw.init_members(sweep, keys, hyper, lrs), hyper, data, steps)
    init, run = jax.jit(trainer.init), jax.jit(trainer.run, static_argnums=3)
    for i in range(2):
        h = jax.tree.map(lambda a: a[i], hyper)
        single, _ = run(init(keys[i], h, lrs[i]), h, data, steps)
        assert jax.tree.structure(single.params) == jax.tree.structure(jax.tree.map(lambda a: a[0], state.params))
        for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(state.params)):
            np.testing.assert_allclose(np.asarray(b)[i], a, atol=SWEEP_TOL, rtol=SWEEP_TOL)
        # The statistics moved away from their initial values.
        start = init(keys[i], h, lrs[i]).params["decoder"]["batch_stats"]["bn0"]["mean"]
        assert not np.allclose(single.params["decoder"]["batch_stats"]["bn0"]["mean"], start)


# --------------------------------------------------------------------------
# Wiring: config and runner.


def test_config_checks_the_fashion_data(tmp_path):
    ok = ["model.network=fashion", "data.name=digits", "data.image_size=32", f"output_dir={tmp_path}"]
    assert load_config(None, ok).model.network == "fashion"
    with pytest.raises(ValueError, match="32×32"):
        load_config(None, ["model.network=fashion", "data.name=digits", f"output_dir={tmp_path}"])
    with pytest.raises(ValueError, match="32×32"):
        load_config(None, ["model.network=fashion", f"output_dir={tmp_path}"])


def test_runner_trains_and_evaluates_the_fashion_network(tmp_path):
    config = load_config(None, [
        "model.network=fashion", "model.latent_dim=4", "model.likelihood=laplace",
        "model.posterior=gaussian_softplus", "data.name=digits", "data.image_size=32", "data.eval_points=16",
        "train.batch_size=16", "train.steps=2", f"output_dir={tmp_path}",
    ])
    built = runner.build(config)
    hyper, lrs, keys = sw.stack_members(built.members, built.fixed_prior)
    sweep = sw.make_sweep(built.trainer)
    state0 = sw.init_members(sweep, keys, hyper, lrs)
    assert set(state0.params["encoder"]) == {"params", "batch_stats"}
    state, info = sw.run_members(sweep, state0, hyper, built.data.data, 2)
    assert np.all(np.asarray(info.finite))
    assert not np.allclose(state.params["encoder"]["batch_stats"]["bn1"]["var"],
                           state0.params["encoder"]["batch_stats"]["bn1"]["var"])
    member = jax.tree.map(lambda a: a[0], state.params)
    h = jax.tree.map(lambda a: a[0], hyper)
    x = jnp.asarray(built.data.eval_x)
    _, eval_terms = built.eval_objective(jax.random.key(0), member, h, x)
    assert eval_terms.state_updates == {}
    # Evaluation uses the running averages: the same as make_model in its default (evaluation) mode.
    np.testing.assert_allclose(built.model(member, h, x).posterior.mean(), built.encode(member, x)[0])
    rows = runner.summarise(built, jax.device_get(state), jax.device_get(hyper), ["m0"])
    assert np.isfinite(rows[0]["eval_loss"])
