"""The objective as one pure function: reductions, transformations, gradients,
the IWAE bound and input validation."""

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from _tiny_networks import B, D, X_DIM, Decoder, Encoder

from decompvae.regularisers import make_regulariser
from decompvae import priors
from decompvae.objective import (
    Hyperparams,
    decomposition_terms,
    iwae_bound,
    make_iwae,
    make_objective,
    reduce_terms,
)



def _setup(dtype=jnp.float32):
    x = (jax.random.uniform(jax.random.key(1), (B, X_DIM)) > 0.5).astype(dtype)
    enc, dec = Encoder(), Decoder()
    params = {"encoder": enc.init(jax.random.key(2), x), "decoder": dec.init(jax.random.key(3), jnp.zeros((1, D)))}
    params = jax.tree.map(lambda a: a.astype(dtype), params)
    return enc, dec, params, x


def _objective(regulariser="mmd", family="isotropic", **kw):
    enc, dec, params, x = _setup()
    obj = make_objective(enc, dec, likelihood="bernoulli", prior=priors.make_prior(family, D), regulariser=regulariser, **kw)
    return obj, params, x


def test_loss_is_the_one_reduction():
    obj, params, x = _objective()
    hyper = Hyperparams(beta=3.0, alpha=2.0)
    loss, t = obj(jax.random.key(0), params, hyper, x)
    assert t.recon.shape == (B,) and t.kl.shape == (B,) and t.regulariser["divergence"].shape == ()
    np.testing.assert_allclose(loss, jnp.mean(-t.recon + 3.0 * t.kl) + 2.0 * t.regulariser["divergence"], rtol=1e-6)
    np.testing.assert_allclose(reduce_terms(t, 3.0, 2.0), loss, rtol=1e-7)
    # Gaussian posterior and prior: the closed-form KL.
    enc, _, _, _ = _setup()
    loc, log_var = enc.apply(params["encoder"], x)
    closed = 0.5 * jnp.sum(jnp.exp(log_var) + loc**2 - 1.0 - log_var, axis=-1)
    np.testing.assert_allclose(t.kl, closed, rtol=1e-5)


def test_k_samples_are_averaged_and_mc_kl_on_same_samples():
    prior = priors.student_t(D, df=4.0)
    q = distrax.MultivariateNormalDiag(jnp.zeros((B, D)), 0.5 * jnp.ones((B, D)))
    w = jax.random.normal(jax.random.key(7), (D,))

    def log_lik(z):
        return -jnp.sum((z - w) ** 2, axis=-1)

    key = jax.random.key(11)
    t = decomposition_terms(key, q, log_lik, prior, num_samples=5)
    key_z, _ = jax.random.split(key)
    z = q.sample(seed=key_z, sample_shape=(5,))
    np.testing.assert_allclose(t.recon, jnp.mean(jax.vmap(log_lik)(z), axis=0), rtol=1e-6)
    np.testing.assert_allclose(t.kl, jnp.mean(q.log_prob(z) - prior.log_prob(z), axis=0), rtol=1e-6)


def test_vmap_over_hyperparams_equals_loop_and_jit_equals_eager():
    obj, params, x = _objective(family="student_t")
    hypers = Hyperparams(
        beta=jnp.array([0.5, 1.0, 4.0, 8.0]),
        alpha=jnp.array([0.0, 1.0, 10.0, 0.2]),
        prior={"df": jnp.array([2.0, 5.0, 9.0, 12.0])},
    )
    key = jax.random.key(0)
    vmapped = jax.jit(jax.vmap(obj, in_axes=(None, None, 0, None)))(key, params, hypers, x)
    for i in range(4):
        h = jax.tree.map(lambda a: a[i], hypers)
        eager = obj(key, params, h, x)
        jitted = jax.jit(obj)(key, params, h, x)
        for got in (vmapped, jitted):
            np.testing.assert_allclose(jax.tree.map(lambda a: a[i], got[0]) if got is vmapped else got[0], eager[0], rtol=1e-5)
        np.testing.assert_allclose(vmapped[1].regulariser["divergence"][i], eager[1].regulariser["divergence"], rtol=1e-4,
                                   atol=1e-6)


def test_traced_once_across_beta_and_alpha():
    obj, params, x = _objective()
    traces = []

    def counted(key, params, hyper, x):
        traces.append(1)
        return obj(key, params, hyper, x)[0]

    step = jax.jit(jax.value_and_grad(counted, argnums=1))
    for beta, alpha in [(1.0, 0.0), (2.0, 1.0), (16.0, 0.5)]:
        step(jax.random.key(0), params, Hyperparams(beta=jnp.float32(beta), alpha=jnp.float32(alpha)), x)
    assert len(traces) == 1


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize(
    "divergence, family",
    [(None, "isotropic"), ("mmd", "sparse"), ("inclusive_kl", "isotropic"), ("exclusive_kl", "laplace")],
)
def test_gradients_match_finite_differences(divergence, family):
    params_prior = {"sparse": {"gamma": 0.8}}.get(family, {})
    prior = priors.make_prior(family, D)(**params_prior)
    div = None if divergence is None else make_regulariser(divergence)
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.normal(size=(D, X_DIM)))
    x = jnp.asarray(rng.uniform(size=(B, X_DIM)) > 0.5, jnp.float64)
    key = jax.random.key(3)

    def loss(loc, log_var, w):
        q = distrax.MultivariateNormalDiag(loc, jnp.exp(0.5 * log_var))
        log_lik = lambda z: jnp.sum(x * jax.nn.log_sigmoid(z @ w) + (1 - x) * jax.nn.log_sigmoid(-(z @ w)), -1)
        t = decomposition_terms(key, q, log_lik, prior, regulariser=div, num_samples=2)
        return reduce_terms(t, 2.0, 3.0)

    args = (jnp.asarray(rng.normal(size=(B, D))), jnp.asarray(rng.normal(scale=0.5, size=(B, D))), w)
    check_grads(loss, args, order=1, modes=["rev"], atol=1e-5, rtol=1e-5)


class ExtremeEncoder(nn.Module):
    """Log-variances of −30 and +30 (σ = e^−15 and e^15)."""

    @nn.compact
    def __call__(self, x):
        log_var = jnp.where(jnp.arange(D) == 0, -30.0, 30.0)
        return nn.Dense(D)(x), jnp.broadcast_to(log_var, (x.shape[0], D))


@pytest.mark.parametrize("divergence", ["mmd", "inclusive_kl", "exclusive_kl"])
def test_gradients_finite_at_extreme_log_variances(divergence):
    _, dec, params, x = _setup()
    obj = make_objective(
        ExtremeEncoder(), dec, likelihood="bernoulli", prior=priors.make_prior("isotropic", D), regulariser=divergence
    )
    p = {"encoder": ExtremeEncoder().init(jax.random.key(0), x), "decoder": params["decoder"]}
    (loss, _), grads = jax.value_and_grad(obj, argnums=1, has_aux=True)(jax.random.key(0), p, Hyperparams(alpha=1.0), x)
    assert np.isfinite(loss)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


@pytest.mark.usefixtures("x64")
def test_iwae_exact_at_true_posterior_and_bounds_ordered():
    # Linear Gaussian model: p(z) = N(0, I), p(x|z) = N(Wz, σ²I); the exact
    # posterior makes every importance weight equal p(x).
    rng = np.random.default_rng(5)
    w, sigma = rng.normal(size=(X_DIM, D)), 0.7
    x = rng.normal(size=(B, X_DIM))
    cov_x = w @ w.T + sigma**2 * np.eye(X_DIM)
    from scipy.stats import multivariate_normal

    log_px = multivariate_normal(np.zeros(X_DIM), cov_x).logpdf(x)
    post_cov = np.linalg.inv(np.eye(D) + w.T @ w / sigma**2)
    post_mean = x @ w @ post_cov / sigma**2  # [B, D]
    exact_q = distrax.MultivariateNormalFullCovariance(jnp.asarray(post_mean), jnp.asarray(np.broadcast_to(post_cov, (B, D, D))))

    def log_lik(z):
        return jnp.sum(-0.5 * ((x - z @ w.T) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi), axis=-1)

    prior = priors.isotropic(D)
    got = iwae_bound(jax.random.key(0), exact_q, log_lik, prior, num_samples=50, chunk_size=10)
    np.testing.assert_allclose(got, log_px, rtol=1e-10)
    # An over-dispersed posterior: ELBO < IWAE_1000 ≈ log p(x).
    wide = distrax.MultivariateNormalDiag(jnp.asarray(post_mean), jnp.sqrt(1.5 * jnp.diag(post_cov)) * jnp.ones((B, D)))
    elbo = decomposition_terms(jax.random.key(2), wide, log_lik, prior, num_samples=1000)
    k1000 = iwae_bound(jax.random.key(1), wide, log_lik, prior, num_samples=1000, chunk_size=100)
    assert np.all(elbo.recon - elbo.kl < k1000 - 0.05)
    np.testing.assert_allclose(k1000, log_px, atol=0.06)  # MC noise ≈ 0.02


def test_make_iwae_runs_jitted():
    enc, dec, params, x = _setup()
    iwae = make_iwae(enc, dec, likelihood="bernoulli", prior=priors.make_prior("isotropic", D), num_samples=40, chunk_size=20)
    ll = jax.jit(iwae)(jax.random.key(0), params, Hyperparams(), x)
    obj = make_objective(enc, dec, likelihood="bernoulli", prior=priors.make_prior("isotropic", D))
    _, t = obj(jax.random.key(0), params, Hyperparams(), x)
    assert ll.shape == (B,) and np.all(ll > t.recon - t.kl - 1.0)  # IWAE ≥ ELBO up to MC noise


def test_invalid_configuration():
    enc, dec, params, x = _setup()
    iso = priors.make_prior("isotropic", D)
    with pytest.raises(ValueError, match="num_samples"):
        make_objective(enc, dec, likelihood="bernoulli", prior=iso, num_samples=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        make_objective(enc, dec, likelihood="bernoulli", prior=iso, regulariser="jsd")
    with pytest.raises(ValueError, match="likelihood"):
        make_objective(enc, dec, likelihood="poisson", prior=iso)
    with pytest.raises(ValueError, match="posterior"):
        make_objective(enc, dec, likelihood="bernoulli", prior=iso, posterior="student")
    with pytest.raises(ValueError, match="kl"):
        make_objective(enc, dec, likelihood="bernoulli", prior=iso, kl="exact")
    # Traced, not run (jax.eval_shape; the hyperparameters stay concrete, so value checks fire): nothing compiles.
    trace = lambda obj, hyper, x: jax.eval_shape(lambda p, x: obj(jax.random.key(0), p, hyper, x), params, x)  # noqa: E731
    obj = make_objective(enc, dec, likelihood="bernoulli", prior=priors.make_prior("isotropic", D + 1))
    with pytest.raises(ValueError, match="latent dimension mismatch"):
        trace(obj, Hyperparams(), x)
    closed = make_objective(enc, dec, likelihood="bernoulli", prior=priors.make_prior("student_t", D), kl="closed")
    with pytest.raises(ValueError, match="closed-form"):
        trace(closed, Hyperparams(prior={"df": 3.0}), x)
    with pytest.raises(ValueError, match="df"):
        trace(make_objective(enc, dec, likelihood="bernoulli", prior=priors.make_prior("student_t", D)),
              Hyperparams(prior={"df": -1.0}), x)
    with pytest.raises(ValueError, match="at least 2"):
        trace(make_objective(enc, dec, likelihood="bernoulli", prior=iso, regulariser="mmd"), Hyperparams(), x[:1])


# Several regularisers: loss = mean_b[−recon_b + β·KL_b] + Σ_k α_k·D_k.

SEVERAL = {"mmd": "mmd", "tc": "total_correlation", "dip": "dip_offdiagonal"}


def test_several_divergences_are_weighted_and_reported():
    obj, params, x = _objective(regulariser=SEVERAL, regulariser_options={"tc": {"dataset_size": 100}})
    alpha = {"mmd": 2.0, "tc": 0.5, "dip": 3.0}
    loss, t = jax.jit(obj)(jax.random.key(0), params, Hyperparams(beta=1.5, alpha=alpha), x)
    assert set(t.regulariser) == set(SEVERAL) and all(v.shape == () for v in t.regulariser.values())
    want = jnp.mean(-t.recon + 1.5 * t.kl) + sum(alpha[k] * t.regulariser[k] for k in SEVERAL)
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    np.testing.assert_allclose(reduce_terms(t, 1.5, alpha), loss, rtol=1e-7)
    assert t.adversary_loss is None
    # Each D_k is its estimator on the same posterior sample (the non-random ones can be recomputed).
    enc, _, _, _ = _setup()
    loc, log_var = enc.apply(params["encoder"], x)
    q = distrax.MultivariateNormalDiag(loc, jnp.exp(0.5 * log_var) + 1e-6)
    dip = make_regulariser("dip_offdiagonal")(None, None, q, None)
    np.testing.assert_allclose(t.regulariser["dip"], dip, rtol=1e-5)
    # A list of kinds names each divergence by its kind.
    listed, _, _ = _objective(regulariser=["mmd", "dip_offdiagonal"])
    _, tl = listed(jax.random.key(0), params, Hyperparams(alpha={"mmd": 1.0, "dip_offdiagonal": 1.0}), x)
    assert set(tl.regulariser) == {"mmd", "dip_offdiagonal"}


def test_vmap_over_alpha_dicts_equals_loop():
    obj, params, x = _objective(regulariser=SEVERAL, family="student_t")
    hypers = Hyperparams(
        beta=jnp.array([1.0, 4.0, 0.0]),
        alpha={
            "mmd": jnp.array([0.0, 1.0, 10.0]), "tc": jnp.array([5.0, 0.0, 1.0]), "dip": jnp.array([0.0, 2.0, 50.0])
        },
        prior={"df": jnp.array([3.0, 5.0, 9.0])},
    )
    key = jax.random.key(4)
    vmapped = jax.jit(jax.vmap(obj, in_axes=(None, None, 0, None)))(key, params, hypers, x)
    for i in range(3):
        loss, terms = obj(key, params, jax.tree.map(lambda a: a[i], hypers), x)
        np.testing.assert_allclose(vmapped[0][i], loss, rtol=1e-5)
        for k in SEVERAL:
            np.testing.assert_allclose(vmapped[1].regulariser[k][i], terms.regulariser[k], rtol=1e-4, atol=1e-6)


def test_traced_regulariser_params_and_step():
    obj, params, x = _objective(regulariser={"capacity": "capacity"}, regulariser_options={"capacity": {"num_steps": 10}})
    hyper = Hyperparams(beta=0.0, alpha={"capacity": 1000.0}, regulariser_params={"capacity": {"c_max": 20.0}})

    def loss_at(step, c_max):
        h = hyper._replace(step=step, regulariser_params={"capacity": {"c_max": c_max}})
        return obj(jax.random.key(0), params, h, x)

    loss, t = jax.jit(loss_at)(jnp.int32(5), 20.0)
    np.testing.assert_allclose(t.regulariser["capacity"], jnp.abs(jnp.mean(t.kl) - 10.0), rtol=1e-6)
    np.testing.assert_allclose(loss, jnp.mean(-t.recon) + 1000.0 * t.regulariser["capacity"], rtol=1e-6)
    c_max = jnp.array([5.0, 50.0])
    _, tv = jax.vmap(loss_at, in_axes=(None, 0))(jnp.int32(20), c_max)
    np.testing.assert_allclose(tv.regulariser["capacity"], jnp.abs(jnp.mean(t.kl) - c_max), rtol=1e-5)
    # The single form takes the parameters flat.
    single, _, _ = _objective(regulariser="capacity")
    _, ts = single(jax.random.key(0), params, Hyperparams(beta=0.0, alpha=1.0, regulariser_params={"c_max": 7.0}), x)
    np.testing.assert_allclose(ts.regulariser["divergence"], jnp.abs(jnp.mean(ts.kl) - 7.0), rtol=1e-6)  # step None: C = C_max


def test_adversary_is_read_from_params_behind_stop_gradient():
    divergence = {"fv": make_regulariser("factor_vae", latent_dim=D, hidden=(8,))}
    obj, params, x = _objective(regulariser=divergence)
    adversary = {"fv": divergence["fv"].adversary.init(jax.random.key(5))}
    hyper = Hyperparams(alpha={"fv": 10.0})

    def parts(adv):
        loss, t = obj(jax.random.key(0), {**params, "adversary": adv}, hyper, x)
        return loss, t.adversary_loss["fv"]

    loss, adv_loss = parts(adversary)
    assert np.isfinite(loss) and np.isfinite(adv_loss)
    grad_loss = jax.grad(lambda a: parts(a)[0])(adversary)  # the VAE's loss sees the discriminator stopped
    assert all(np.all(g == 0) for g in jax.tree.leaves(grad_loss))
    grad_adv = jax.grad(lambda a: parts(a)[1])(adversary)
    assert any(np.any(g != 0) for g in jax.tree.leaves(grad_adv))
    # The discriminator's loss sees z stopped: no gradient reaches the encoder.
    def discriminator_loss(p):
        return obj(jax.random.key(0), {**p, "adversary": adversary}, hyper, x)[1].adversary_loss["fv"]

    enc_grad = jax.grad(discriminator_loss)(params)
    assert all(np.all(g == 0) for g in jax.tree.leaves(enc_grad))
    with pytest.raises(ValueError, match="params\\['adversary'\\]"):
        obj(jax.random.key(0), params, hyper, x)


def test_invalid_composition():
    obj, params, x = _objective(regulariser=SEVERAL)
    with pytest.raises(ValueError, match="names"):
        obj(jax.random.key(0), params, Hyperparams(alpha=1.0), x)
    with pytest.raises(ValueError, match="names"):
        obj(jax.random.key(0), params, Hyperparams(alpha={"mmd": 1.0}), x)
    with pytest.raises(ValueError, match="single regulariser"):
        _objective()[0](jax.random.key(0), params, Hyperparams(alpha={"mmd": 1.0}), x)
    alpha = dict.fromkeys(SEVERAL, 1.0)
    with pytest.raises(ValueError, match="not among the regularisers"):
        obj(jax.random.key(0), params, Hyperparams(alpha=alpha, regulariser_params={"capacity": {"c_max": 1.0}}), x)
    with pytest.raises(ValueError, match="reads no traced parameters"):
        obj(jax.random.key(0), params, Hyperparams(alpha=alpha, regulariser_params={"mmd": {"c_max": 1.0}}), x)
    with pytest.raises(ValueError, match="not among the regularisers"):
        _objective(regulariser=SEVERAL, regulariser_options={"kl": {"num_samples": 3}})
    with pytest.raises(ValueError, match="dict form"):
        _objective(regulariser="factor_vae", regulariser_options={"latent_dim": D})
    with pytest.raises(ValueError, match="distinct"):
        _objective(regulariser=["mmd", "mmd"])
