"""From a :class:`~decompvae.config.Config` to the pure functions of a run.

:func:`build` loads the data and closes the networks, likelihood, prior,
posterior and regularisers over finished pure functions: the objective the
trainer differentiates, the same objective in evaluation mode, the model's
distributions, the encoder and decoder means, the IWAE bound and the trainer.
Callers use them as they are; none reassembles a model from parts.

Every name in a config is looked up in the registry its module owns:
:data:`decompvae.data.DATASETS`, :data:`decompvae.networks.NETWORKS`,
:data:`decompvae.priors.PRIORS`, :data:`decompvae.posteriors.POSTERIORS`,
:data:`decompvae.likelihoods.LIKELIHOODS` and
:data:`decompvae.regularisers.KINDS`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from decompvae import priors
from decompvae.config import Config
from decompvae.data import TrainingData, load_training_data
from decompvae.likelihoods import likelihood_mean, make_likelihood
from decompvae.networks import make_networks
from decompvae.objective import Hyperparams, Model, make_iwae, make_model, make_objective
from decompvae.posteriors import make_posterior
from decompvae.regularisers import REGULARISERS, adversaries, estimate_note, from_kinds
from decompvae.sweep import Grid, Member
from decompvae.train import Trainer, make_trainer

Array = jax.Array

__all__ = ["RunSetup", "build", "build_grid", "estimate_notes"]

#: Offset of the data key from the training seed (the data never shares a key with a member).
DATA_SEED_OFFSET = 1_000_003


class RunSetup(NamedTuple):
    """A run's data, grid and pure functions, built from its config.

    Attributes:
      config: the run's configuration.
      data: :class:`~decompvae.data.TrainingData` (batch function, evaluation points).
      members: the sweep's members (:class:`decompvae.sweep.Member`: β, α, prior and regulariser numbers,
        learning rate, seed);
        with ``sweep.shard = [I, N]`` only the grid's members I, I + N, …
      fixed_prior: prior parameters shared by every member (PCA logits included).
      trainer: :class:`~decompvae.train.Trainer` (``init``/``step``/``run``).
      objective: ``(key, params, hyper, x) -> (loss, terms)`` in training mode.
      eval_objective: the same in evaluation mode (BatchNorm running averages).
      model: ``(params, hyper, x) -> Model`` in evaluation mode.
      encode: ``(params, x [b, ...]) -> (loc [b, D], raw [b, D])``.
      decode_mean: ``(params, z [b, D]) -> E[x|z] [b, ...]``.
      posterior: ``(loc, raw) -> q(z|x)``, the posterior family.
      prior: ``prior_fn(**params) -> p(z)``.
      iwae: ``iwae(num_samples=1000, chunk_size=100) -> (key, params, hyper, x) -> [b]``.
      member_indices: each member's index in the whole grid (``range(len(members))`` unsharded).
    """

    config: Config
    data: TrainingData
    members: list[Member]
    fixed_prior: dict
    trainer: Trainer
    objective: Callable[[Array, dict, Hyperparams, Array], tuple[Array, Any]]
    eval_objective: Callable[[Array, dict, Hyperparams, Array], tuple[Array, Any]]
    model: Callable[[dict, Hyperparams, Array], Model]
    encode: Callable[[dict, Array], tuple[Array, Array]]
    decode_mean: Callable[[dict, Array], Array]
    posterior: Callable[[Array, Array], Any]
    prior: Callable[..., Any]
    iwae: Callable[..., Callable[[Array, dict, Hyperparams, Array], Array]]
    member_indices: tuple[int, ...] = ()


def build(config: Config) -> RunSetup:
    """Data, networks, objective, trainer and grid for ``config``."""
    m = config.model
    data = load_training_data(
        config.data.name, jax.random.key(config.train.seed + DATA_SEED_OFFSET), batch_size=config.train.batch_size,
        eval_points=config.data.eval_points, path=config.data.path, image_size=config.data.image_size,
    )
    encoder, decoder = _networks(config, data.data_shape)
    prior_fn = priors.make_prior(m.prior, m.latent_dim, **m.prior_options)
    fixed_prior, learned_prior = _prior_parameters(config, data)
    structure = dict(likelihood=_likelihood(config), prior=prior_fn, posterior=m.posterior)
    regularisers = from_kinds(_kinds_and_options(config, data), single=not m.composed)
    objective_kw = dict(structure, regulariser=regularisers, num_samples=m.num_samples)
    objective = make_objective(encoder, decoder, train=True, **objective_kw)
    init_params = _init_params(encoder, decoder, data.data_shape, m.latent_dim, learned_prior)
    indices, members = shard_members(build_grid(config, fixed_prior).members(), config.sweep.shard)
    _check_members(members, prior_fn, fixed_prior, learned_prior, m.prior)
    trainer = make_trainer(objective, init_params, data.batch, amsgrad=config.train.amsgrad,
                           adversaries=adversaries(regularisers))
    return RunSetup(
        config=config,
        data=data,
        members=members,
        fixed_prior=fixed_prior,
        trainer=trainer,
        objective=objective,
        eval_objective=make_objective(encoder, decoder, train=False, **objective_kw),
        model=make_model(encoder, decoder, **structure),
        encode=lambda params, x: encoder.apply(params["encoder"], x),
        decode_mean=lambda params, z: likelihood_mean(m.likelihood, decoder.apply(params["decoder"], z)),
        posterior=make_posterior(m.posterior),
        prior=prior_fn,
        iwae=functools.partial(make_iwae, encoder, decoder, **structure),
        member_indices=indices,
    )


def _networks(config: Config, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    m = config.model
    options = {"learn_scale": True} if m.likelihood_scale == "learned" else {}
    return make_networks(m.network, m.latent_dim, data_shape=data_shape, hidden=m.hidden, conv_impl=m.conv_impl,
                         compute_dtype=m.compute_dtype, **options)


def num_training_points(data: TrainingData) -> int:
    """N: the training set's size (every factor combination for a ground-truth stream)."""
    if data.data is None and data.ground_truth is not None:
        return int(np.prod(data.ground_truth.factor_sizes))
    return int(jax.tree.leaves(data.data)[0].shape[0])


def _kinds_and_options(config: Config, data: TrainingData) -> dict[str, tuple[str, dict]]:
    """``{name: (kind, options)}`` of the configured regularisers, with run-dependent options filled in.

    ``dataset_size`` given as 0 (or None) becomes N; FactorVAE's ``latent_dim`` is always D.
    """
    m = config.model
    named = {}
    for name, kind in m.regulariser_names().items():
        options, from_run = m.options_of(name), REGULARISERS[kind].from_run
        if "dataset_size" in from_run and "dataset_size" in options and not options["dataset_size"]:
            options["dataset_size"] = num_training_points(data)
        if "latent_dim" in from_run:
            options["latent_dim"] = m.latent_dim
        named[name] = (kind, options)
    return named


def estimate_notes(config: Config, data: TrainingData) -> dict[str, str]:
    """``{log column: what its value estimates}`` for the regularisers whose value needs saying
    (:func:`decompvae.regularisers.estimate_note`; the columns of ``log.jsonl`` and ``summary.csv``)."""
    notes = {}
    for name, (kind, options) in _kinds_and_options(config, data).items():
        note = estimate_note(kind, options or None, config.model.latent_dim, config.train.batch_size)
        if note:
            notes[f"regulariser.{name}" if config.model.composed else "regulariser"] = note
    return notes


def _likelihood(config: Config) -> str | Callable:
    """The likelihood's name, or its function with the configured fixed scale."""
    m = config.model
    if m.likelihood_scale is None or m.likelihood_scale == "learned":
        return make_likelihood(m.likelihood)
    return make_likelihood(m.likelihood, scale=float(m.likelihood_scale))


def _prior_parameters(config: Config, data: TrainingData) -> tuple[dict, dict]:
    """``(fixed, learned)`` prior parameters: the config's shared numbers, and the parameter set from the data
    (``model.prior_init``) among the fixed ones or, with ``model.prior_learned``, as the learned one's start."""
    m = config.model
    fixed = {k: v for k, v in m.prior_params.items() if k not in config.sweep.prior}
    if m.prior_init is None:
        return fixed, {}
    if m.prior_init == "pca":  # ℓ = log of the top-D PCA variances
        variances = priors.pca_variances(np.asarray(data.pca_source), m.latent_dim)
        start = np.log(np.maximum(variances, 1e-12)).astype(np.float32)
    else:  # "zeros": isotropic
        start = np.zeros(m.latent_dim, np.float32)
    param = priors.PRIORS[m.prior].initialisable
    return (fixed, {param: start}) if m.prior_learned else ({**fixed, param: start}, {})


def _init_params(encoder, decoder, data_shape, latent_dim: int, learned_prior: dict):
    """``init_params(key, hyper) -> params``: the networks' variables and the learned prior's start."""
    sample_x = jnp.zeros((1, *data_shape), jnp.float32)
    sample_z = jnp.zeros((1, latent_dim), jnp.float32)

    def init_params(key: Array, hyper: Hyperparams) -> dict:
        key_enc, key_dec = jax.random.split(key)
        params = {"encoder": encoder.init(key_enc, sample_x), "decoder": decoder.init(key_dec, sample_z)}
        if learned_prior:
            params["prior"] = {k: jnp.asarray(v) for k, v in learned_prior.items()}
        return params

    return init_params


def _check_members(members, prior_fn, fixed_prior: dict, learned_prior: dict, name: str) -> None:
    """Build every member's prior once before tracing, so that a wrong parameter fails with its name."""
    for member in members:
        try:
            prior_fn(**fixed_prior, **member.prior, **learned_prior)
        except TypeError as err:
            raise ValueError(f"model.prior_params / sweep.prior do not fit model.prior={name!r}: {err}") from None


def shard_members(members: list[Member], shard: tuple[int, ...] = ()) -> tuple[tuple[int, ...], list[Member]]:
    """``(indices, members)`` of shard ``(I, N)``: the grid's members I, I + N, I + 2N, … (all for ``()``).

    Raises:
      ValueError: the shard holds no member (I ≥ the grid's size).
    """
    if not shard:
        return tuple(range(len(members))), list(members)
    index, count = shard
    indices = tuple(range(index, len(members), count))
    if not indices:
        raise ValueError(f"--shard {index}/{count} holds no member: the grid has {len(members)} member(s); "
                         f"use at most {len(members)} shards")
    return indices, [members[i] for i in indices]


def build_grid(config: Config, fixed_prior: dict | None = None) -> Grid:
    """The sweep grid of ``config`` (empty sweep lists take the train values)."""
    t, s = config.train, config.sweep
    return Grid(
        beta=s.beta or (t.beta,),
        alpha=_alpha_axes(config),
        prior={k: tuple(v) for k, v in s.prior.items()},
        learning_rate=s.learning_rate or (t.learning_rate,),
        seed=s.seed or (t.seed,),
        mode=s.mode,
        fixed_prior=fixed_prior or {},
        regulariser_params=_regulariser_param_axes(config),
    )


def _alpha_axes(config: Config):
    """α for the grid: numbers (one regulariser), ``{name: values}`` or ``{name: value}`` points (several).

    With several regularisers a name the sweep leaves out keeps ``train.alpha``'s
    value (a number applies to every name).
    """
    t, s, m = config.train, config.sweep, config.model
    if not m.composed:
        return s.alpha or (t.alpha,)
    fixed = {n: t.alpha_of(n) for n in m.regulariser_names()}
    if s.alpha_points:
        return [{**fixed, **point} for point in s.alpha]
    swept = dict(s.alpha) if s.alpha else {}
    return {n: tuple(swept.get(n, (value,))) for n, value in fixed.items()}


def _regulariser_param_axes(config: Config) -> dict:
    """``{"<name>.<param>": values}``: the sweep's, and the fixed ``model.regulariser_params`` as one value."""
    fixed = {key: (value,) for key, value in config.model.fixed_regulariser_params().items()}
    return {**fixed, **{k: tuple(v) for k, v in config.sweep.regulariser_params.items()}}
