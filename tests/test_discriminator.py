"""FactorVAE's discriminator: the published architecture, the permutation, and the
density-ratio trick recovering known log-ratios and a known total correlation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decompvae import discriminator as dsc
from decompvae import divergences as dv

# Tolerances of the trained estimates (deterministic keys; measured margins ≈ 2×).
RATIO_MEAN_ABS_TOL = 0.2  # nats, mean |estimated − exact| log-ratio over both samples
TC_TOL = 0.12  # nats


def test_published_architecture():
    reg = dsc.make_factor_vae(latent_dim=10)
    variables = jax.eval_shape(reg.adversary.init, jax.random.key(0))
    kernels = [leaf.shape for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0] if "kernel" in str(path)]
    assert kernels == [(10, 1000)] + [(1000, 1000)] * 5 + [(1000, 2)]
    # Its own Adam(lr 1e-4, β₁ 0.5, β₂ 0.9): the second of two steps (gradients 1 then 3), written out.
    opt, params = reg.adversary.optimizer, jnp.zeros(1)
    _, state = opt.update(jnp.ones(1), opt.init(params), params)
    second, _ = opt.update(3.0 * jnp.ones(1), state, params)
    m, v = 0.5 * (0.5 * 1.0) + 0.5 * 3.0, 0.9 * (0.1 * 1.0) + 0.1 * 9.0
    np.testing.assert_allclose(second, -1e-4 * (m / (1 - 0.5**2)) / (np.sqrt(v / (1 - 0.9**2)) + 1e-8), rtol=1e-5)
    net = dsc.Discriminator(hidden=(4,))
    z = jnp.array([[-1.0, 2.0]])
    v = net.init(jax.random.key(0), z)
    h = z @ v["params"]["Dense_0"]["kernel"] + v["params"]["Dense_0"]["bias"]
    h = jnp.where(h > 0, h, 0.2 * h)  # leaky ReLU, slope 0.2
    out = h @ v["params"]["Dense_1"]["kernel"] + v["params"]["Dense_1"]["bias"]
    np.testing.assert_allclose(net.apply(v, z), out, rtol=1e-6)


def test_permute_dims_permutes_each_column_independently():
    z = jnp.arange(64.0).reshape(16, 4) + 100 * jnp.arange(4.0)
    perm = jax.jit(dsc.permute_dims)(jax.random.key(0), z)
    for d in range(4):
        np.testing.assert_array_equal(np.sort(perm[:, d]), np.sort(z[:, d]))
    order = np.argsort(np.asarray(perm), axis=0)
    assert len({tuple(order[:, d]) for d in range(4)}) == 4  # a different permutation per dimension
    assert not np.array_equal(perm, z)


def test_tc_estimate_and_loss_formulas():
    logits = jnp.array([[2.0, -1.0], [0.5, 0.5], [-1.0, 3.0]])
    np.testing.assert_allclose(dsc.factor_vae_tc(logits), np.mean([3.0, 0.0, -4.0]), rtol=1e-6)
    log_softmax = lambda a: a - np.log(np.exp(a).sum(-1, keepdims=True))  # noqa: E731
    want = -0.5 * (log_softmax(np.asarray(logits))[:, 0].mean() + log_softmax(np.asarray(logits[::-1]))[:, 1].mean())
    np.testing.assert_allclose(dsc.discriminator_loss(logits, logits[::-1]), want, rtol=1e-6)


def _train(loss, params, optimizer, steps, key):
    @jax.jit
    def run(params, key):
        def step(carry, key):
            params, state = carry
            updates, state = optimizer.update(jax.grad(loss)(params, key), state, params)
            return (optax.apply_updates(params, updates), state), None

        return jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, steps))[0][0]

    return run(params, key)


def _log_normal(z, mean, scale):
    return jnp.sum(-0.5 * ((z - mean) / scale) ** 2 - jnp.log(scale) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def test_discriminator_recovers_a_gaussian_density_ratio():
    # Class 0 ~ p = N(0, I), class 1 ~ q = N((1, −0.5), diag(1.5², 0.7²)): the optimal logit difference is log p/q.
    net = dsc.Discriminator(hidden=(64, 64))
    mean_q, scale_q = jnp.array([1.0, -0.5]), jnp.array([1.5, 0.7])
    batch = 512

    def loss(params, key):
        kp, kq = jax.random.split(key)
        zp = jax.random.normal(kp, (batch, 2))
        zq = mean_q + scale_q * jax.random.normal(kq, (batch, 2))
        return dsc.discriminator_loss(net.apply(params, zp), net.apply(params, zq))

    params = _train(loss, net.init(jax.random.key(0), jnp.zeros((1, 2))), optax.adam(3e-3), 500, jax.random.key(1))
    z = jnp.concatenate([jax.random.normal(jax.random.key(5), (1000, 2)),
                         mean_q + scale_q * jax.random.normal(jax.random.key(6), (1000, 2))])
    logits = net.apply(params, z)
    exact = _log_normal(z, 0.0, 1.0) - _log_normal(z, mean_q, scale_q)
    error = np.abs(np.asarray(logits[:, 0] - logits[:, 1] - exact))
    assert error.mean() < RATIO_MEAN_ABS_TOL, error.mean()
    assert np.corrcoef(logits[:, 0] - logits[:, 1], exact)[0, 1] > 0.98


def test_factor_vae_estimates_the_total_correlation_of_a_correlated_gaussian():
    # The adversary's own loss (same-batch permutation) trains it.
    # The TC of N(0, [[1, ρ], [ρ, 1]]) is −½ log(1 − ρ²).
    rho = 0.8
    reg = dsc.make_factor_vae(latent_dim=2, hidden=(64, 64), learning_rate=3e-3, b1=0.9, b2=0.999)
    chol = jnp.linalg.cholesky(jnp.array([[1.0, rho], [rho, 1.0]]))

    def loss(params, key):
        k_y, k_perm = jax.random.split(key)
        return reg.adversary.loss(k_perm, params, jax.random.normal(k_y, (512, 2)) @ chol.T)

    params = _train(loss, reg.adversary.init(jax.random.key(0)), reg.adversary.optimizer, 500, jax.random.key(1))
    y = jax.random.normal(jax.random.key(9), (20000, 2)) @ chol.T
    estimate = reg.estimate(None, dv.RegulariserInputs(y=y, posterior=None, prior=None, kl=None, adversary=params))
    assert abs(float(estimate) + 0.5 * np.log(1 - rho**2)) < TC_TOL
