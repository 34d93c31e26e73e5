"""Tests for decompvae.networks: shapes, formulations equal to flax's layers, vmap."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae.networks import layers
from decompvae.networks import (
    CONV_IMPLS,
    Conv2D,
    ConvDecoder,
    ConvEncoder,
    ConvTranspose2D,
    MLPDecoder,
    conv2d,
    conv_transpose2d,
    make_networks,
    resolve_conv_impl,
)

FWD_TOL = 1e-5  # float32 forward, relative to the output scale
GRAD_TOL = 1e-4  # float32 gradients, relative to the gradient scale
X64_TOL = 1e-12  # float64
IMPLS = ("lax", "phase", "matmul")
DIMS = ("NHWC", "HWIO", "NHWC")

# (input spatial size, c_in, c_out, kernel, stride, padding): the layers of the
# dSprites and conv32 networks first, then odd cases of the general code.
CONV_CASES = [
    (64, 1, 32, 4, 2, 1),
    (32, 32, 32, 4, 2, 1),
    (8, 64, 64, 4, 2, 1),
    (9, 3, 5, 3, 2, "SAME"),
    (9, 2, 3, 4, 3, "VALID"),
    (11, 2, 3, 5, 2, ((2, 0), (1, 3))),
    (4, 16, 6, 4, 1, "VALID"),  # the fashion encoder's heads: 4×4 → 1×1
]
DECONV_CASES = [
    (4, 64, 64, 4, 2, "SAME"),
    (16, 32, 32, 4, 2, "SAME"),
    (32, 32, 1, 4, 2, "SAME"),
    (5, 3, 2, 3, 2, "SAME"),
    (5, 3, 2, 3, 2, "VALID"),
    (6, 3, 2, 4, 2, ((1, 2), (0, 3))),
    (4, 2, 3, 5, 3, ((4, 0), (2, 2))),
    (4, 2, 3, 3, 1, "SAME"),
    (4, 2, 3, 3, 2, ((-1, 3), (5, -1))),
    (1, 6, 16, 4, 1, "VALID"),  # the fashion decoder's first layer: 1×1 → 4×4
]


def _close(a, b, tol):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.max(np.abs(b))))
    np.testing.assert_allclose(a, b, rtol=0, atol=tol * scale)


def _flax_and_ours(transpose, case, impl, key):
    size, c_in, c_out, k, s, pad = case
    x = jax.random.normal(key, (2, size, size + 1, c_in))  # h ≠ w on purpose
    ref_cls, our_cls = (nn.ConvTranspose, ConvTranspose2D) if transpose else (nn.Conv, Conv2D)
    ref = ref_cls(c_out, (k, k), strides=(s, s), padding=pad)
    ours = our_cls(c_out, k, s, pad, impl=impl)
    params = ref.init(jax.random.fold_in(key, 1), x)
    # A non-zero bias, so that the bias path is compared too.
    params = jax.tree.map(lambda p: p + 0.1, params)
    return ref, ours, params, x


# The modules against flax's: every formulation on the networks' layers in the
# default run; "phase" on the odd cases of the general code with ``-m slow``
# (the matmul forms meet the odd cases below).
N_NET = 3  # the first cases of CONV_CASES / DECONV_CASES are the networks' layers
LAYER_CASES = [
    (impl, transpose, case)
    for impl in IMPLS
    for transpose, cases in ((False, CONV_CASES[:N_NET]), (True, DECONV_CASES[:N_NET]))
    for case in cases
]


@pytest.mark.parametrize("impl,transpose,case", LAYER_CASES)
def test_layer_equals_flax_forward_and_gradients(impl, transpose, case, key):
    _check_layer_against_flax(impl, transpose, case, key)


@pytest.mark.slow
@pytest.mark.parametrize("case", DECONV_CASES[N_NET:])
def test_phase_layer_equals_flax_on_odd_cases(case, key):
    _check_layer_against_flax("phase", True, case, key)


def _check_layer_against_flax(impl, transpose, case, key):
    ref, ours, params, x = _flax_and_ours(transpose, case, impl, key)
    assert jax.tree.structure(ours.init(key, x)) == jax.tree.structure(params)
    assert jax.tree.map(jnp.shape, ours.init(key, x)) == jax.tree.map(jnp.shape, params)
    y_ref = jax.jit(ref.apply)(params, x)
    y = jax.jit(ours.apply)(params, x)
    assert y.shape == y_ref.shape
    _close(y, y_ref, FWD_TOL)

    w = jax.random.normal(jax.random.fold_in(key, 2), y_ref.shape)  # a random cotangent

    def loss(m):
        return lambda p, x: jnp.sum(w * m.apply(p, x))

    g_ref = jax.jit(jax.grad(loss(ref), argnums=(0, 1)))(params, x)
    g = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(params, x)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        _close(a, b, GRAD_TOL)


@pytest.mark.parametrize("form", ("gather", "s2d"))
@pytest.mark.parametrize("case", CONV_CASES[:N_NET])
def test_matmul_conv_forms_equal_lax(case, form, key):
    """Both matmul forms of the networks' convolutions, whichever the automatic choice is."""
    _check_matmul_conv_form(case, form, key)


@pytest.mark.slow
@pytest.mark.parametrize("form", ("gather", "s2d"))
@pytest.mark.parametrize("case", CONV_CASES[N_NET:])
def test_matmul_conv_forms_equal_lax_on_odd_cases(case, form, key):
    _check_matmul_conv_form(case, form, key)


def _check_matmul_conv_form(case, form, key):
    size, c_in, c_out, k, s, pad = case
    x = jax.random.normal(key, (2, size, size + 1, c_in))
    kernel = jax.random.normal(jax.random.fold_in(key, 1), (k, k, c_in, c_out))
    pads = layers._conv_pads(pad, x.shape[1:3], (k, k), s)

    def ref(x, kernel):
        return jax.lax.conv_general_dilated(x, kernel, (s, s), pads, dimension_numbers=DIMS)

    def ours(x, kernel):
        return layers._conv2d_matmul(x, kernel, s, pads, None, form=form)

    _check_fn_and_grads(ours, ref, x, kernel, key)


@pytest.mark.parametrize("form", ("scatter", "block"))
@pytest.mark.parametrize("case", DECONV_CASES)
def test_matmul_deconv_forms_equal_lax(case, form, key):
    size, c_in, c_out, k, s, pad = case
    x = jax.random.normal(key, (2, size, size + 1, c_in))
    kernel = jax.random.normal(jax.random.fold_in(key, 1), (k, k, c_in, c_out))
    pads = layers._conv_transpose_pads(pad, (k, k), s)

    def ref(x, kernel):
        return jax.lax.conv_transpose(x, kernel, (s, s), pads, dimension_numbers=DIMS)

    def ours(x, kernel):
        return layers._conv_transpose2d_matmul(x, kernel, s, pads, None, form=form)

    _check_fn_and_grads(ours, ref, x, kernel, key)


def _check_fn_and_grads(ours, ref, x, kernel, key):
    y_ref = jax.jit(ref)(x, kernel)
    _close(jax.jit(ours)(x, kernel), y_ref, FWD_TOL)
    w = jax.random.normal(jax.random.fold_in(key, 2), y_ref.shape)
    g_ref = jax.jit(jax.grad(lambda *a: jnp.sum(w * ref(*a)), argnums=(0, 1)))(x, kernel)
    g = jax.jit(jax.grad(lambda *a: jnp.sum(w * ours(*a)), argnums=(0, 1)))(x, kernel)
    for a, b in zip(g, g_ref):
        _close(a, b, GRAD_TOL)


@pytest.mark.parametrize("case", [DECONV_CASES[i] for i in (1, 3, 5, 8)])
def test_overlap_add_and_patches_are_adjoint(case, key):
    """<A z, y> = <z, Aᵀ y>, and each is the other's derivative."""
    size, _, c, k, s, pad = case
    pads = layers._conv_transpose_pads(pad, (k, k), s)
    plan = layers._Plan.make((size, size + 1), (k, k), s, pads)
    z = jax.random.normal(key, (2, size, size + 1, k, k, c))
    y = jax.random.normal(jax.random.fold_in(key, 1), (2, *plan.out, c))
    lhs = jnp.vdot(jax.jit(layers._overlap_add, static_argnums=1)(z, plan), y)
    rhs = jnp.vdot(z, jax.jit(layers._extract_patches, static_argnums=1)(y, plan))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5)

    # The custom derivatives equal the automatic ones of the implementations.
    @jax.jit
    def vjps(z, y, cot_y, cot_z):
        pairs = ((layers._overlap_add, layers._overlap_add_impl, z, cot_y),
                 (layers._extract_patches, layers._extract_patches_impl, y, cot_z))
        return [
            (jax.vjp(lambda a: op(a, plan), arg)[1](cot)[0], jax.vjp(lambda a: impl(a, plan), arg)[1](cot)[0])
            for op, impl, arg, cot in pairs
        ]

    for got, want in vjps(z, y, jax.random.normal(jax.random.fold_in(key, 2), y.shape),
                          jax.random.normal(jax.random.fold_in(key, 3), z.shape)):
        _close(got, want, FWD_TOL)


@pytest.mark.parametrize("impl", ("phase", "matmul"))
def test_deconv_float64_exact(impl, key, x64):
    x = jax.random.normal(key, (2, 4, 4, 3), jnp.float64)
    kernel = jax.random.normal(jax.random.fold_in(key, 1), (4, 4, 3, 5), jnp.float64)
    ref = jax.lax.conv_transpose(x, kernel, (2, 2), "SAME", dimension_numbers=DIMS)
    _close(conv_transpose2d(x, kernel, stride=2, padding="SAME", impl=impl), ref, X64_TOL)
    ref = jax.lax.conv_general_dilated(x, kernel[..., :2], (2, 2), [(1, 1)] * 2, dimension_numbers=DIMS)
    _close(conv2d(x, kernel[..., :2], stride=2, padding=1, impl="matmul"), ref, X64_TOL)


NETWORK_CASES = [
    ("dsprites", None, (64, 64, 1)),
    ("conv32", None, (32, 32, 1)),
    ("conv32", (32, 32, 3), (32, 32, 3)),
    ("mlp", (2,), (2,)),
    ("mlp", (8, 8, 1), (8, 8, 1)),
    ("fashion", None, (32, 32, 1)),
]


@pytest.mark.parametrize("name,data_shape,shape", NETWORK_CASES)
def test_network_shapes(name, data_shape, shape, key):
    d = 5
    enc, dec = make_networks(name, d, data_shape=data_shape, conv_impl="matmul")
    x = jnp.zeros((3, *shape))
    z = jnp.zeros((3, d))
    loc, raw = jax.eval_shape(lambda k, x: enc.apply(enc.init(k, x), x), key, x)
    assert loc.shape == raw.shape == (3, d)
    assert jax.eval_shape(lambda k, z: dec.apply(dec.init(k, z), z), key, z).shape == (3, *shape)


def test_dsprites_architecture(key):
    """The published layer sizes: 4 convs, dense 128, transposed convs 64→64, 64→64, 64→32, 32→1."""
    enc, dec = make_networks("dsprites", 10)
    p_enc = jax.eval_shape(enc.init, key, jnp.zeros((1, 64, 64, 1)))["params"]
    p_dec = jax.eval_shape(dec.init, key, jnp.zeros((1, 10)))["params"]
    assert [p_enc[f"conv{i}"]["kernel"].shape for i in range(4)] == [
        (4, 4, 1, 32), (4, 4, 32, 32), (4, 4, 32, 64), (4, 4, 64, 64)]
    assert p_enc["dense0"]["kernel"].shape == (4 * 4 * 64, 128)
    assert p_enc["loc"]["kernel"].shape == p_enc["raw"]["kernel"].shape == (128, 10)
    assert p_dec["dense0"]["kernel"].shape == (10, 128)
    assert p_dec["project"]["kernel"].shape == (128, 4 * 4 * 64)
    assert [p_dec[f"deconv{i}"]["kernel"].shape for i in range(4)] == [
        (4, 4, 64, 64), (4, 4, 64, 64), (4, 4, 64, 32), (4, 4, 32, 1)]


@pytest.mark.parametrize("name", ("dsprites", "conv32", "fashion"))
def test_networks_equal_across_impls(name, key):
    """Same parameter tree and the same outputs whatever the formulation."""
    d = 4
    nets = {impl: make_networks(name, d, conv_impl=impl) for impl in IMPLS}
    shape = nets["lax"][0].image_shape
    x = (jax.random.uniform(key, (2, *shape)) < 0.3).astype(jnp.float32)
    z = jax.random.normal(key, (2, d))
    p_enc = jax.jit(nets["lax"][0].init)(jax.random.fold_in(key, 1), x)
    p_dec = jax.jit(nets["lax"][1].init)(jax.random.fold_in(key, 2), z)
    outputs = {
        impl: jax.jit(lambda pe, pd: (enc.apply(pe, x), dec.apply(pd, z)))(p_enc, p_dec)
        for impl, (enc, dec) in nets.items()
    }
    for impl, (enc, dec) in nets.items():
        shapes = jax.eval_shape(enc.init, key, x), jax.eval_shape(dec.init, key, z)
        assert jax.tree.map(jnp.shape, shapes) == jax.tree.map(jnp.shape, (p_enc, p_dec))
        for a, b in zip(jax.tree.leaves(outputs[impl]), jax.tree.leaves(outputs["lax"])):
            _close(a, b, FWD_TOL)


def test_vmap_over_stacked_params_equals_loop(key):
    """vmap over 3 parameter sets (and batches) equals a loop, gradients too."""
    n, d, shape = 3, 4, (8, 8, 1)
    kw = dict(image_shape=shape, channels=(4, 8), hidden=(16,), conv_impl="matmul")
    enc, dec = ConvEncoder(d, **kw), ConvDecoder(latent_dim=d, **kw)
    keys = jax.random.split(key, n)
    xs = jax.random.uniform(jax.random.fold_in(key, 1), (n, 2, *shape))
    params = jax.jit(jax.vmap(lambda k: {"enc": enc.init(k, xs[0]), "dec": dec.init(k, jnp.zeros((1, d)))}))(keys)

    def loss(p, x):
        loc, raw = enc.apply(p["enc"], x)
        return jnp.mean((dec.apply(p["dec"], loc + raw) - x) ** 2)

    v_loss, v_grad = jax.jit(jax.vmap(jax.value_and_grad(loss)))(params, xs)
    single = jax.jit(jax.value_and_grad(loss))
    for i in range(n):
        l_i, g_i = single(jax.tree.map(lambda a: a[i], params), xs[i])
        _close(v_loss[i], l_i, FWD_TOL)
        for a, b in zip(jax.tree.leaves(g_i), jax.tree.leaves(v_grad)):
            _close(b[i], a, GRAD_TOL)


def test_mlp_learned_scale_is_a_softplus_head_of_z(key):
    dec = MLPDecoder((2,), learn_scale=True, init_scale=0.5)
    z = jnp.ones((3, 2))
    params = dec.init(key, z)
    head = params["params"]["scale"]
    np.testing.assert_allclose(jax.nn.softplus(head["bias"]), 0.5, rtol=1e-6)
    # The scale depends on z: the published pinwheel decoder.
    z2 = jax.random.normal(key, (3, 2))
    loc, scale = dec.apply(params, z2)
    assert loc.shape == scale.shape == (3, 2)
    h = jax.nn.relu(z2 @ params["params"]["dense0"]["kernel"] + params["params"]["dense0"]["bias"])
    np.testing.assert_allclose(scale, jax.nn.softplus(h @ head["kernel"] + head["bias"]), rtol=1e-5)
    assert not np.allclose(scale[0], scale[1])
    enc, dec = make_networks("mlp", 2, data_shape=(2,), learn_scale=True)
    assert dec.apply(dec.init(key, z), z)[1].shape == (3, 2)


def test_resolve_conv_impl():
    assert resolve_conv_impl("auto", "cpu") == "matmul"
    assert resolve_conv_impl("auto", "gpu") == "lax"
    assert resolve_conv_impl("phase", "gpu") == "phase"
    assert set(CONV_IMPLS) == {"auto", "lax", "phase", "matmul"}


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(name="resnet", latent_dim=2), "name"),
        (dict(name="dsprites", latent_dim=0), "latent_dim"),
        (dict(name="dsprites", latent_dim=2.0), "latent_dim"),
        (dict(name="dsprites", latent_dim=2, data_shape=(32, 32, 1)), "data_shape"),
        (dict(name="conv32", latent_dim=2, data_shape=(28, 28, 1)), "data_shape"),
        (dict(name="mlp", latent_dim=2), "data_shape"),
        (dict(name="mlp", latent_dim=2, data_shape=(0,)), "data_shape"),
        (dict(name="dsprites", latent_dim=2, conv_impl="cudnn"), "conv_impl"),
        (dict(name="dsprites", latent_dim=2, learn_scale=True), "learn_scale"),
        (dict(name="fashion", latent_dim=2, data_shape=(32, 32, 3)), "data_shape"),
        (dict(name="fashion", latent_dim=2, hidden=(16,)), "hidden"),
    ],
)
def test_make_networks_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_networks(**kwargs)


def test_modules_reject_bad_inputs(key):
    enc, dec = make_networks("conv32", 3)
    with pytest.raises(ValueError, match="x must have shape"):
        enc.init(key, jnp.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match="z must have shape"):
        dec.init(key, jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="image_shape"):
        make_networks("conv32", 3)[0].clone(image_shape=(20, 20, 1)).init(key, jnp.zeros((1, 20, 20, 1)))
    with pytest.raises(ValueError, match="padding"):
        conv2d(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)), padding="FULL")
    with pytest.raises(ValueError, match="conv_impl"):
        conv_transpose2d(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)), impl="fft")
    with pytest.raises(ValueError, match="batch of images"):
        Conv2D(3).init(key, jnp.zeros((4, 4, 1)))
    with pytest.raises(ValueError, match="kernel_size"):
        ConvTranspose2D(3, 0).init(key, jnp.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="stride"):
        conv2d(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)), stride=0)
    with pytest.raises(ValueError, match="init_scale"):
        MLPDecoder((2,), learn_scale=True, init_scale=0.0).init(key, jnp.zeros((1, 2)))


def test_matmul_is_reverse_mode_only(key):
    """Documented limitation: forward-mode derivatives need conv_impl="lax"."""
    x = jax.random.normal(key, (1, 4, 4, 2))
    kernel = jax.random.normal(key, (4, 4, 2, 3))
    f = lambda x: conv_transpose2d(x, kernel, stride=2, impl="matmul")  # noqa: E731
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(f, (x,), (x,))
    g = lambda x: conv_transpose2d(x, kernel, stride=2, impl="lax")  # noqa: E731
    _close(jax.jvp(g, (x,), (x,))[1], g(x), FWD_TOL)  # linear: the tangent is g(x)
