"""Run configuration: TOML files with command-line overrides, validated early.

A configuration has six sections, each a frozen dataclass::

    [data]   name = "dsprites"          # dsprites | dsprites_file | digits | fashion_mnist | pinwheel
    [model]  network = "dsprites", latent_dim = 10, prior = "isotropic", regulariser = "none", …
    [train]  steps = 2000, batch_size = 64, learning_rate = 5e-4, beta = 1.0, alpha = 0.0, seed = 0, …
    [sweep]  beta = [1, 4], prior.df = [2, 5], seed = [0, 1], mode = "product", …
    [distributed] coordinator = "host:1234", num_processes = 2, process_id = 0   # default: one process
    output_dir = "runs/example"

Overrides use the same syntax as the file, one ``section.key=value`` each
(``train.steps=100``, ``sweep.beta=[1,2,4]``, ``model.prior_params.df=5``);
values are parsed as TOML, bare words as strings. Every value is checked
before anything is traced, and errors name the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import warnings
from pathlib import Path
from typing import Any, Mapping

from decompvae import data, likelihoods, networks, posteriors, priors, regularisers
from decompvae._checks import check_choice

__all__ = [
    "Config",
    "DataConfig",
    "DistributedConfig",
    "ModelConfig",
    "SweepConfig",
    "TrainConfig",
    "check_shard",
    "load_config",
    "parse_override",
]

# The allowed names are the keys of the registries their modules own, read when a config is checked (so an
# entry registered after this module was imported is a name a config may use).
PRIOR_INITS = ("pca", "zeros")
#: Former ``model.prior`` names (read with a DeprecationWarning) and the settings they stand for.
FORMER_PRIORS = {"anisotropic_pca": {"prior": "anisotropic_logits", "prior_init": "pca"},
                 "anisotropic_learned": {"prior": "anisotropic_logits", "prior_init": "pca", "prior_learned": True}}
#: Former key names, by section (read with a DeprecationWarning naming today's key).
FORMER_KEYS = {"model": {"divergence": "regulariser", "divergence_options": "regulariser_options",
                         "divergence_params": "regulariser_params"},
               "sweep": {"divergence_params": "regulariser_params"}}


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data, and where real files live.

    Attributes:
      name: a key of :data:`decompvae.data.DATASETS`. ``dsprites`` renders procedurally (no
        download); ``dsprites_file`` loads the official ``.npz`` at ``path``;
        ``fashion_mnist`` reads IDX files from the directory ``path``;
        ``digits`` is scikit-learn's bundled 8×8 digits; ``pinwheel`` is 2-D.
      path: file or directory for real data.
      image_size: resize images to this square size (digits/fashion_mnist;
        32 for the conv32 network), or None to keep them.
      eval_points: held-out points used by the final summary and evaluation.
    """

    name: str = "dsprites"
    path: str | None = None
    image_size: int | None = None
    eval_points: int = 1000

    def __post_init__(self):
        check_choice("data.name", self.name, tuple(data.DATASETS))
        if data.DATASETS[self.name].needs_path and not self.path:
            raise ValueError(f"data.path is required for data.name={self.name!r}")
        _positive("data.eval_points", self.eval_points)
        if self.image_size is not None:
            _positive("data.image_size", self.image_size)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The structure of the model and objective (static: closed over).

    Attributes:
      network: ``dsprites`` (published convnet), ``conv32``, ``fashion`` (the
        published DCGAN-style Fashion-MNIST convnet with BatchNorm; 32×32
        single-channel data) or ``mlp``.
      latent_dim: D.
      hidden: dense widths, or None for the network's default.
      likelihood: ``bernoulli``, ``laplace`` or ``gaussian``.
      likelihood_scale: fixed scale of laplace/gaussian (None: 0.1 / 1.0);
        ``"learned"`` makes the mlp decoder learn it.
      posterior: a key of :data:`decompvae.posteriors.POSTERIORS`: ``gaussian`` (σ = exp(½h) + 1e-6),
        ``gaussian_softplus`` (σ = softplus(h) + 1e-6) or ``laplace``.
      prior: a key of :data:`decompvae.priors.PRIORS`. The former names ``anisotropic_pca`` and
        ``anisotropic_learned`` are read, with a DeprecationWarning, as
        ``anisotropic_logits`` with ``prior_init = "pca"`` (and
        ``prior_learned = true``).
      prior_init: where the prior's initialisable parameter
        (:attr:`decompvae.priors.PriorSpec.initialisable`: ℓ of
        ``anisotropic_logits``) comes from instead of ``prior_params``:
        ``"pca"`` (ℓ = log of the data's top-D PCA variances, so v =
        s·D·softmax(ℓ) is the PCA spectrum rescaled to total variance s·D, as
        published) or ``"zeros"`` (isotropic); None: from ``prior_params``.
      prior_learned: train that parameter with the networks (its start is
        ``prior_init``, ``"pca"`` unless given; the paper's learned
        anisotropic prior).
      prior_params: numeric prior parameters for all members (scale, df,
        gamma, …); a sweep may override them per member.
      prior_options: the prior's static options (structure, closed over, never
        traced; :attr:`decompvae.priors.PriorSpec.options`): ``{blocks = [2, 2,
        3, 3]}`` for the block priors (sizes summing to latent_dim; default one
        block), ``{parents = 2}`` for ``hierarchical`` (required).
      regulariser: D(q(z), p(z)): ``none`` or a kind of :data:`decompvae.regularisers.REGULARISERS`; or several,
        each weighted by its own α: a list of kinds (``["mmd",
        "total_correlation"]``, each kind its own name) or a table ``{name =
        kind}``. See :func:`decompvae.objective.make_objective`.
      regulariser_options: static options of the regulariser (kernel, …); for
        several, ``{name = {option = value}}``. ``dataset_size`` of the
        minibatch-weighted/-stratified estimators may be given as 0 to mean
        "the training set's size".
      regulariser_params: traced parameters of the regularisers shared by all
        members (``{c_max = 25.0}``, or ``{capacity = {c_max = 25.0}}`` for
        several); a sweep may vary them (``sweep.regulariser_params``).
      num_samples: K posterior samples per point.
      conv_impl: convolution formulation (see ``decompvae.networks``).
      compute_dtype: ``float32`` or ``bfloat16`` (mixed precision: the
        networks' convolutions and matmuls multiply in bfloat16 and accumulate
        in float32; parameters, optimiser state and loss terms stay float32).
    """

    network: str = "dsprites"
    latent_dim: int = 10
    hidden: tuple[int, ...] | None = None
    likelihood: str = "bernoulli"
    likelihood_scale: float | str | None = None
    posterior: str = "gaussian"
    prior: str = "isotropic"
    prior_init: str | None = None
    prior_learned: bool = False
    prior_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    prior_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    regulariser: str | tuple[str, ...] | Mapping[str, str] = "none"
    regulariser_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    regulariser_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    num_samples: int = 1
    conv_impl: str = "auto"
    compute_dtype: str = "float32"

    def __post_init__(self):
        check_choice("model.network", self.network, tuple(networks.NETWORKS))
        check_choice("model.compute_dtype", self.compute_dtype, tuple(networks.COMPUTE_DTYPES))
        check_choice("model.likelihood", self.likelihood, tuple(likelihoods.LIKELIHOODS))
        check_choice("model.posterior", self.posterior, tuple(posteriors.POSTERIORS))
        self._read_former_prior_name()
        check_choice("model.prior", self.prior, tuple(priors.PRIORS))
        self._check_prior_init()
        self._check_regulariser()
        _positive("model.latent_dim", self.latent_dim)
        _positive("model.num_samples", self.num_samples)
        prior_dim = priors.PRIORS[self.prior].dim
        if prior_dim is not None and self.latent_dim != prior_dim:
            raise ValueError(f"model.prior={self.prior!r} needs model.latent_dim={prior_dim}; got {self.latent_dim}")
        self._check_structure_options()
        if self.likelihood_scale == "learned" and (self.likelihood != "gaussian" or self.network != "mlp"):
            raise ValueError("model.likelihood_scale='learned' needs likelihood='gaussian' and network='mlp'")
        if self.likelihood == "bernoulli" and self.likelihood_scale is not None:
            raise ValueError("model.likelihood_scale is not used by the bernoulli likelihood; remove it")
        if self.hidden is not None:
            object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    def _read_former_prior_name(self) -> None:
        """``anisotropic_pca`` / ``anisotropic_learned`` → ``anisotropic_logits`` with where ℓ comes from."""
        if self.prior not in FORMER_PRIORS:
            return
        settings = FORMER_PRIORS[self.prior]
        warnings.warn(f"model.prior={self.prior!r} is deprecated; use "
                      + ", ".join(f"model.{k}={v!r}" for k, v in settings.items()), DeprecationWarning, stacklevel=4)
        object.__setattr__(self, "prior", settings["prior"])
        object.__setattr__(self, "prior_init", self.prior_init or settings["prior_init"])
        object.__setattr__(self, "prior_learned", self.prior_learned or settings.get("prior_learned", False))

    def _check_prior_init(self) -> None:
        """``prior_init`` / ``prior_learned`` only for a prior with a parameter set from the data; learned starts at PCA."""
        if not isinstance(self.prior_learned, bool):
            raise ValueError(f"model.prior_learned must be true or false; got {self.prior_learned!r}")
        param = priors.PRIORS[self.prior].initialisable
        if param is None:
            for key, value in (("prior_init", self.prior_init), ("prior_learned", self.prior_learned)):
                if value:
                    allowed = [n for n, spec in priors.PRIORS.items() if spec.initialisable]
                    raise ValueError(f"model.{key} applies to a prior with a parameter set from the data "
                                     f"({allowed}); got prior={self.prior!r}")
            return
        if self.prior_learned and self.prior_init is None:
            object.__setattr__(self, "prior_init", "pca")  # the published start
        if self.prior_init is not None:
            check_choice("model.prior_init", self.prior_init, PRIOR_INITS)
            if param in self.prior_params:
                raise ValueError(f"model.prior_params.{param} and model.prior_init={self.prior_init!r} both set "
                                 f"{param}; give one")

    def _check_regulariser(self) -> None:
        if isinstance(self.regulariser, str):
            check_choice("model.regulariser", self.regulariser, ("none", *regularisers.REGULARISERS))
            if self.regulariser != "none" and regularisers.REGULARISERS[self.regulariser].adversary:
                raise ValueError(f'model.regulariser="{self.regulariser}" trains an adversary: give it as a list, '
                                 f'model.regulariser = ["{self.regulariser}"], with train.alpha = '
                                 f'{{{self.regulariser} = α}}')
            return
        if isinstance(self.regulariser, (list, tuple)):
            object.__setattr__(self, "regulariser", tuple(self.regulariser))
        named = self.regulariser_names()
        if not named:
            raise ValueError("model.regulariser lists no regulariser; use \"none\"")
        for name, kind in named.items():
            check_choice(f"model.regulariser.{name}", kind, tuple(regularisers.REGULARISERS))
        for name in self.regulariser_options:
            if name not in named:
                raise ValueError(f"model.regulariser_options.{name}: no regulariser named {name!r}; "
                                 f"model.regulariser names {sorted(named)}")

    def _check_structure_options(self) -> None:
        """``prior_options`` fit ``prior`` and D; an MMD's ``blocks`` sum to D (errors name the key)."""
        if not isinstance(self.prior_options, Mapping):
            raise ValueError(f"model.prior_options must be a table {{option = value}}; got {self.prior_options!r}")
        spec = priors.PRIORS[self.prior]
        for name in self.prior_options:
            if name not in spec.options:
                raise ValueError(f"model.prior_options.{name} is not an option of model.prior={self.prior!r}; "
                                 f"allowed: {list(spec.options)}")
        for name in spec.required_options:
            if name not in self.prior_options:
                raise ValueError(f"model.prior={self.prior!r} needs model.prior_options.{name}")
        if spec.options:
            try:
                priors.make_prior(self.prior, self.latent_dim, **self.prior_options)
            except ValueError as err:  # the message starts with the option's name
                raise ValueError(f"model.prior_options.{err}") from None
        named = self.regulariser_names()
        for name, kind in named.items():
            options, check = self.options_of(name), regularisers.REGULARISERS[kind].check
            if check is not None and isinstance(options, Mapping):
                where = f"model.regulariser_options.{name}" if self.composed else "model.regulariser_options"
                try:
                    check(options, self.latent_dim)
                except ValueError as err:
                    raise ValueError(f"{where}.{err}") from None

    def regulariser_names(self) -> dict[str, str]:
        """``{name: kind}`` of the regularisers (``{}`` for ``"none"``; a single kind is its own name)."""
        if isinstance(self.regulariser, str):
            return {} if self.regulariser == "none" else {self.regulariser: self.regulariser}
        if isinstance(self.regulariser, Mapping):
            return dict(self.regulariser)
        return {kind: kind for kind in self.regulariser}

    @property
    def composed(self) -> bool:
        """Several regularisers (the dict form of the objective, α a dict of weights)."""
        return not isinstance(self.regulariser, str)

    def options_of(self, name: str) -> dict:
        """The static options of the regulariser ``name`` (a key of :meth:`regulariser_names`), in either form."""
        options = self.regulariser_options.get(name, {}) if self.composed else self.regulariser_options
        return dict(options) if isinstance(options, Mapping) else options

    def fixed_regulariser_params(self) -> dict[str, float]:
        """``{"<name>.<param>" or "<param>": value}``: ``regulariser_params`` flattened as a sweep's keys."""
        flat = {}
        for key, value in self.regulariser_params.items():
            if isinstance(value, Mapping):
                flat.update({f"{key}.{param}": float(v) for param, v in value.items()})
            else:
                flat[key] = float(value)
        return flat


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One run's optimisation settings (the defaults of every sweep member).

    Attributes:
      steps: optimiser steps.
      batch_size: points per step.
      learning_rate, beta, alpha, seed: the member's numbers; with several
        regularisers ``alpha`` is ``{name = α_k}`` (a number: every α_k).
      amsgrad: AMSGrad (paper) or Adam.
      log_every: steps per compiled chunk (one log line per member).
      checkpoint_every: steps between checkpoints (rounded up to log_every).
      tensorboard: also write TensorBoard event files (``<output_dir>/tensorboard``,
        one run per member; needs ``pip install 'decompvae[tensorboard]'``).
        How a run is logged, not what it computes: not compared on resume.
      eval_every: evaluate every member every this many steps (a multiple of
        ``log_every``; 0 = never) into ``curves.jsonl`` (:mod:`decompvae.curves`):
        reconstruction, KL and, with a ground truth, FactorVAE
        (disentanglement_lib protocol), active dimensions and MIG. Not
        compared on resume.
      eval_points: the curves' sample size P: evaluation points (at most
        ``data.eval_points``), FactorVAE variance points and train votes, MIG
        and DCI points (P / 2 eval votes and DCI test points); 10,000 is
        disentanglement_lib's.
      eval_dci: the curves also hold DCI (gradient-boosted trees: slow). Not
        compared on resume.
    """

    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 5e-4
    beta: float = 1.0
    alpha: float | Mapping[str, float] = 0.0
    seed: int = 0
    amsgrad: bool = True
    log_every: int = 100
    checkpoint_every: int = 500
    tensorboard: bool = False
    eval_every: int = 0
    eval_points: int = 500
    eval_dci: bool = False

    def __post_init__(self):
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "eval_points"):
            _positive(f"train.{name}", getattr(self, name))
        every = self.eval_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 0 or every % self.log_every:
            raise ValueError(f"train.eval_every must be 0 (off) or a positive multiple of train.log_every "
                             f"({self.log_every}); got {every!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"train.learning_rate must be > 0; got {self.learning_rate}")
        alphas = self.alpha.values() if isinstance(self.alpha, Mapping) else [self.alpha]
        for name, values in (("beta", [self.beta]), ("alpha", alphas)):
            if any(v < 0 for v in values):
                raise ValueError(f"train.{name} must be ≥ 0; got {getattr(self, name)}")

    def alpha_of(self, name: str) -> float:
        """α of the regulariser ``name``: ``alpha[name]``, or the one number that weights every regulariser."""
        return float(self.alpha[name] if isinstance(self.alpha, Mapping) else self.alpha)


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """The grid of a sweep; an empty list means "the train value".

    Attributes:
      beta, alpha, learning_rate, seed: values to sweep. With several
        regularisers ``alpha`` is ``{name = [values]}`` (one axis per name) or
        a list of points ``[{a = 1, b = 10}, …]`` (one axis, e.g. DIP-VAE's
        λ_d = 10·λ_od).
      regulariser_params: ``{"<name>.<param>" = [values]}`` of the
        regularisers' traced parameters (``"capacity.c_max" = [5, 10]``).
      prior: ``{name: values}`` of prior parameters to sweep.
      mode: ``product`` or ``zip``.
      chunk_size: members per compiled call; 0 = estimate from memory.
      devices: number of devices to shard over (0 = all local devices).
      vectorize: members vmapped together inside a compiled call, which
        loops over such groups (``make_sweep(vectorize=…)``); 0 = the
        backend's default (``sweep.resolve_vectorize``). The numbers trained
        are the same for every value; only speed and memory differ.
      shard: ``[I, N]``: train only members I, I + N, I + 2N, … of the grid
        (``decompvae sweep --shard I/N``; one array job each); ``[]``: all.
        A member's numbers do not depend on the sharding.
    """

    beta: tuple[float, ...] = ()
    alpha: tuple[float, ...] | tuple[Mapping[str, float], ...] | Mapping[str, tuple[float, ...]] = ()
    learning_rate: tuple[float, ...] = ()
    seed: tuple[int, ...] = ()
    prior: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    regulariser_params: Mapping[str, tuple[float, ...]] = dataclasses.field(default_factory=dict)
    mode: str = "product"
    chunk_size: int = 0
    devices: int = 0
    vectorize: int = 0
    shard: tuple[int, ...] = ()

    def __post_init__(self):
        check_choice("sweep.mode", self.mode, ("product", "zip"))
        object.__setattr__(self, "shard", check_shard(self.shard))
        lists = ("beta", "learning_rate", "seed") + (() if isinstance(self.alpha, Mapping) else ("alpha",))
        for name in lists:
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"sweep.{name} must be a list; got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if isinstance(self.alpha, Mapping):
            object.__setattr__(self, "alpha", {k: tuple(v) for k, v in self.alpha.items()})
        for name in ("chunk_size", "devices", "vectorize"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"sweep.{name} must be an integer ≥ 0; got {getattr(self, name)!r}")

    @property
    def alpha_points(self) -> bool:
        """``alpha`` is a list of ``{name: value}`` points (one axis whose weights move together)."""
        return bool(self.alpha) and not isinstance(self.alpha, Mapping) and all(
            isinstance(p, Mapping) for p in self.alpha)


def check_shard(shard) -> tuple[int, ...]:
    """``()`` or ``(I, N)`` with 0 ≤ I < N; ValueError naming ``--shard`` / ``sweep.shard`` otherwise."""
    if isinstance(shard, str):
        index, _, count = shard.partition("/")
        try:
            shard = (int(index), int(count))
        except ValueError:
            raise ValueError(f"--shard (sweep.shard) must be I/N, e.g. 0/4; got {shard!r}") from None
    shard = tuple(shard)
    if shard == ():
        return shard
    ok = len(shard) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
    if not ok or not 0 <= shard[0] < shard[1]:
        raise ValueError(f"--shard (sweep.shard) must be I/N with integers 0 ≤ I < N; got {shard!r}")
    return shard


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """Several processes computing one sweep with JAX's distributed runtime.

    How the run is computed, not what: a run may be resumed with other values
    here, and the results do not depend on them.

    Attributes:
      coordinator: ``HOST:PORT`` where process 0 serves the coordination
        service (every process gives the same), or None for one process.
      num_processes: processes in all; 1 means no distributed runtime.
      process_id: this process's index in ``[0, num_processes)``; process 0
        writes the outputs.
    """

    coordinator: str | None = None
    num_processes: int = 1
    process_id: int = 0

    def __post_init__(self):
        _positive("distributed.num_processes", self.num_processes)
        if isinstance(self.process_id, bool) or not isinstance(self.process_id, int) or not (
            0 <= self.process_id < self.num_processes
        ):
            raise ValueError(
                f"distributed.process_id must be an integer in [0, {self.num_processes}); got {self.process_id!r}"
            )
        if self.num_processes > 1:
            host, _, port = str(self.coordinator or "").rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(
                    "distributed.coordinator must be HOST:PORT (process 0's address) when "
                    f"distributed.num_processes > 1; got {self.coordinator!r}"
                )
        elif self.coordinator is not None:
            raise ValueError("distributed.coordinator needs distributed.num_processes > 1")


#: Top-level keys of a saved config.json that record the run's environment
#: (library versions) rather than settings: ignored when loading.
RECORD_KEYS = ("versions",)


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run: data, model, training, sweep grid and output directory."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    sweep: SweepConfig = dataclasses.field(default_factory=SweepConfig)
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)
    output_dir: str = "runs/default"

    def __post_init__(self):
        spec = priors.PRIORS[self.model.prior]
        for name in spec.required:
            from_data = name == spec.initialisable and self.model.prior_init is not None
            if name not in self.model.prior_params and name not in self.sweep.prior and not from_data:
                raise ValueError(
                    f"model.prior={self.model.prior!r} needs model.prior_params.{name} or sweep.prior.{name}"
                )
        self._check_alpha_names()
        self._check_network_takes_the_data()

    def _check_network_takes_the_data(self) -> None:
        """The network takes the data set's points (the registries' facts: their shapes)."""
        shape = data.DATASETS[self.data.name].shape(self.data.image_size)
        spec = networks.NETWORKS[self.model.network]
        if not spec.accepts(shape):
            size = f" with data.image_size={self.data.image_size}" if self.data.image_size else ""
            raise ValueError(f"model.network={self.model.network!r} expects {spec.takes}; data.name="
                             f"{self.data.name!r}{size} gives points of shape {shape}")

    def _check_alpha_names(self) -> None:
        """Named weights (``train.alpha``, ``sweep.alpha``) name exactly the regularisers."""
        names = set(self.model.regulariser_names())
        sweep = self.sweep.alpha
        given = [("train.alpha", set(self.train.alpha))] if isinstance(self.train.alpha, Mapping) else []
        if isinstance(sweep, Mapping):
            given.append(("sweep.alpha", set(sweep)))
        elif self.sweep.alpha_points:
            given += [("sweep.alpha", set(p)) for p in sweep]
        elif sweep and self.model.composed:
            raise ValueError(f"sweep.alpha with several regularisers is {{name = [values]}} or a list of "
                             f"{{name = value}} points; got {list(sweep)!r}")
        for where, keys in given:
            if not self.model.composed:
                raise ValueError(f"{where} names weights {sorted(keys)} but model.regulariser is one kind "
                                 f"({self.model.regulariser!r}): give a number, or list the regularisers")
            if where == "sweep.alpha" and not keys <= names or where == "train.alpha" and keys != names:
                raise ValueError(f"{where} names {sorted(keys)}; model.regulariser names {sorted(names)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, tree: Mapping[str, Any]) -> "Config":
        """Build and validate from nested dicts; unknown keys are errors (``RECORD_KEYS`` are ignored)."""
        sections = {
            "data": DataConfig, "model": ModelConfig, "train": TrainConfig, "sweep": SweepConfig,
            "distributed": DistributedConfig,
        }
        unknown = set(tree) - set(sections) - {"output_dir", *RECORD_KEYS}
        if unknown:
            raise ValueError(f"unknown config sections {sorted(unknown)}; allowed: {sorted(sections)} and output_dir")
        kwargs = {}
        for name, klass in sections.items():
            values = _current_keys(name, dict(tree.get(name, {})))
            fields = {f.name for f in dataclasses.fields(klass)}
            bad = set(values) - fields
            if bad:
                raise ValueError(f"unknown keys {sorted(f'{name}.{k}' for k in bad)}; allowed: {sorted(fields)}")
            kwargs[name] = klass(**values)
        if "output_dir" in tree:
            kwargs["output_dir"] = str(tree["output_dir"])
        return cls(**kwargs)


def _current_keys(section: str, values: dict) -> dict:
    """``values`` of one section with former key names (:data:`FORMER_KEYS`) under today's, each with a
    DeprecationWarning; a ValueError when a former key and today's are both given."""
    for former, key in FORMER_KEYS.get(section, {}).items():
        if former not in values:
            continue
        if key in values:
            raise ValueError(f"{section}.{former} is the former name of {section}.{key}; give only {section}.{key}")
        warnings.warn(f"{section}.{former} is deprecated; use {section}.{key}", DeprecationWarning, stacklevel=4)
        values[key] = values.pop(former)
    return values


def current_form(tree: Mapping[str, Any]) -> dict[str, Any] | None:
    """A stored config (``config.json``, a rows fingerprint) as this release reads it: ``Config.from_dict(tree)
    .to_dict()``, former key names and values taken silently (each is read with a DeprecationWarning when loaded for
    a run) and keys added since at their defaults; None when this release refuses it (a removed key, a bad value)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return Config.from_dict(tree).to_dict()
    except (KeyError, TypeError, ValueError):
        return None


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"sweep.beta=[1,2]"`` -> ``(["sweep", "beta"], [1, 2])`` (TOML values)."""
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like section.key=value")
    path, raw = text.split("=", 1)
    keys = [k.strip() for k in path.split(".") if k.strip()]
    if not keys:
        raise ValueError(f"override {text!r} has no key")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word: a string
    return keys, value


def _set(tree: dict, keys: list[str], value: Any) -> None:
    for k in keys[:-1]:
        node = tree.setdefault(k, {})
        if not isinstance(node, dict):
            raise ValueError(f"cannot set {'.'.join(keys)}: {k} is not a section")
        tree = node
    tree[keys[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[str] = (), base: Mapping | None = None) -> Config:
    """Read a TOML config (or start from ``base``/the defaults) and apply overrides.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: a key or value is not allowed (the message names it).
    """
    tree: dict = json.loads(json.dumps(base)) if base else {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        with path.open("rb") as f:
            try:
                loaded = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"{path}: not valid TOML: {e}") from None
        for section, values in loaded.items():
            if isinstance(values, dict) and isinstance(tree.get(section), dict):
                tree[section].update(values)
            else:
                tree[section] = values
    for text in overrides:
        keys, value = parse_override(text)
        _set(tree, keys, value)
    return Config.from_dict(tree)
