"""Structured priors (issue 17): block Student-t, block scale mixture, hierarchical; the block MMD; their configs.

Log-densities against scipy.stats, normalisation by 2-D quadrature, sample
distributions and moments against closed forms, rotation invariance within
blocks only, traced parameters under jit/vmap, gradients, validation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from jax.test_util import check_grads
from scipy.linalg import block_diag
from scipy.special import logsumexp

from decompvae import priors
from decompvae.build import build
from decompvae.config import load_config
from decompvae.divergences import mmd
from decompvae.objective import Hyperparams
from decompvae.regularisers import make_regulariser

BLOCKS = (2, 3, 1)
D = sum(BLOCKS)
N_SAMPLES = 40_000
SE_TOL = 5.0  # Monte-Carlo checks: within this many standard errors
KS_CRIT = 1.95 / np.sqrt(N_SAMPLES)  # the KS statistic at the 0.1% level
EXACT = 1e-12  # float64 agreement of two exact computations
QUADRATURE = 1e-6  # the 2-D Gauss–Legendre integral of a density


def _points(dim=D, n=9, seed=0, scale=1.5):
    return np.random.default_rng(seed).normal(scale=scale, size=(n, dim))


def _split(z, blocks=BLOCKS):
    edges = np.cumsum((0,) + tuple(blocks))
    return [z[..., a:b] for a, b in zip(edges[:-1], edges[1:])]


def _orthogonal(k, rng):
    q, r = np.linalg.qr(rng.normal(size=(k, k)))
    return q * np.sign(np.diag(r))


def _block_rotation(seed, blocks=BLOCKS):
    rng = np.random.default_rng(seed)
    return block_diag(*[_orthogonal(k, rng) for k in blocks])


def _hier_params():
    """P = 2 parents, C = 3 children: W, V [3, 2], s [3], σ_p [2]."""
    w = np.array([[1.2, 0.0], [0.4, -0.8], [0.0, 0.6]])
    v = np.array([[0.3, 0.0], [0.0, -0.2], [0.1, 0.1]])
    return w, v, np.array([0.5, 0.3, 0.8]), np.array([1.0, 1.5])


def _linear_gaussian_cov(w, s, sp):
    """Σ of the V = 0 hierarchical prior: [[S_p, S_p Wᵀ], [W S_p, W S_p Wᵀ + diag s²]]."""
    cov_top = np.diag(sp**2)
    return np.block([[cov_top, cov_top @ w.T], [w @ cov_top, w @ cov_top @ w.T + np.diag(s**2)]])


@pytest.mark.usefixtures("x64")
class TestLogProb:
    @pytest.mark.parametrize("k", [1, 2, 3])
    @pytest.mark.parametrize("df", [1.5, 4.0, 30.0])
    def test_spherical_student_t_is_scipys_multivariate_t(self, k, df):
        z = _points(dim=k)
        got = priors.SphericalStudentT(df, 0.7, k).log_prob(z)
        want = st.multivariate_t(np.zeros(k), 0.49 * np.eye(k), df=df).logpdf(z)
        np.testing.assert_allclose(got, np.atleast_1d(want), rtol=EXACT)

    def test_block_student_t_is_a_product_of_multivariate_ts(self):
        df, scale = np.array([2.0, 5.0, 9.0]), np.array([0.5, 1.0, 2.0])
        z = _points()
        got = priors.block_student_t(BLOCKS, df=df, scale=scale).log_prob(z)
        want = sum(st.multivariate_t(np.zeros(b.shape[-1]), s**2 * np.eye(b.shape[-1]), df=nu).logpdf(b)
                   for b, nu, s in zip(_split(z), df, scale))
        np.testing.assert_allclose(got, want, rtol=EXACT)

    def test_blocks_of_one_are_the_papers_student_t(self):
        z = _points()
        got = priors.block_student_t((1,) * D, df=3.0, scale=0.8).log_prob(z)
        np.testing.assert_allclose(got, priors.student_t(D, df=3.0, scale=0.8).log_prob(z), rtol=EXACT)

    @pytest.mark.parametrize("per_block", [False, True])
    def test_block_scale_mixture_is_a_product_of_mixtures(self, per_block):
        scales, weights = np.array([0.2, 1.0, 3.0]), np.array([0.5, 0.3, 0.2])
        if per_block:
            scales = scales * np.array([[1.0], [0.5], [2.0]])
            weights = np.array([weights, [0.1, 0.1, 0.8], [1.0, 0.0, 0.0]])
        z = _points()
        got = priors.block_scale_mixture(BLOCKS, scales=scales, weights=weights).log_prob(z)
        scales_g, weights_g = np.broadcast_to(scales, (3, 3)), np.broadcast_to(weights, (3, 3))
        want = 0.0
        for b, s, w in zip(_split(z), scales_g, weights_g):
            k = b.shape[-1]
            with np.errstate(divide="ignore"):
                comps = [np.log(w[c]) + st.multivariate_normal(np.zeros(k), s[c] ** 2 * np.eye(k)).logpdf(b)
                         for c in range(3)]
            want = want + logsumexp(comps, axis=0)
        np.testing.assert_allclose(got, want, rtol=EXACT)

    def test_hierarchical_is_parent_times_conditional(self):
        w, v, s, sp = _hier_params()
        z = _points(dim=5)
        top, low = z[:, :2], z[:, 2:]
        want = st.norm(0, sp).logpdf(top).sum(-1) + st.norm(top @ w.T, s * np.exp(top @ v.T)).logpdf(low).sum(-1)
        got = priors.hierarchical(5, 2, weights=w, log_scale_weights=v, child_scale=s, parent_scale=sp).log_prob(z)
        np.testing.assert_allclose(got, want, rtol=EXACT)

    def test_linear_hierarchical_is_a_joint_gaussian(self):
        w, _, s, sp = _hier_params()
        z = _points(dim=5)
        got = priors.hierarchical(5, 2, weights=w, child_scale=s, parent_scale=sp).log_prob(z)
        want = st.multivariate_normal(np.zeros(5), _linear_gaussian_cov(w, s, sp)).logpdf(z)
        np.testing.assert_allclose(got, want, rtol=EXACT)

    def test_hierarchical_defaults_are_a_tree(self):
        z = _points(dim=5)
        tree = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # child c hangs from parent c mod 2
        got = priors.make_prior("hierarchical", 5, parents=2)().log_prob(z)
        want = st.multivariate_normal(np.zeros(5), _linear_gaussian_cov(tree, np.full(3, 0.5), np.ones(2))).logpdf(z)
        np.testing.assert_allclose(got, want, rtol=EXACT)


def _integral_2d(log_prob, scale=1.0, nodes=600):
    """∫∫ exp(log_prob(z)) dz over R², z = scale·tan(u) on a Gauss–Legendre grid in (−π/2, π/2)²."""
    u, weights = np.polynomial.legendre.leggauss(nodes)
    u, weights = u * np.pi / 2, weights * np.pi / 2
    z, jac = scale * np.tan(u), scale / np.cos(u) ** 2
    grid = np.stack(np.meshgrid(z, z, indexing="ij"), axis=-1).reshape(-1, 2)
    density = np.exp(np.asarray(log_prob(jnp.asarray(grid)))).reshape(nodes, nodes)
    return np.einsum("i,j,ij->", weights * jac, weights * jac, density)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize(
    "name, build_prior",
    [
        ("block_student_t", lambda: priors.block_student_t((2,), df=3.0, scale=0.7)),
        ("block_student_t_heavy", lambda: priors.block_student_t((2,), df=1.2, scale=1.0)),
        ("block_scale_mixture", lambda: priors.block_scale_mixture((2,), scales=(0.3, 1.5), weights=(0.6, 0.4))),
        ("hierarchical", lambda: priors.hierarchical(2, 1, weights=[[0.8]], log_scale_weights=[[0.4]], child_scale=0.5,
                                                     parent_scale=1.2)),
    ],
)
def test_two_dimensional_blocks_integrate_to_one(name, build_prior):
    np.testing.assert_allclose(_integral_2d(build_prior().log_prob), 1.0, atol=QUADRATURE)


def _samples(prior, seed=1, n=N_SAMPLES):
    return np.asarray(prior.sample(seed=jax.random.key(seed), sample_shape=(n,)), dtype=np.float64)


def _assert_mean_within_se(values, want):
    """The sample mean of ``values`` [n, ...] within SE_TOL standard errors of ``want``."""
    se = values.std(0) / np.sqrt(values.shape[0])
    np.testing.assert_array_less(np.abs(values.mean(0) - want), SE_TOL * se + 1e-12)


@pytest.mark.usefixtures("x64")
def test_block_student_t_samples():
    df, scale = np.array([12.0, 6.0, 12.0]), np.array([0.5, 1.0, 2.0])
    z = _samples(priors.block_student_t(BLOCKS, df=df, scale=scale))
    for g, (block, nu, s) in enumerate(zip(_split(z), df, scale)):
        k = block.shape[-1]  # ‖z_g‖²/(k σ²) ~ F(k, ν)
        assert st.kstest(np.sum(block**2, -1) / (k * s**2), st.f(k, nu).cdf).statistic < KS_CRIT, g
        _assert_mean_within_se(block**2, s**2 * nu / (nu - 2))
    # Within a block the coordinates share one scale draw τ = ν/χ²_ν: corr(z₁², z₂²) =
    # (Eτ² − (Eτ)²)/(3Eτ² − (Eτ)²); across blocks they are independent.
    nu = df[0]
    e1, e2 = nu / (nu - 2), nu**2 / ((nu - 2) * (nu - 4))
    within = np.corrcoef(z[:, 0] ** 2, z[:, 1] ** 2)[0, 1]
    across = np.corrcoef(z[:, 0] ** 2, z[:, 2] ** 2)[0, 1]
    assert abs(within - (e2 - e1**2) / (3 * e2 - e1**2)) < SE_TOL * 2 / np.sqrt(N_SAMPLES)
    assert abs(across) < SE_TOL * 2 / np.sqrt(N_SAMPLES)


@pytest.mark.usefixtures("x64")
def test_block_scale_mixture_samples():
    scales, weights = np.array([0.3, 1.0, 2.5]), np.array([0.5, 0.3, 0.2])
    z = _samples(priors.block_scale_mixture(BLOCKS, scales=scales, weights=weights))
    for g, block in enumerate(_split(z)):
        k = block.shape[-1]  # ‖z_g‖² ~ Σ_c π_c s_c²·χ²_k

        def cdf(r, k=k):
            return sum(w * st.chi2(k).cdf(r / s**2) for w, s in zip(weights, scales))

        assert st.kstest(np.sum(block**2, -1), cdf).statistic < KS_CRIT, g
        _assert_mean_within_se(block**2, np.sum(weights * scales**2))


@pytest.mark.usefixtures("x64")
def test_hierarchical_sample_covariance():
    """Cov[z_top] = S_p, Cov[z_low, z_top] = W S_p, Cov[z_low] = W S_p Wᵀ + diag(s_c² exp(2‖σ_p ⊙ V_c‖²))."""
    w, v, s, sp = _hier_params()
    z = _samples(priors.hierarchical(5, 2, weights=w, log_scale_weights=v, child_scale=s, parent_scale=sp))
    cov_top = np.diag(sp**2)
    child = np.diag(s**2 * np.exp(2 * np.sum((v * sp) ** 2, axis=-1)))
    want = np.block([[cov_top, cov_top @ w.T], [w @ cov_top, w @ cov_top @ w.T + child]])
    _assert_mean_within_se(z, np.zeros(5))
    _assert_mean_within_se(z[:, :, None] * z[:, None, :], want)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize(
    "build_prior",
    [lambda: priors.block_student_t(BLOCKS, df=[2.0, 5.0, 3.0], scale=0.8),
     lambda: priors.block_scale_mixture(BLOCKS, scales=(0.3, 1.5), weights=(0.5, 0.5))],
    ids=["block_student_t", "block_scale_mixture"],
)
def test_log_prob_is_invariant_to_rotations_within_blocks_only(build_prior):
    prior, z = build_prior(), _points(n=50)
    base = prior.log_prob(z)
    for seed in range(3):
        np.testing.assert_allclose(prior.log_prob(z @ _block_rotation(seed).T), base, rtol=EXACT)
    mixing = _orthogonal(D, np.random.default_rng(9))
    assert np.max(np.abs(prior.log_prob(z @ mixing.T) - base)) > 0.1


def test_traced_parameters_under_jit_and_vmap_equal_a_loop():
    z = jnp.asarray(_points(dim=5), jnp.float32)
    blocks = (2, 3)
    dfs, scales = jnp.array([2.0, 5.0, 12.0]), jnp.array([0.5, 1.0, 2.0])
    got = jax.jit(jax.vmap(lambda df, s: priors.block_student_t(blocks, df=df, scale=s).log_prob(z)))(dfs, scales)
    want = jnp.stack([priors.block_student_t(blocks, df=float(a), scale=float(b)).log_prob(z)
                      for a, b in zip(dfs, scales)])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    weights = jnp.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    got = jax.jit(jax.vmap(lambda w: priors.block_scale_mixture(blocks, scales=(0.2, 1.0), weights=w).log_prob(z)))(weights)
    want = jnp.stack([priors.block_scale_mixture(blocks, scales=(0.2, 1.0), weights=np.asarray(w)).log_prob(z)
                      for w in weights])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    ws = jnp.asarray(np.random.default_rng(3).normal(size=(3, 3, 2)), jnp.float32)
    fn = jax.jit(jax.vmap(lambda w, s: priors.hierarchical(5, 2, weights=w, child_scale=s).log_prob(z)))
    want = jnp.stack([priors.hierarchical(5, 2, weights=np.asarray(w), child_scale=float(s)).log_prob(z)
                      for w, s in zip(ws, scales)])
    np.testing.assert_allclose(fn(ws, scales), want, rtol=1e-5)
    key = jax.random.key(4)  # sampling too: one key, each member as built alone
    got = jax.jit(jax.vmap(lambda df: priors.block_student_t(blocks, df=df).sample(seed=key, sample_shape=(4,))))(dfs)
    want = jnp.stack([priors.block_student_t(blocks, df=float(df)).sample(seed=key, sample_shape=(4,)) for df in dfs])
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.usefixtures("x64")
def test_gradients_of_log_prob_and_samples():
    z = jnp.asarray(_points(dim=5))
    blocks, key = (2, 3), jax.random.key(5)
    w, v, s, sp = (jnp.asarray(a) for a in _hier_params())
    def tree(w, v, s):
        return priors.hierarchical(5, 2, weights=w, log_scale_weights=v, child_scale=s, parent_scale=sp)

    checks = [
        (lambda df, s: priors.block_student_t(blocks, df=df, scale=s).log_prob(z), (3.0, 0.7)),
        (lambda s, logits: priors.block_scale_mixture(blocks, scales=s, weights=jax.nn.softmax(logits)).log_prob(z),
         (jnp.array([0.3, 1.2]), jnp.array([0.2, -0.4]))),
        (lambda w, v, s: tree(w, v, s).log_prob(z), (w, v, s)),
        # reparameterised samples: smooth in the parameters at a fixed key
        (lambda w, v, s: tree(w, v, s).sample(seed=key, sample_shape=(3,)), (w, v, s)),
    ]
    for fn, args in checks:
        check_grads(jax.jit(fn), args, order=1, modes=["rev"])
    sample = jax.jit(lambda df, s: priors.block_student_t(blocks, df=df, scale=s).sample(seed=key, sample_shape=(3,)))
    np.testing.assert_allclose(jax.jacfwd(sample, argnums=1)(3.0, 0.7), sample(3.0, 0.7) / 0.7, rtol=EXACT)
    assert np.all(np.isfinite(jax.jacfwd(sample)(3.0, 0.7)))  # through jax.random.gamma


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: priors.block_student_t((2, 0), df=3.0), "blocks must be a non-empty list of positive integers"),
        (lambda: priors.block_student_t((), df=3.0), "blocks"),
        (lambda: priors.block_student_t((2, 2), df=0.0), "df must be > 0"),
        (lambda: priors.block_student_t((2, 2), df=[1.0, 2.0, 3.0]), r"df must have shape \[\] or \[2\]"),
        (lambda: priors.block_student_t((2, 2), df=3.0, scale=-1.0), "scale must be > 0"),
        (lambda: priors.block_scale_mixture((2,), scales=(0.0, 1.0)), "scales must be > 0"),
        (lambda: priors.block_scale_mixture((2,), scales=(0.5, 1.0), weights=(0.5, 0.6)), "weights must sum to 1"),
        (lambda: priors.block_scale_mixture((2,), scales=(0.5, 1.0), weights=(0.5, 0.25, 0.25)), "weights must have shape"),
        (lambda: priors.hierarchical(4, 4), r"parents must be an integer in \[1, D − 1\] = \[1, 3\]"),
        (lambda: priors.hierarchical(4, 0), "parents"),
        (lambda: priors.hierarchical(4, 2, weights=np.ones((3, 2))), r"weights must have shape \[C, P\] = \[2, 2\]"),
        (lambda: priors.hierarchical(4, 2, log_scale_weights=np.full((2, 2), np.nan)), "log_scale_weights"),
        (lambda: priors.hierarchical(4, 2, child_scale=0.0), "child_scale"),
        (lambda: priors.make_prior("block_student_t", 4, blocks=(2, 3)), "blocks must sum to the latent dimension"),
        (lambda: priors.make_prior("block_student_t", 4, parents=2), "parents is not an option"),
        (lambda: priors.make_prior("isotropic", 4, blocks=(2, 2)), "blocks is not an option"),
        (lambda: priors.make_prior("hierarchical", 4), "parents is required"),
    ],
)
def test_invalid_input_names_the_parameter(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_registry_builds_the_structured_priors():
    for name, options, params, kind in [
        ("block_student_t", {}, {"df": 3.0}, priors.BlockProduct),
        ("block_student_t", {"blocks": [2, 2, 1]}, {"df": 3.0, "scale": 2.0}, priors.BlockProduct),
        ("block_scale_mixture", {"blocks": (1, 4)}, {}, priors.BlockProduct),
        ("hierarchical", {"parents": 2}, {"child_scale": 0.3}, priors.HierarchicalGaussian),
    ]:
        prior = priors.make_prior(name, 5, **options)(**params)
        assert isinstance(prior, kind) and prior.event_shape == (5,)
        if kind is priors.BlockProduct:
            assert prior.blocks == tuple(options.get("blocks", (5,)))


# -- the block MMD ------------------------------------------------------------------------------


def _mmd_samples(seed=0, n=9, m=7, dim=D):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(n, dim))), jnp.asarray(1.3 * rng.normal(size=(m, dim)) + 0.2)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_block_mmd_extremes_are_the_per_dimension_and_joint_mmd(kernel):
    x, y = _mmd_samples()
    per_dimension = mmd(x, y, kernel=kernel, per_dimension=True)
    np.testing.assert_array_equal(mmd(x, y, kernel=kernel, blocks=(1,) * D), per_dimension)
    np.testing.assert_array_equal(mmd(x, y, kernel=kernel, blocks=(D,)), mmd(x, y, kernel=kernel, per_dimension=False))
    np.testing.assert_array_equal(mmd(x, y, kernel=kernel), mmd(x, y, kernel=kernel, per_dimension=True))


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("kernel", ["imq", "rbf"])
def test_block_mmd_is_the_sum_of_joint_mmds_on_the_blocks(kernel):
    x, y = _mmd_samples(1)
    got = mmd(x, y, kernel=kernel, blocks=BLOCKS)
    want = sum(mmd(a, b, kernel=kernel, per_dimension=False) for a, b in zip(_split(x), _split(y)))
    np.testing.assert_allclose(got, want, rtol=EXACT)


@pytest.mark.usefixtures("x64")
def test_block_mmd_is_invariant_to_rotations_within_blocks_only():
    x, y = _mmd_samples(2)
    base = mmd(x, y, blocks=BLOCKS)
    rotation = jnp.asarray(_block_rotation(3))
    np.testing.assert_allclose(mmd(x @ rotation.T, y @ rotation.T, blocks=BLOCKS), base, rtol=1e-10)
    mixing = jnp.asarray(_orthogonal(D, np.random.default_rng(4)))
    assert abs(float(mmd(x @ mixing.T, y @ mixing.T, blocks=BLOCKS) - base)) > 1e-2 * abs(float(base))


def test_block_mmd_through_make_regulariser():
    x, y = _mmd_samples(3)
    divergence = make_regulariser("mmd", blocks=[2, 3, 1])  # a TOML list works

    class Samples:  # a "prior" whose samples are x
        def sample(self, seed, sample_shape):
            return x[: sample_shape[0]]

    got = divergence(jax.random.key(0), y, None, Samples())
    np.testing.assert_allclose(got, mmd(x[:7], y, blocks=BLOCKS), rtol=1e-6)
    with pytest.raises(ValueError, match="blocks or per_dimension, not both"):
        make_regulariser("mmd", blocks=[3, 3], per_dimension=True)
    with pytest.raises(ValueError, match="blocks must be a non-empty list"):
        make_regulariser("mmd", blocks=[3, -3])
    with pytest.raises(ValueError, match="blocks must sum to the latent dimension D = 6"):
        mmd(x, y, blocks=(2, 2))


# -- configs ------------------------------------------------------------------------------------


def _config(tmp_path, *extra):
    return load_config(None, ["data.name=pinwheel", "model.network=mlp", "model.latent_dim=2", "model.hidden=[8]",
                              "model.likelihood=gaussian", "train.batch_size=16", f"output_dir={tmp_path}", *extra])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["model.prior=block_student_t", "model.prior_params.df=3", "model.prior_options.blocks=[1,2]"],
         r"model.prior_options.blocks must sum to the latent dimension D = 2; got \[1, 2\]"),
        (["model.prior=block_student_t", "model.prior_params.df=3", "model.prior_options.blocks=[2,0]"],
         "model.prior_options.blocks must be a non-empty list of positive integers"),
        (["model.prior=block_student_t", "model.prior_params.df=3", "model.prior_options.block=[1,1]"],
         r"model.prior_options.block is not an option of model.prior='block_student_t'; allowed: \['blocks'\]"),
        (["model.prior=isotropic", "model.prior_options.blocks=[1,1]"], "model.prior_options.blocks is not an option"),
        (["model.prior=hierarchical"], "model.prior='hierarchical' needs model.prior_options.parents"),
        (["model.prior=hierarchical", "model.prior_options.parents=2"],
         r"model.prior_options.parents must be an integer in \[1, D − 1\] = \[1, 1\]; got 2"),
        (["model.prior=block_student_t", "model.prior_options.blocks=[1,1]"],
         "model.prior='block_student_t' needs model.prior_params.df"),
        (["model.regulariser=mmd", "model.regulariser_options.blocks=[3]"],
         "model.regulariser_options.blocks must sum to the latent dimension D = 2"),
        (["model.regulariser=[\"mmd\"]", "model.regulariser_options.mmd.blocks=[1]"],
         "model.regulariser_options.mmd.blocks must sum"),
    ],
)
def test_bad_structure_options_name_the_key(tmp_path, extra, message):
    with pytest.raises(ValueError, match=message):
        _config(tmp_path, *extra)


def test_block_prior_and_block_mmd_from_a_config_sweep_df(tmp_path):
    config = _config(tmp_path, "model.prior=block_student_t", "model.prior_options.blocks=[1,1]",
                     "model.regulariser=mmd", "model.regulariser_options.blocks=[1,1]", "train.alpha=5.0",
                     "sweep.prior.df=[2.0,9.0]")
    setup = build(config)
    prior = setup.prior(df=3.0)
    assert isinstance(prior, priors.BlockProduct) and prior.blocks == (1, 1)
    params = setup.trainer.init(jax.random.key(0), Hyperparams(prior={"df": 3.0}), 1e-3).params
    x, key = jnp.asarray(setup.data.eval_x[:16]), jax.random.key(1)

    def loss(df):
        return setup.eval_objective(key, params, Hyperparams(beta=1.0, alpha=5.0, prior={"df": df}), x)[0]

    swept = jax.jit(jax.vmap(loss))(jnp.array([2.0, 9.0]))  # the traced ν, one compiled program
    one = jax.jit(loss)
    np.testing.assert_allclose(swept, [one(2.0), one(9.0)], rtol=1e-4)  # float32
    assert swept[0] != swept[1]


def test_hierarchical_prior_from_a_config(tmp_path):
    setup = build(_config(tmp_path, "model.prior=hierarchical", "model.prior_options.parents=1",
                          "model.prior_params.weights=[[0.5]]", "model.prior_params.child_scale=0.4"))
    assert setup.fixed_prior == {"weights": [[0.5]], "child_scale": 0.4}
    prior = setup.prior(**setup.fixed_prior)
    assert isinstance(prior, priors.HierarchicalGaussian) and prior.parents == 1
    hyper = Hyperparams(prior=setup.fixed_prior)
    params = setup.trainer.init(jax.random.key(0), hyper, 1e-3).params
    loss, terms = setup.eval_objective(jax.random.key(1), params, hyper, jnp.asarray(setup.data.eval_x[:8]))
    assert np.isfinite(float(loss)) and terms.kl.shape == (8,)
