"""build(config): finished pure functions that agree with each other, priors from the registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import priors
from decompvae.build import build
from decompvae.config import load_config
from decompvae.likelihoods import gaussian_log_likelihood
from decompvae.objective import Hyperparams


def _config(*extra):
    return load_config(None, ["data.name=pinwheel", "model.network=mlp", "model.latent_dim=2", "model.hidden=[8]",
                              "model.likelihood=gaussian", "train.batch_size=16", *extra])


def test_functions_agree_with_each_other():
    setup = build(_config("model.prior=isotropic", "sweep.beta=[1,2]"))
    assert [m.beta for m in setup.members] == [1.0, 2.0]
    hyper = Hyperparams(beta=1.0, alpha=0.0, prior={})
    params = setup.trainer.init(jax.random.key(0), hyper, 1e-3).params
    x = jnp.asarray(setup.data.eval_x[:5])
    loc, raw = setup.encode(params, x)
    model = setup.model(params, hyper, x)
    np.testing.assert_allclose(model.posterior.mean(), loc, rtol=1e-6)
    np.testing.assert_allclose(setup.posterior(loc, raw).stddev(), model.posterior.stddev(), rtol=1e-6)
    mean = setup.decode_mean(params, loc)  # the Gaussian likelihood (scale 1) around the decoded mean
    np.testing.assert_allclose(model.log_likelihood(loc), gaussian_log_likelihood(x, mean, 1.0), rtol=1e-5)
    loss, terms = setup.eval_objective(jax.random.key(1), params, hyper, x)
    assert np.isfinite(float(loss)) and terms.recon.shape == (5,)
    bound = setup.iwae(num_samples=20, chunk_size=10)(jax.random.key(2), params, hyper, x)
    elbo = terms.recon - terms.kl
    assert bound.shape == (5,) and float(jnp.mean(bound)) >= float(jnp.mean(elbo)) - 1.0


ANISOTROPIC = "model.prior=anisotropic_logits"


def test_anisotropic_priors_take_pca_logits_fixed_or_as_a_learned_start():
    fixed = build(_config(ANISOTROPIC, "model.prior_init=pca"))
    variances = priors.pca_variances(np.asarray(fixed.data.pca_source), 2)
    np.testing.assert_allclose(fixed.fixed_prior["logits"], np.log(variances), rtol=1e-5)
    learned = build(_config(ANISOTROPIC, "model.prior_learned=true"))  # starts at the PCA logits
    params = learned.trainer.init(jax.random.key(0), Hyperparams(prior={}), 1e-3).params
    np.testing.assert_allclose(params["prior"]["logits"], np.log(variances), rtol=1e-5)
    zeros = build(_config(ANISOTROPIC, "model.prior_learned=true", "model.prior_init=zeros"))
    params = zeros.trainer.init(jax.random.key(0), Hyperparams(prior={}), 1e-3).params
    np.testing.assert_array_equal(params["prior"]["logits"], np.zeros(2))
    assert "logits" not in learned.fixed_prior and "prior" not in build(_config()).trainer.init(
        jax.random.key(0), Hyperparams(prior={}), 1e-3).params


@pytest.mark.parametrize("former, now", [
    (["model.prior=anisotropic_pca"], [ANISOTROPIC, "model.prior_init=pca"]),
    (["model.prior=anisotropic_learned"], [ANISOTROPIC, "model.prior_learned=true"]),
    (["model.prior=anisotropic_learned", "model.prior_init=zeros"],
     [ANISOTROPIC, "model.prior_learned=true", "model.prior_init=zeros"]),
])
def test_former_anisotropic_names_load_as_the_same_run(former, now):
    with pytest.warns(DeprecationWarning, match="model.prior_init='pca'|model.prior_learned=True"):
        old = _config(*former)
    new = _config(*now)
    assert old.to_dict() == new.to_dict()
    old_setup, new_setup = build(old), build(new)
    init = lambda setup: setup.trainer.init(jax.random.key(0), Hyperparams(prior={}), 1e-3).params  # noqa: E731
    jax.tree.map(np.testing.assert_array_equal, init(old_setup), init(new_setup))
    assert old_setup.fixed_prior.keys() == new_setup.fixed_prior.keys()


@pytest.mark.parametrize("changes, message", [
    (["model.prior=isotropic", "model.prior_init=pca"], "model.prior_init applies to a prior"),
    (["model.prior=student_t", "model.prior_params.df=3.0", "model.prior_learned=true"],
     "model.prior_learned applies to a prior"),
    ([ANISOTROPIC, "model.prior_init=svd"], "model.prior_init"),
    ([ANISOTROPIC, "model.prior_init=pca", "model.prior_params.logits=[0.0, 0.0]"], "give one"),
    ([ANISOTROPIC, "model.prior_learned=1"], "model.prior_learned must be true or false"),
    ([ANISOTROPIC], "needs model.prior_params.logits"),
])
def test_prior_sources_are_checked_naming_the_key(changes, message):
    with pytest.raises(ValueError, match=message):
        _config(*changes)
