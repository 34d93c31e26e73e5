"""Seed-paired statistics, verdicts, the gaussianised codes, and the published α scale."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from decompvae import priors
from decompvae.regularisers import make_regulariser
from decompvae.objective import decomposition_terms, reduce_terms
from decompvae.posteriors import gaussian as gaussian_posterior
from decompvae.reproduce import _stats
from decompvae.metrics.suite import gaussianise

TOL = 1e-10


def _rows():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 1.0, 12)  # shared by both settings of a seed: what pairing removes
    rows = []
    for s in range(12):
        rows.append({"prior": "a", "beta": 1.0, "seed": s, "m": seed_effect[s] + 0.3 + rng.normal(0, 0.1)})
        rows.append({"prior": "b", "beta": 1.0, "seed": s, "m": seed_effect[s] + rng.normal(0, 0.1)})
        rows.append({"prior": "a", "beta": 2.0, "seed": s, "m": seed_effect[s] + 0.1 + rng.normal(0, 0.1)})
        rows.append({"prior": "b", "beta": 2.0, "seed": s, "m": seed_effect[s] + rng.normal(0, 0.1)})
    return rows


def test_paired_effect_is_scipys_paired_t_interval():
    rows = _rows()
    a = [r["m"] for r in rows if (r["prior"], r["beta"]) == ("a", 1.0)]
    b = [r["m"] for r in rows if (r["prior"], r["beta"]) == ("b", 1.0)]
    effect = _stats.paired_effect(_stats.paired_differences(rows, "m", {"prior": "a", "beta": 1.0},
                                                            {"prior": "b", "beta": 1.0}))
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert effect.n == 12
    np.testing.assert_allclose([effect.low, effect.high], [ci.low, ci.high], rtol=TOL)
    d = np.subtract(a, b)
    expected = (stats.t.ppf(0.975, 11) + stats.t.ppf(0.8, 11)) * d.std(ddof=1) / np.sqrt(12)
    np.testing.assert_allclose(effect.detectable, expected, rtol=TOL)
    # The unpaired interval of the same data is much wider: the seeds' shared part is not removed.
    unpaired = stats.ttest_ind(a, b).confidence_interval(0.95)
    assert unpaired.high - unpaired.low > 5 * (effect.high - effect.low)


def test_pooled_paired_averages_each_seed_over_the_values():
    rows = _rows()
    pooled = _stats.pooled_paired(rows, "m", {"prior": "a"}, {"prior": "b"}, "beta", [1.0, 2.0])
    d1 = _stats.paired_differences(rows, "m", {"prior": "a", "beta": 1.0}, {"prior": "b", "beta": 1.0})
    d2 = _stats.paired_differences(rows, "m", {"prior": "a", "beta": 2.0}, {"prior": "b", "beta": 2.0})
    np.testing.assert_allclose(pooled, (np.array(d1) + np.array(d2)) / 2, rtol=TOL)


def test_pairing_errors_are_clear():
    rows = [{"p": "a", "seed": 0, "m": 1.0}, {"p": "a", "seed": 0, "m": 2.0}, {"p": "b", "seed": 0, "m": 0.0}]
    with pytest.raises(ValueError, match="two networks with seed = 0"):
        _stats.paired_differences(rows, "m", {"p": "a"}, {"p": "b"})
    with pytest.raises(ValueError, match="no network matches"):
        _stats.paired_differences(rows, "m", {"p": "c"}, {"p": "b"})


@pytest.mark.parametrize("diffs, direction, verdict", [
    ([0.10, 0.12, 0.11, 0.09, 0.10], +1, _stats.REPRODUCED),         # clearly above 0
    ([0.001, -0.002, 0.0, 0.002, -0.001], +1, _stats.NOT_REPRODUCED),  # rules out δ = 0.05
    ([-0.10, -0.12, -0.11, -0.09, -0.10], +1, _stats.NOT_REPRODUCED),  # the opposite sign
    ([-0.10, -0.12, -0.11, -0.09, -0.10], -1, _stats.REPRODUCED),      # a predicted decrease
    ([0.3, -0.3, 0.2, -0.1, 0.05], +1, _stats.INCONCLUSIVE),           # too noisy to say
    ([0.3], +1, _stats.INCONCLUSIVE),                                  # one pair: no interval
])
def test_judge(diffs, direction, verdict):
    assert _stats.judge(_stats.paired_effect(diffs), direction=direction, smallest_effect=0.05) == verdict


def test_combine_and_claims_table():
    r, n, i = _stats.REPRODUCED, _stats.NOT_REPRODUCED, _stats.INCONCLUSIVE
    assert _stats.combine([r, r]) == r
    assert _stats.combine([r, n]) == _stats.PARTLY
    assert _stats.combine([n, n]) == n
    assert _stats.combine([n, i]) == i
    c = _stats.claim("x − y", [0.1, 0.12, 0.11], direction=+1, smallest_effect=0.05)
    table = _stats.claims_table([c])
    assert "| x − y | > 0 | +0.110 ± 0.025 | 3 |" in table and table.endswith("| 0.05 | reproduced |")
    with pytest.raises(ValueError, match="direction"):
        _stats.judge(c.effect, direction=0, smallest_effect=0.05)


def test_gaussianise_maps_student_t_marginals_to_normal():
    x = np.array([[-30.0, -2.0, 0.0, 0.5, 3.0, 200.0]])
    # ν = 2 has a closed-form CDF, F(t) = 1/2 + t/(2r) with r = √(2 + t²); its tails without cancellation:
    # F(t) = 1/(r(r − t)) for t < 0 and 1 − F(t) = 1/(r(r + t)) for t > 0.
    r = np.sqrt(2 + x**2)
    expected = np.where(x > 0, stats.norm.isf(1 / (r * (r + x))), stats.norm.ppf(1 / (r * (r - x))))
    np.testing.assert_allclose(gaussianise(x, 2.0), expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gaussianise(x[:, 1:5], 1e7), x[:, 1:5], atol=1e-5)  # ν → ∞: the identity
    np.testing.assert_allclose(gaussianise(2 * x[:, 1:5], 2.0, scale=2.0), gaussianise(x[:, 1:5], 2.0), rtol=1e-12)
    # The mapped samples of the prior are standard normal.
    samples = np.asarray(priors.student_t(1, df=3.0).sample(seed=jax.random.key(0), sample_shape=(20_000,)))
    assert stats.kstest(gaussianise(samples, 3.0)[:, 0], "norm").pvalue > 1e-3


# --- The published α scale (docs/guide.md): a NumPy port of the published per-point objective. ---------------------

def _published_imq_dim(x, y, scales=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0)):
    """The published `imq_dim_kernel(X, Y)`: per-dimension IMQ U-statistic, divided by B at the end."""
    b, _ = x.shape
    off = 1.0 - np.eye(b)
    total = 0.0
    for s in scales:
        c = 2 * s
        within = c / (c + (x[None] - x[:, None]) ** 2) + c / (c + (y[None] - y[:, None]) ** 2)  # [b, b, D]
        res1 = (off[..., None] * within).sum((0, 1)) / (b - 1)
        res2 = (c / (c + (x[None] - y[:, None]) ** 2)).sum((0, 1)) * 2.0 / b
        total += (res1 - res2).sum()
    return total / b


def _published_kld_inc(z, loc, scale, log_pz):
    """The published `kld_inc`: mean_i [log p(z_i) − log (1/B) Σ_j q(z_i|x_j)]."""
    log_q = stats.norm.logpdf(z[:, None, :], loc[None], scale[None]).sum(-1)  # [i, j]
    return float(np.mean(log_pz - (np.logaddexp.reduce(log_q, axis=1) - np.log(z.shape[0]))))


def _published_objective(recon, kl, beta, alpha, reg):
    """decomp_objective: obj_i = log p(x_i|z_i) − β·KL_i − α·reg for every point, summed over the batch."""
    return float(np.sum(recon - beta * kl - alpha * reg))


@pytest.mark.parametrize("kind", ["mmd", "inclusive_kl"])
def test_batch_size_times_our_loss_is_the_published_summed_objective(kind):
    jax.config.update("jax_enable_x64", True)
    try:
        b, d, beta, alpha = 16, 3, 2.0, 100.0
        k_loc, k_raw, k_x, k_terms = jax.random.split(jax.random.key(0), 4)
        loc = jax.random.normal(k_loc, (b, d), jnp.float64)
        raw = 0.5 * jax.random.normal(k_raw, (b, d), jnp.float64)
        posterior = gaussian_posterior(loc, raw)
        prior = priors.isotropic(d, scale=jnp.float64(1.0))
        x = jax.random.normal(k_x, (b, 5), jnp.float64)
        log_likelihood = lambda z: -0.5 * jnp.sum((x - jnp.tile(z, (1, 2))[:, :5]) ** 2, -1)  # noqa: E731
        seen = {}
        real = make_regulariser(kind)

        def recording(key, y, q, p):  # eager: the test sees exactly the samples the objective used
            seen["key"], seen["y"] = key, np.asarray(y)
            return real(key, y, q, p)

        terms = decomposition_terms(k_terms, posterior, log_likelihood, prior, regulariser=recording)
        ours = float(reduce_terms(terms, beta, alpha))
        z = np.asarray(prior.sample(seed=seen["key"], sample_shape=(b,)))  # the prior samples the estimator drew
        if kind == "mmd":
            reg = _published_imq_dim(z, seen["y"])  # the published call: regs(pz samples, zs)
        else:
            scale = np.asarray(posterior.scale_diag)
            reg = _published_kld_inc(z, np.asarray(loc), scale, np.asarray(prior.log_prob(z)))
        np.testing.assert_allclose(float(terms.regulariser["divergence"]), reg, rtol=1e-10)
        published = _published_objective(np.asarray(terms.recon), np.asarray(terms.kl), beta, alpha, reg)
        np.testing.assert_allclose(b * ours, -published, rtol=1e-10)  # published α = α here
    finally:
        jax.config.update("jax_enable_x64", False)
