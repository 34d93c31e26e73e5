"""decompvae: decomposition of VAE latent spaces in JAX.

Implements Mathieu, Rainforth, Siddharth & Teh, "Disentangling Disentanglement
in Variational Autoencoders", ICML 2019 (arXiv:1812.02833), as pure, jittable,
vmappable functions over Flax modules and distrax priors.

The names a user composes with are here (``import decompvae as dv``)::

    encoder, decoder = dv.make_networks("mlp", 2, data_shape=(2,), hidden=(32,))
    objective = dv.make_objective(encoder, decoder, likelihood="gaussian",
                                  prior=dv.make_prior("student_t", 2), regulariser="mmd")
    loss, terms = objective(key, params, dv.Hyperparams(beta=4.0, alpha=1.0), x)

- the loss: :func:`make_objective`, :class:`Hyperparams`, :class:`ObjectiveTerms`,
  :func:`reduce_terms`, :func:`make_model`, :func:`make_iwae`;
- its parts: :func:`make_prior`, :func:`make_posterior`, :func:`make_likelihood`,
  :func:`make_regulariser` (a registered kind) or any :data:`Divergence` function,
  :class:`Regulariser`, :func:`make_networks`, and the registries :data:`PRIORS`,
  :data:`REGULARISERS`, :data:`NETWORKS`, :data:`DATASETS`, :data:`METHODS`;
- training: :func:`make_trainer`, :func:`make_optimizer`, :class:`TrainState`,
  :func:`model_params`; grids of members as one program: :func:`make_sweep`, :class:`Grid`;
- runs from a config: :func:`load_config`, :class:`Config`, :func:`run`, :func:`load_run`,
  :func:`evaluate_run`, :func:`write_report`, :func:`run_experiment`;
- the metrics: the :mod:`decompvae.metrics` module (``dv.metrics``).

Everything else lives in its module (``decompvae.<module>``) and is documented there; the names
above are the ones whose form later releases keep.
"""

import warnings

from decompvae import metrics
from decompvae.config import Config, load_config
from decompvae.data import DATASETS, load_training_data
from decompvae.divergences import Divergence, Regulariser
from decompvae.evaluate import evaluate_run, load_run
from decompvae.likelihoods import make_likelihood
from decompvae.methods import METHODS
from decompvae.networks import NETWORKS, make_networks
from decompvae.objective import Hyperparams, ObjectiveTerms, make_iwae, make_model, make_objective, reduce_terms
from decompvae.posteriors import make_posterior
from decompvae.priors import PRIORS, make_prior
from decompvae.regularisers import REGULARISERS, make_regulariser
from decompvae.report import write_report
from decompvae.reproduce import run_experiment
from decompvae.runner import run
from decompvae.sweep import Grid, make_sweep
from decompvae.train import TrainState, make_optimizer, make_trainer, model_params

__version__ = "0.1.0"

__all__ = [
    "Config",
    "DATASETS",
    "Divergence",
    "Grid",
    "Hyperparams",
    "METHODS",
    "NETWORKS",
    "ObjectiveTerms",
    "PRIORS",
    "REGULARISERS",
    "Regulariser",
    "TrainState",
    "evaluate_run",
    "load_config",
    "load_run",
    "load_training_data",
    "make_regulariser",
    "make_iwae",
    "make_likelihood",
    "make_model",
    "make_networks",
    "make_objective",
    "make_optimizer",
    "make_posterior",
    "make_prior",
    "make_sweep",
    "make_trainer",
    "metrics",
    "model_params",
    "reduce_terms",
    "run",
    "run_experiment",
    "write_report",
]

#: Names an earlier release exported, and today's (read with a DeprecationWarning).
_FORMER_NAMES = {"DIVERGENCES": "REGULARISERS", "make_divergence": "make_regulariser"}


def __getattr__(name: str):
    if name in _FORMER_NAMES:
        warnings.warn(f"decompvae.{name} is deprecated; use decompvae.{_FORMER_NAMES[name]}", DeprecationWarning,
                      stacklevel=2)
        return globals()[_FORMER_NAMES[name]]
    raise AttributeError(f"module 'decompvae' has no attribute {name!r}")
