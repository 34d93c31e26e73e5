"""Chen et al.'s sampled MIG against a NumPy port of their formula, and on encoders of known structure."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from decompvae.metrics.sampled_mig import marginal_entropies, mig_sampled
from decompvae.posteriors import gaussian as gaussian_posterior

SIZES = (1, 3, 4, 5)  # a one-valued factor, like dSprites' colour, and three scored ones
N = int(np.prod(SIZES))


def _chen_entropies(samples, loc, scale):
    """Port of Chen et al.'s ``estimate_entropies`` (every sample kept): −mean_s logsumexp_n log q(z_sj|x_n) − log N."""
    log_q = stats.norm.logpdf(samples[None, :, :], loc[:, None, :], scale[:, None, :])  # [N, S, D]
    return -special.logsumexp(log_q - np.log(loc.shape[0]), axis=0).mean(axis=0)


def _chen_mig(samples, loc, scale, sizes, factors):
    """Port of Chen et al.'s ``mutual_info_metric_shapes`` + ``compute_metric_shapes`` on a grid in index order."""
    h = _chen_entropies(samples, loc, scale)
    grid = lambda a: a.reshape(tuple(sizes) + (a.shape[-1],))  # noqa: E731
    cond = np.zeros((len(factors), loc.shape[1]))
    for row, k in enumerate(factors):
        for v in range(sizes[k]):
            part = lambda a: np.take(grid(a), v, axis=k).reshape(-1, a.shape[-1])  # noqa: E731
            cond[row] += _chen_entropies(part(samples), part(loc), part(scale)) / sizes[k]
    mi = np.clip(np.sort(h[None] - cond, axis=1)[:, ::-1], 0, None)
    normed = mi / np.log(np.asarray([sizes[k] for k in factors], float))[:, None]
    return np.mean(normed[:, 0] - normed[:, 1]), h, cond


def _factors():
    return np.stack(np.unravel_index(np.arange(N), SIZES), axis=1).astype(np.float32)  # [N, 4] index order


def test_equals_a_port_of_chens_formula_on_identical_arrays():
    rng = np.random.default_rng(0)
    f = _factors()
    loc = np.concatenate([f[:, 1:] + 0.3 * rng.standard_normal((N, 3)), rng.standard_normal((N, 2))], 1)
    raw = np.log(rng.uniform(0.05, 0.6, (N, 5)) ** 2)  # log σ²
    loc, raw = loc.astype(np.float32), raw.astype(np.float32)
    scale = np.asarray(gaussian_posterior(loc, raw).scale_diag, np.float64)
    samples = np.asarray(gaussian_posterior(loc, raw).sample(seed=jax.random.key(1)))
    ours = mig_sampled(jax.random.key(2), gaussian_posterior, jnp.asarray(loc), jnp.asarray(raw), SIZES, (1, 2, 3),
                       num_samples=N, chunk_size=7, samples=jnp.asarray(samples))
    score, h, cond = _chen_mig(samples.astype(np.float64), loc.astype(np.float64), scale, SIZES, (1, 2, 3))
    np.testing.assert_allclose(ours["marginal_entropies"], h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours["conditional_entropies"], cond, rtol=1e-5, atol=1e-5)
    assert ours["score"] == pytest.approx(score, abs=1e-5)
    assert 0.1 < ours["score"] < 1  # the first three latents follow the scored factors


@pytest.mark.parametrize("entangled, expected", [(False, 1.0), (True, 0.0)])
def test_known_structure(entangled, expected):
    """Each scored factor in its own sharp latent: MI = log |v_k| in it, 0 elsewhere → MIG 1. Every latent a copy
    of one factor: the two largest MIs tie → MIG 0."""
    f = _factors()
    loc = np.repeat(f[:, 1:2], 3, axis=1) if entangled else f[:, 1:]
    raw = np.full_like(loc, np.log(0.01 ** 2))
    out = mig_sampled(jax.random.key(0), gaussian_posterior, jnp.asarray(loc), jnp.asarray(raw), SIZES, (1, 2, 3),
                      num_samples=N)
    assert out["score"] == pytest.approx(expected, abs=0.02)
    if not entangled:
        np.testing.assert_allclose(out["mutual_info"][:, 0], np.log(SIZES[1:]), rtol=0.02)


def test_a_subset_of_samples_estimates_the_same_entropy():
    rng = np.random.default_rng(3)
    loc = jnp.asarray(rng.standard_normal((400, 2)), jnp.float32)
    raw = jnp.zeros((400, 2))
    samples = gaussian_posterior(loc, raw).sample(seed=jax.random.key(4))
    every = marginal_entropies(jax.random.key(5), gaussian_posterior, loc, raw, samples, num_samples=400)
    some = marginal_entropies(jax.random.key(5), gaussian_posterior, loc, raw, samples, num_samples=200)
    np.testing.assert_allclose(some, every, atol=0.15)  # N(0, 2): 0.5·log(2πe·2) = 1.77 nats
    np.testing.assert_allclose(every, 0.5 * np.log(2 * np.pi * np.e * 2), atol=0.15)


def test_bad_inputs_are_refused():
    loc = jnp.zeros((N, 2))
    with pytest.raises(ValueError, match="factor 0 has 1 value"):
        mig_sampled(jax.random.key(0), gaussian_posterior, loc, loc, SIZES, (0, 1))
    with pytest.raises(ValueError, match="loc has 59 rows but the grid"):
        mig_sampled(jax.random.key(0), gaussian_posterior, loc[:59], loc[:59], SIZES, (1,))
