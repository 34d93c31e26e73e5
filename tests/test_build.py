"""build(config): finished pure functions that agree with each other, priors from the registry."""

import jax
import jax.numpy as jnp
import numpy as np

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
    assert [m["beta"] for m in setup.members] == [1.0, 2.0]
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


def test_anisotropic_priors_take_pca_logits_fixed_or_as_a_learned_start():
    fixed = build(_config("model.prior=anisotropic_pca"))
    variances = priors.pca_variances(np.asarray(fixed.data.pca_source), 2)
    np.testing.assert_allclose(fixed.fixed_prior["logits"], np.log(variances), rtol=1e-5)
    learned = build(_config("model.prior=anisotropic_learned"))
    params = learned.trainer.init(jax.random.key(0), Hyperparams(prior={}), 1e-3).params
    np.testing.assert_allclose(params["prior"]["logits"], np.log(variances), rtol=1e-5)
    zeros = build(_config("model.prior=anisotropic_learned", "model.prior_init=zeros"))
    params = zeros.trainer.init(jax.random.key(0), Hyperparams(prior={}), 1e-3).params
    np.testing.assert_array_equal(params["prior"]["logits"], np.zeros(2))
    assert "logits" not in learned.fixed_prior and "prior" not in build(_config()).trainer.init(
        jax.random.key(0), Hyperparams(prior={}), 1e-3).params
