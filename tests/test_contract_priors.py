"""The contract every entry of :data:`decompvae.priors.PRIORS` meets, driven on the entry's own example.

A prior registered without an example of its required numbers fails here; one whose density does
not integrate to 1, whose samples disagree with its density, or whose numbers cannot be traced
(jit) and batched (vmap: one compiled program per sweep) fails here too. The last two tests do the
guide's recipe ("Adding a prior"): a new entry is covered the moment it is registered, and a wrong
one fails.
"""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import priors

NAMES = sorted(priors.PRIORS)
SAMPLES = 20_000
STEP = 0.02    # grid spacing of the 2-D quadrature (Riemann sums of smooth densities converge fast)
EXTENT = 16.0  # the grid covers [−16, 16]²: every example loses < 5e-4 of its mass outside


def _build(name: str, dim: int):
    spec = priors.PRIORS[name]
    options, params = spec.example(dim)
    return spec, options, {k: jnp.asarray(v) for k, v in params.items()}


def _dim(name: str, default: int) -> int:
    return priors.PRIORS[name].dim or default


def check_example(name: str) -> None:
    """The example gives every required number and option; the latent blocks partition D."""
    dim = _dim(name, 4)
    spec, options, params = _build(name, dim)
    assert set(spec.required) <= set(params)
    assert set(spec.required_options) <= set(options) <= set(spec.options)
    blocks = spec.latent_blocks(dim, options)
    assert blocks is None or sum(blocks) == dim


def check_shapes(name: str) -> None:
    """Samples [n, D] and finite log-densities [n]."""
    dim = _dim(name, 4)
    _, options, params = _build(name, dim)
    dist = priors.make_prior(name, dim, **options)(**params)
    z = dist.sample(seed=jax.random.key(0), sample_shape=(7,))
    assert dist.event_shape == (dim,) and z.shape == (7, dim)
    log_p = dist.log_prob(z)
    assert log_p.shape == (7,) and bool(jnp.all(jnp.isfinite(log_p)))


def _grid() -> tuple[jax.Array, float]:
    axis = jnp.arange(-EXTENT, EXTENT + STEP / 2, STEP)
    u, v = jnp.meshgrid(axis, axis, indexing="ij")
    return jnp.stack([u.ravel(), v.ravel()], axis=-1), STEP**2


def check_density(name: str) -> None:
    """∫ p = 1 by quadrature on a 2-D grid; P(z ∈ [−½, 1]²) by quadrature = the samples' frequency."""
    _, options, params = _build(name, 2)
    dist = priors.make_prior(name, 2, **options)(**params)
    z, area = _grid()
    density = jnp.exp(jax.jit(dist.log_prob)(z)) * area
    np.testing.assert_allclose(float(jnp.sum(density)), 1.0, atol=2e-3)
    inside = lambda points: jnp.all((points >= -0.5) & (points <= 1.0), axis=-1)  # noqa: E731
    mass = float(jnp.sum(jnp.where(inside(z), density, 0.0)))
    frequency = float(jnp.mean(inside(dist.sample(seed=jax.random.key(1), sample_shape=(SAMPLES,)))))
    assert abs(frequency - mass) < 5 * np.sqrt(mass * (1 - mass) / SAMPLES) + 2e-3, (frequency, mass)


def check_traced(name: str) -> None:
    """The numbers are traced: jit and vmap over them give the eager log-densities."""
    dim = _dim(name, 3)
    _, options, params = _build(name, dim)
    prior_fn = priors.make_prior(name, dim, **options)
    z = jax.random.normal(jax.random.key(2), (5, dim))
    eager = prior_fn(**params).log_prob(z)
    jitted = jax.jit(lambda p: prior_fn(**p).log_prob(z))(params)
    stacked = jax.tree.map(lambda v: jnp.stack([v, v]), params)
    batched = jax.vmap(lambda p: prior_fn(**p).log_prob(z))(stacked)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batched, jnp.stack([eager, eager]), rtol=1e-5, atol=1e-5)


CHECKS = (check_example, check_shapes, check_density, check_traced)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", NAMES)
def test_every_prior_meets_the_contract(name, check):
    check(name)


def _logistic(dim):
    return lambda scale=1.0: distrax.Independent(distrax.Logistic(jnp.zeros(dim), scale * jnp.ones(dim)), 1)


def test_a_new_prior_is_covered_once_registered(monkeypatch):
    monkeypatch.setitem(priors.PRIORS, "logistic", priors.PriorSpec(_logistic, example=lambda dim: ({}, {"scale": 0.8})))
    for check in CHECKS:
        check("logistic")


class _Unnormalised(distrax.MultivariateNormalDiag):
    def log_prob(self, value):
        return super().log_prob(value) + 0.01  # 1 % too much mass


def test_a_wrong_prior_fails_the_contract(monkeypatch):
    monkeypatch.setitem(priors.PRIORS, "wrong", priors.PriorSpec(lambda dim: lambda: _Unnormalised(jnp.zeros(dim))))
    check_shapes("wrong")
    with pytest.raises(AssertionError):
        check_density("wrong")
    monkeypatch.setitem(priors.PRIORS, "no_example", priors.PriorSpec(priors.PRIORS["student_t"].make, required=("df",)))
    with pytest.raises(AssertionError):
        check_example("no_example")
