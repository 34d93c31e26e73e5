"""The contract every kind of :data:`decompvae.regularisers.REGULARISERS` meets, on the kind's own example.

Each kind, named in the objective as ``regulariser={"d": kind}``, gives a finite scalar D, a finite
gradient in every parameter, a loss that is the reduction mean_b[−recon + β·KL] + α·D, and the same
numbers under ``jit`` and under ``vmap`` over α as one at a time. The last two tests do the guide's
recipe ("Adding a regulariser kind"): a new kind is covered once registered, and a wrong one fails.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import regularisers
from decompvae.networks import make_networks
from decompvae.objective import Hyperparams, make_objective
from decompvae.regularisers import adversaries, make_regularisers
from decompvae.priors import make_prior

DIM = 3
BATCH = 16
KINDS = sorted(regularisers.REGULARISERS)


def _setup(kind: str):
    options = regularisers.REGULARISERS[kind].example(DIM)
    encoder, decoder = make_networks("mlp", DIM, data_shape=(4,), hidden=(8,))
    divergence, regulariser_options = {"d": kind}, {"d": options} if options else None
    objective = make_objective(encoder, decoder, likelihood="gaussian", prior=make_prior("isotropic", DIM),
                               regulariser=divergence, regulariser_options=regulariser_options)
    x = jax.random.normal(jax.random.key(0), (BATCH, 4))
    params = {"encoder": encoder.init(jax.random.key(1), x),
              "decoder": decoder.init(jax.random.key(2), jnp.zeros((1, DIM)))}
    trained = adversaries(make_regularisers(divergence, regulariser_options))
    if trained:
        params["adversary"] = {name: a.init(jax.random.key(3)) for name, a in trained.items()}
    return objective, params, x


def _hyper(alpha) -> Hyperparams:
    return Hyperparams(beta=2.0, alpha={"d": alpha}, step=jnp.asarray(5))


def check_scalar_and_reduction(kind: str) -> None:
    objective, params, x = _setup(kind)
    loss, terms = objective(jax.random.key(4), params, _hyper(3.0), x)
    d = terms.regulariser["d"]
    assert jnp.shape(d) == () and bool(jnp.isfinite(d)) and bool(jnp.isfinite(loss))
    np.testing.assert_allclose(loss, jnp.mean(-terms.recon + 2.0 * terms.kl) + 3.0 * d, rtol=1e-5, atol=1e-5)


def check_gradient(kind: str) -> None:
    objective, params, x = _setup(kind)
    grads, _ = jax.grad(objective, argnums=1, has_aux=True)(jax.random.key(4), params, _hyper(3.0), x)
    leaves = jax.tree.leaves({k: v for k, v in grads.items() if k != "adversary"})
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in leaves)


def check_jit_and_vmap_over_alpha(kind: str) -> None:
    objective, params, x = _setup(kind)
    alphas = jnp.array([0.0, 1.0, 10.0])
    one_at_a_time = jnp.stack([objective(jax.random.key(4), params, _hyper(a), x)[0] for a in alphas])
    batched = jax.jit(jax.vmap(lambda a: objective(jax.random.key(4), params, _hyper(a), x)[0]))(alphas)
    np.testing.assert_allclose(batched, one_at_a_time, rtol=1e-5, atol=1e-4)


CHECKS = (check_scalar_and_reduction, check_gradient, check_jit_and_vmap_over_alpha)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_meets_the_contract(kind, check):
    check(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_the_registry_says_which_kinds_train_an_adversary(kind):
    """``KindSpec.adversary`` is what the built regulariser carries (the config's rule reads the flag)."""
    spec = regularisers.REGULARISERS[kind]
    built = regularisers.lift(regularisers.make_regulariser(kind, **spec.example(DIM)))
    assert spec.adversary == (built.adversary is not None)


def _make_centred(*, power: float = 2.0):
    return lambda key, y, posterior, prior: jnp.sum(jnp.abs(jnp.mean(y, axis=0)) ** power)


def test_a_new_kind_is_covered_once_registered(monkeypatch):
    monkeypatch.setitem(regularisers.REGULARISERS, "centred",
                        regularisers.KindSpec(_make_centred, ("power",), example=lambda dim: {"power": 2.0}))
    for check in CHECKS:
        check("centred")


def test_a_wrong_kind_fails_the_contract(monkeypatch):
    nan = lambda **options: lambda key, y, posterior, prior: jnp.sqrt(jnp.sum(y) - 1e9)  # noqa: E731
    monkeypatch.setitem(regularisers.REGULARISERS, "broken", regularisers.KindSpec(nan))
    with pytest.raises(AssertionError):
        check_scalar_and_reduction("broken")
