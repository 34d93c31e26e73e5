"""Mixed precision (``model.compute_dtype = "bfloat16"``): bfloat16 products, float32 parameters, state and losses."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae.config import ModelConfig
from decompvae.data import make_batcher
from decompvae.networks import ConvDecoder, ConvEncoder, conv2d, conv_transpose2d, make_networks
from decompvae.objective import Hyperparams, make_objective
from decompvae.priors import make_prior
from decompvae.train import make_trainer

STEPS = 200
D, BATCH, SIDE = 4, 16, 16
#: Bound on the relative difference of the bfloat16 and float32 loss curves (means over windows
#: of 20 steps, after the first 20). Measured on this model (2-core CPU, jax 0.10.2, 2026-12-01):
#: at most 0.0137 with ``matmul`` and 0.0035 with ``lax`` (single steps: 0.025 / 0.014). bfloat16
#: keeps 8 significant bits, a relative rounding of 2⁻⁹ ≈ 0.002 per operand; with float32 sums the
#: loss of one step moves by about that, and over 200 Adam steps the two trajectories drift apart
#: by a few times more. 0.05 is 3.6× the larger measured drift and still 12× smaller than what the
#: loss falls over the run (60 %): a run that stops training or diverges under bfloat16 fails it.
LOSS_CURVE_RTOL = 0.05
#: Forward outputs of one layer, relative to their scale: bfloat16 operands (2⁻⁹ each), float32 sums.
LAYER_RTOL = 2e-2


def _images(n: int) -> np.ndarray:
    """``[n, 16, 16, 1]`` images in [0, 1]: one bright rectangle each at a random place and size, blurred edges."""
    rng = np.random.default_rng(1)
    grid = np.arange(SIDE) + 0.5
    lo = rng.uniform(0, SIDE - 4, (n, 2))
    hi = lo + rng.uniform(3, 8, (n, 2))
    inside = [np.clip(np.minimum(grid - lo[:, i:i + 1], hi[:, i:i + 1] - grid) + 0.5, 0, 1) for i in range(2)]
    return (inside[0][:, :, None] * inside[1][:, None, :])[..., None].astype(np.float32)


def _trainer(conv_impl: str, dtype):
    shape = (SIDE, SIDE, 1)
    kw = dict(image_shape=shape, channels=(8, 16), hidden=(32,), conv_impl=conv_impl, dtype=dtype)
    encoder, decoder = ConvEncoder(D, **kw), ConvDecoder(latent_dim=D, **kw)
    objective = make_objective(encoder, decoder, likelihood="bernoulli", prior=make_prior("isotropic", D))
    batcher = make_batcher(_images(256), BATCH)

    def init_params(key, hyper):
        k_enc, k_dec = jax.random.split(key)
        return {"encoder": encoder.init(k_enc, jnp.zeros((1, *shape))), "decoder": decoder.init(k_dec, jnp.zeros((1, D)))}

    return make_trainer(objective, init_params, batcher.batch_at), batcher.data, (encoder, decoder)


HYPER = Hyperparams(beta=jnp.float32(1.0), alpha=jnp.float32(0.0), prior={})


def _train(conv_impl: str, dtype):
    trainer, data, _ = _trainer(conv_impl, dtype)
    state = jax.jit(trainer.init)(jax.random.key(0), HYPER, 1e-3)
    state, info = jax.jit(trainer.run, static_argnums=3)(state, HYPER, data, STEPS)
    return state, np.asarray(info.loss)


@pytest.mark.slow
@pytest.mark.parametrize("conv_impl", ["matmul", "lax"])
def test_bfloat16_training_follows_float32(conv_impl):
    state32, loss32 = _train(conv_impl, None)
    state16, loss16 = _train(conv_impl, jnp.bfloat16)
    assert loss16.dtype == np.float32 and np.isfinite(loss16).all()
    windows = lambda a: a[20:].reshape(-1, 20).mean(axis=1)  # noqa: E731
    rel = np.abs(windows(loss16) - windows(loss32)) / np.abs(windows(loss32))
    assert rel.max() < LOSS_CURVE_RTOL, rel
    assert windows(loss16)[-1] < 0.6 * loss16[0]  # it trains
    # Parameters and optimiser state stay float32.
    for tree in (state16.params, state16.opt_state):
        floats = [leaf for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.floating)]
        assert floats and all(leaf.dtype == jnp.float32 for leaf in floats)


def _dot_types(text: str) -> list[tuple[str, ...]]:
    """``(lhs, rhs, result)`` element types of every dot_general/convolution in StableHLO text."""
    ops = [line for line in text.splitlines() if "stablehlo.dot_general" in line or "stablehlo.convolution" in line]
    return [tuple(re.findall(r"tensor<[^>]*?x?(bf16|f32|f64)>", line)[-3:]) for line in ops]


def _abstract_state(trainer):
    """The train state's shapes and dtypes, without running the initialisation."""
    return jax.eval_shape(trainer.init, jax.random.key(0), HYPER, 1e-3)


@pytest.mark.parametrize("conv_impl", ["matmul", "lax", "phase"])
def test_the_step_multiplies_in_bfloat16_and_returns_float32(conv_impl):
    trainer, data, (encoder, decoder) = _trainer(conv_impl, jnp.bfloat16)
    state = _abstract_state(trainer)
    types = _dot_types(jax.jit(trainer.step).lower(state, HYPER, data).as_text())
    assert types and all(t[0] == t[1] == "bf16" for t in types), types  # no float32 product
    assert ("bf16", "bf16", "f32") in types  # forward: float32 accumulation
    new_state, info = jax.eval_shape(trainer.step, state, HYPER, data)
    assert info.loss.dtype == jnp.float32
    for tree in (new_state.params, new_state.opt_state):
        floats = [leaf for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.floating)]
        assert floats and all(leaf.dtype == jnp.float32 for leaf in floats)
    x = _images(4)
    loc, raw = jax.eval_shape(encoder.apply, new_state.params["encoder"], x)
    logits = jax.eval_shape(decoder.apply, new_state.params["decoder"], loc)
    assert loc.dtype == raw.dtype == logits.dtype == jnp.float32


def test_float32_programs_have_no_bfloat16():
    trainer, data, _ = _trainer("matmul", None)
    text = jax.jit(trainer.step).lower(_abstract_state(trainer), HYPER, data).as_text()
    assert "bf16" not in text


@pytest.mark.parametrize("impl", ["lax", "phase", "matmul"])
def test_layers_accumulate_in_float32(impl):
    kx, kk = jax.random.split(jax.random.key(3))
    x = jax.random.normal(kx, (2, 8, 8, 16))
    kernel = jax.random.normal(kk, (4, 4, 16, 8)) / 16.0
    for fn in (conv2d, conv_transpose2d):
        ref = fn(x, kernel, stride=2, padding="SAME", impl=impl)
        out = fn(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16), stride=2, padding="SAME", impl=impl,
                 preferred_element_type=jnp.float32)
        assert out.dtype == jnp.float32
        np.testing.assert_allclose(out, ref, atol=LAYER_RTOL * float(jnp.abs(ref).max()))

        def loss(a, b, fn=fn):
            return jnp.sum(fn(a, b, stride=2, padding="SAME", impl=impl, preferred_element_type=jnp.float32) ** 2)

        grads = jax.grad(loss, argnums=(0, 1))(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16))
        assert [g.dtype for g in grads] == [jnp.bfloat16, jnp.bfloat16]


@pytest.mark.slow
def test_vmapped_bfloat16_equals_a_loop():
    _, _, (encoder, _) = _trainer("matmul", jnp.bfloat16)
    x = _images(4)
    stacked = jax.vmap(lambda k: encoder.init(k, x[:1]))(jax.random.split(jax.random.key(0), 3))
    vmapped = jax.jit(jax.vmap(encoder.apply, in_axes=(0, None)))(stacked, x)[0]
    apply = jax.jit(encoder.apply)
    for i in range(3):
        single = apply(jax.tree.map(lambda a, i=i: a[i], stacked), x)[0]
        np.testing.assert_allclose(vmapped[i], single, rtol=1e-2, atol=1e-2)


def test_compute_dtype_is_validated():
    with pytest.raises(ValueError, match="model.compute_dtype.*float32.*bfloat16"):
        ModelConfig(compute_dtype="float16")
    with pytest.raises(ValueError, match="compute_dtype"):
        make_networks("mlp", 2, data_shape=(2,), compute_dtype="half")
    assert ModelConfig().compute_dtype == "float32"
