"""The regularisers a run can name: the one registry of D(q(z), p(z)) kinds and their options.

:data:`KINDS` lists them and :data:`OPTIONS` their static options;
:func:`make_regulariser` builds one. The estimators live in
:mod:`decompvae.divergences` (MMD, KLs, β-TCVAE's decomposition, InfoVAE),
:mod:`decompvae.penalties` (DIP-VAE, AnnealedVAE) and
:mod:`decompvae.discriminator` (FactorVAE); this module sits above them so
none imports another lazily.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from decompvae import discriminator, penalties
from decompvae._checks import check_block_sizes, check_blocks, check_choice
from decompvae.divergences import (
    Adversary,
    Divergence,
    Regulariser,
    check_sampling,
    dimensionwise_kl,
    exclusive_kl,
    inclusive_kl,
    info_vae_mmd,
    mmd,
    mutual_information,
    total_correlation,
)

__all__ = ["KINDS", "OPTIONS", "REGULARISERS", "SINGLE", "KindSpec", "Regularisers", "adversaries", "alpha_axes",
           "alpha_by_name", "current_column", "current_columns", "estimate_note", "from_kinds", "lift",
           "make_divergence", "make_regulariser", "make_regularisers", "params_by_name", "traced_numbers",
           "weighted_sum"]


class KindSpec(NamedTuple):
    """A registered regulariser kind: how to build it and what a run must know about it.

    Attributes:
      make: ``make(**options) -> Divergence | Regulariser``.
      options: the static options ``make`` accepts (``model.regulariser_options``).
      from_run: options the run fills in: ``"dataset_size"`` (N, where a config
        gives it as 0) and ``"latent_dim"`` (D, always).
      mws_offset: for the minibatch-weighted β-TCVAE terms, the constant c
        (a function of D) such that the logged value holds c·log(N·B)
        (:func:`estimate_note`); None for the other kinds.
      example: ``example(dim) -> options``: valid options at D = ``dim`` (with
        what ``from_run`` fills given), on which the registry's contract test
        drives the kind.
      adversary: whether the kind trains an adversary beside the VAE (FactorVAE's
        discriminator), whose state the train state keeps by the regulariser's
        name; a config must then name it (``model.regulariser = [kind]``).
      check: ``check(options, latent_dim)``, raising ``ValueError`` (its message
        starting with the option's name) where options do not fit D; what a
        config can check before anything is built. None: nothing to check.
    """

    make: Callable[..., Divergence | Regulariser]
    options: tuple[str, ...] = ()
    from_run: tuple[str, ...] = ()
    mws_offset: Callable[[int], int] | None = None
    example: Callable[[int], dict] = lambda dim: {}
    adversary: bool = False
    check: Callable[[Mapping, int], None] | None = None


def _make_mmd(**options) -> Divergence:
    """MMD between prior samples z ~ p and y (options kernel, per_dimension, scales, blocks)."""
    check_choice("kernel", options.get("kernel", "imq"), ("imq", "rbf"))
    if options.get("blocks") is not None:
        if options.get("per_dimension") is not None:
            raise ValueError("regulariser 'mmd': give the option blocks or per_dimension, not both")
        options["blocks"] = check_block_sizes("blocks", options["blocks"])  # static: a tuple

    def mmd_divergence(key, y, posterior, prior):
        z = prior.sample(seed=key, sample_shape=(y.shape[0],))
        return mmd(z, y, **options)

    return mmd_divergence


def _check_mmd(options: Mapping, latent_dim: int) -> None:
    """MMD's blocks of dimensions partition the D latent dimensions."""
    if options.get("blocks") is not None:
        check_blocks("blocks", options["blocks"], latent_dim)


def _make_info_vae(**options) -> Divergence:
    check_choice("kernel", options.get("kernel", "rbf"), ("imq", "rbf"))
    return lambda key, y, posterior, prior: info_vae_mmd(key, y, prior, **options)


def _make_inclusive_kl(**options) -> Divergence:
    return lambda key, y, posterior, prior: inclusive_kl(key, posterior, prior, **options)


def _make_exclusive_kl(**options) -> Divergence:
    return lambda key, y, posterior, prior: exclusive_kl(y, posterior, prior, **options)


def _make_tc_term(term: Callable, *, uses_prior: bool) -> Callable[..., Divergence]:
    """The builder of one of β-TCVAE's three terms (Chen et al. 2018, Eq. 2).

    ``term(y, posterior[, prior], **options)`` is the estimator in :mod:`decompvae.divergences`.
    """

    def make(**options) -> Divergence:
        check_sampling(None, options.get("dataset_size"), options.get("sampling", "mws"))
        if uses_prior:
            return lambda key, y, posterior, prior: term(y, posterior, prior, **options)
        return lambda key, y, posterior, prior: term(y, posterior, **options)

    return make


_TC_OPTIONS = ("dataset_size", "sampling")
_TC_EXAMPLE = lambda dim: {"dataset_size": 1_000}  # noqa: E731

#: Kind → :class:`KindSpec`: the one list of regularisers a config may name (``model.regulariser``).
REGULARISERS: dict[str, KindSpec] = {
    "mmd": KindSpec(_make_mmd, ("kernel", "per_dimension", "scales", "blocks"), check=_check_mmd),
    "inclusive_kl": KindSpec(_make_inclusive_kl, ("num_samples",), example=lambda dim: {"num_samples": 8}),
    "exclusive_kl": KindSpec(_make_exclusive_kl, ("dataset_size",), from_run=("dataset_size",),
                             example=_TC_EXAMPLE),
    "total_correlation": KindSpec(_make_tc_term(total_correlation, uses_prior=False), _TC_OPTIONS,
                                  from_run=("dataset_size",), mws_offset=lambda d: d - 1, example=_TC_EXAMPLE),
    "mutual_information": KindSpec(_make_tc_term(mutual_information, uses_prior=False), _TC_OPTIONS,
                                   from_run=("dataset_size",), mws_offset=lambda d: 1, example=_TC_EXAMPLE),
    "dimensionwise_kl": KindSpec(_make_tc_term(dimensionwise_kl, uses_prior=True), _TC_OPTIONS,
                                 from_run=("dataset_size",), mws_offset=lambda d: -d, example=_TC_EXAMPLE),
    "info_vae": KindSpec(_make_info_vae, ("kernel", "scales")),
    "dip_offdiagonal": KindSpec(functools.partial(penalties.make_dip, "dip_offdiagonal"), ("variant",)),
    "dip_diagonal": KindSpec(functools.partial(penalties.make_dip, "dip_diagonal"), ("variant",)),
    "capacity": KindSpec(penalties.make_capacity, ("num_steps", "c_max"), example=lambda dim: {"num_steps": 10}),
    "factor_vae": KindSpec(discriminator.make_factor_vae,
                           ("latent_dim", "hidden", "negative_slope", "learning_rate", "b1", "b2"),
                           from_run=("latent_dim",), example=lambda dim: {"latent_dim": dim, "hidden": (16, 16)},
                           adversary=True),
}

#: Static options of each kind (a view of :data:`REGULARISERS`).
OPTIONS = {kind: spec.options for kind, spec in REGULARISERS.items()}

#: Every kind :func:`make_regulariser` builds.
KINDS = tuple(REGULARISERS)


def make_regulariser(kind: str, **options) -> Divergence | Regulariser:
    """A batch-level regulariser for the objective, by kind.

    Args:
      kind: a key of :data:`REGULARISERS`:

        * ``"mmd"`` (prior samples z ~ p against y; options kernel, per_dimension, scales, and
          blocks: a kernel on each block of coordinates, summed, e.g. ``blocks=(2, 2, 3, 3)``);
        * ``"inclusive_kl"`` (num_samples), ``"exclusive_kl"`` (dataset_size);
        * β-TCVAE's ``"mutual_information"``, ``"total_correlation"``,
          ``"dimensionwise_kl"`` (dataset_size, sampling);
        * ``"info_vae"`` (:func:`info_vae_mmd`; kernel, scales);
        * DIP-VAE's ``"dip_offdiagonal"``, ``"dip_diagonal"`` (variant ``"i"``/``"ii"``,
          :mod:`decompvae.penalties`);
        * AnnealedVAE's ``"capacity"`` (num_steps, c_max; :mod:`decompvae.penalties`);
        * FactorVAE's ``"factor_vae"`` (latent_dim required; :mod:`decompvae.discriminator`).
      **options: static options of the estimator.

    Returns:
      A :data:`Divergence` ``(key, y, posterior, prior) -> []``, or a
      :class:`Regulariser` for ``"capacity"`` and ``"factor_vae"``, ready for
      :func:`decompvae.objective.make_objective`.
    """
    check_choice("kind", kind, tuple(REGULARISERS))
    allowed = REGULARISERS[kind].options
    unknown = set(options) - set(allowed)
    if unknown:
        raise ValueError(f"unknown options {sorted(unknown)} for regulariser {kind!r}; allowed: {sorted(allowed)}")
    return REGULARISERS[kind].make(**options)


def make_divergence(kind: str, **options) -> Divergence | Regulariser:
    """Deprecated: the earlier name of :func:`make_regulariser`."""
    warnings.warn("decompvae.regularisers.make_divergence is deprecated; use make_regulariser", DeprecationWarning,
                  stacklevel=2)
    return make_regulariser(kind, **options)


def estimate_note(kind: str, options: dict | None, latent_dim: int, batch_size: int) -> str | None:
    """What a logged β-TCVAE term estimates, for readers of the log, the table and the report (None: nothing to say).

    With ``dataset_size`` = N the terms use minibatch-weighted sampling (MWS,
    Chen et al., 2018): every log q̂ subtracts log(N·B), so the value holds a
    constant c·log(N·B) (c = D − 1 for the total correlation, 1 for the
    mutual information, −D for the dimension-wise KL) that does not move the
    gradient but makes the value unlike the quantity it names; with
    ``sampling = "mss"`` (stratified) the weights differ and no such constant
    separates out.
    """
    options = options or {}
    n = options.get("dataset_size")
    offset_of = REGULARISERS[kind].mws_offset if kind in REGULARISERS else None
    if offset_of is None or not n:
        return None
    if options.get("sampling", "mws") == "mss":
        return (f"{kind}: minibatch-stratified estimate (Chen et al., 2018, App. C.2; N = {n:,}, B = {batch_size}): "
                "log q̂ is biased low for small batches (Jensen), less than the minibatch-weighted one")
    c = offset_of(latent_dim)
    offset = c * math.log(float(n) * batch_size)
    return (f"{kind}: minibatch-weighted estimate (Chen et al., 2018), log q̂ = logsumexp_j log q(z_i|x_j) − log(N·B); "
            f"its value holds the constant {c:+d}·log(N·B) = {offset:+.1f} nats (D = {latent_dim}, N = {n:,}, "
            f"B = {batch_size}), so it is a training signal to compare within a run (or between runs of the same D, N "
            f"and B), not the {kind.replace('_', ' ')} itself")


#: The name of the one regulariser of the scalar form (``Hyperparams.alpha`` may be a number).
SINGLE = "divergence"


class Regularisers(NamedTuple):
    """The objective's regularisers in its one form, what :func:`make_regularisers` returns.

    Attributes:
      named: ``{name: Regulariser}``, every estimator lifted (:func:`lift`); ``{}`` for none.
      single: the scalar form: at most one regulariser, named :data:`SINGLE` (``terms.regulariser``
        is ``{SINGLE: D}``, ``{SINGLE: 0}`` without one), which a number ``Hyperparams.alpha`` may
        weigh (:func:`alpha_by_name`) and whose traced numbers ``Hyperparams.regulariser_params`` may be
        a flat ``{param: value}`` (:func:`params_by_name`). False: several, ``terms.regulariser = {name:
        D_k}``, α ``{name: α_k}`` and ``{name: {param: value}}``.
    """

    named: Mapping[str, Regulariser]
    single: bool


def lift(estimator: Divergence | Regulariser) -> Regulariser:
    """A :class:`Regulariser` from a plain ``(key, y, posterior, prior) -> []`` function (the one place it happens).

    A Regulariser is returned as it is; the lifted function reads no traced parameters and trains no adversary.
    """
    if isinstance(estimator, Regulariser):
        return estimator
    if not callable(estimator):
        raise ValueError(f"a regulariser must be a kind, a function or a Regulariser; got {type(estimator).__name__}")
    return Regulariser(estimate=lambda key, inputs: estimator(key, inputs.y, inputs.posterior, inputs.prior))


def make_regularisers(regulariser: Any = None, regulariser_options: Mapping | None = None) -> Regularisers:
    """Every form a regulariser may be given in, normalised once into :class:`Regularisers`.

    Args:
      regulariser: None; a kind of :func:`make_regulariser` or an estimator (a
        :data:`~decompvae.divergences.Divergence` function or a
        :class:`~decompvae.divergences.Regulariser`): the scalar form; or
        several, as a dict ``{name: kind or estimator}`` or a list of kinds
        (each its own name). An empty dict or list means none. Regularisers
        already normalised are returned as they are.
      regulariser_options: static options of a named regulariser; for several,
        ``{name: options}``.

    Raises:
      ValueError: a repeated or non-string kind in a list; options for names
        that are not regularisers or for an estimator; an adversary (factor_vae)
        in the scalar form.
    """
    if isinstance(regulariser, Regularisers):
        if regulariser_options:
            raise ValueError("regulariser_options with regularisers already built; give them to make_regularisers")
        return regulariser
    if isinstance(regulariser, (list, tuple)) and not isinstance(regulariser, Regulariser):
        if len(set(regulariser)) != len(regulariser) or not all(isinstance(k, str) for k in regulariser):
            raise ValueError(f"a list of regularisers must name distinct kinds; got {list(regulariser)}")
        regulariser = {k: k for k in regulariser}
    if isinstance(regulariser, Mapping) and regulariser:
        options = dict(regulariser_options or {})
        unknown = set(options) - set(regulariser)
        if unknown:
            raise ValueError(
                f"regulariser_options for {sorted(unknown)}, which are not among the regularisers {sorted(regulariser)}"
            )
        return Regularisers({name: _one(d, options.get(name), name) for name, d in regulariser.items()}, single=False)
    if regulariser is None or isinstance(regulariser, Mapping):  # none: the scalar form, α·0
        if regulariser_options:
            raise ValueError("regulariser_options needs a named regulariser (a string); got None")
        return Regularisers({}, single=True)
    single = _one(regulariser, regulariser_options, SINGLE)
    if single.adversary is not None:
        raise ValueError(
            "a regulariser with an adversary (factor_vae) needs the dict form, "
            "e.g. regulariser={'factor_vae': 'factor_vae'}"
        )
    return Regularisers({SINGLE: single}, single=True)


def from_kinds(kinds: Mapping[str, tuple[str, Mapping | None]], *, single: bool) -> Regularisers:
    """:class:`Regularisers` straight from ``{name: (kind, options)}`` (a config's regularisers, options filled in).

    Args:
      kinds: ``{name: (kind, options)}``; at most one entry where ``single``.
      single: the scalar form (its one regulariser is named :data:`SINGLE`, whatever ``kinds`` calls it).
    """
    built = {name: lift(make_regulariser(kind, **(options or {}))) for name, (kind, options) in kinds.items()}
    if single:
        if len(built) > 1:
            raise ValueError(f"the scalar form holds one regulariser; got {sorted(built)}")
        return make_regularisers(next(iter(built.values()), None))
    return Regularisers(built, single=False)


def _one(regulariser, options, name: str) -> Regulariser:
    """One regulariser from a kind (with its options) or an estimator."""
    if isinstance(regulariser, str):
        return lift(make_regulariser(regulariser, **(options or {})))
    if options:
        raise ValueError(f"regulariser_options needs a named regulariser (a string); got a function or None for {name!r}")
    if regulariser is None or not (callable(regulariser) or isinstance(regulariser, Regulariser)):
        kind = type(regulariser).__name__
        raise ValueError(f"regulariser {name!r} must be a kind, a function or a Regulariser; got {kind}")
    return lift(regulariser)


def adversaries(regularisers: Regularisers) -> dict[str, Adversary]:
    """``{name: Adversary}`` of the regularisers that train one (for :func:`decompvae.train.make_trainer`)."""
    return {n: r.adversary for n, r in regularisers.named.items() if r.adversary is not None}


def traced_numbers(regularisers: Regularisers, regulariser_params: Mapping | None) -> dict[str, dict]:
    """``{name: {param: value}}`` for every regulariser, from ``Hyperparams.regulariser_params``.

    Its forms are read by :func:`params_by_name`.

    Raises:
      ValueError: parameters for a name that is not a regulariser.
    """
    params = params_by_name(regulariser_params)
    unknown = set(params) - set(regularisers.named)
    if unknown:
        raise ValueError(
            f"regulariser_params for {sorted(unknown)}, which are not among the regularisers {sorted(regularisers.named)}"
        )
    return {name: dict(params.get(name) or {}) for name in regularisers.named}


def params_by_name(regulariser_params: Mapping | None) -> dict[str, dict]:
    """Per-regulariser numbers as ``{name: {param: value}}``: the one place their forms meet.

    A flat ``{param: value}`` is the scalar form's: the numbers of its one regulariser, named
    :data:`SINGLE` (``{"c_max": 25.0}`` → ``{"divergence": {"c_max": 25.0}}``). None is ``{}``.

    Raises:
      ValueError: a mix of ``{param: value}`` and ``{name: {param: value}}`` entries.
    """
    params = dict(regulariser_params or {})
    nested = {name for name, value in params.items() if isinstance(value, Mapping)}
    if nested and nested != set(params):
        raise ValueError(f"regulariser_params mixes {{name: {{param: value}}}} ({sorted(nested)}) with "
                         f"{{param: value}} ({sorted(set(params) - nested)}); use one form")
    return {name: dict(value) for name, value in params.items()} if nested else ({SINGLE: params} if params else {})


def alpha_by_name(alpha, names: Iterable[str] | None = None) -> dict[str, Any]:
    """α as ``{name: α_k}``: the one place its forms meet (``Hyperparams.alpha``, a sweep member's α).

    A number is the scalar form's α (eq. 7 of Mathieu et al., 2019): it weighs the one regulariser,
    named :data:`SINGLE`. Everything downstream (the objective's sum, a sweep's members and their
    stacking, the logs) sees the dict.

    Args:
      alpha: a number (the scalar form), or ``{name: α_k}``.
      names: the regularisers' names (``terms.regulariser``'s keys) that ``alpha`` must name
        exactly; None: any.

    Raises:
      ValueError: a number where the objective has several regularisers, or a dict whose names differ.
    """
    named = dict(alpha) if isinstance(alpha, Mapping) else {SINGLE: alpha}
    if names is None:
        return named
    names = sorted(names)
    if not isinstance(alpha, Mapping) and names != [SINGLE]:
        raise ValueError(f"hyper.alpha is a number, which weighs a single regulariser; give {{name: α}} with the "
                         f"regularisers' names {names}")
    if set(named) != set(names):
        single = " (the objective has a single regulariser: give a number)" if names == [SINGLE] else ""
        raise ValueError(f"hyper.alpha must be {{name: α}} with the regularisers' names {names}; got "
                         f"{sorted(named)}{single}")
    return named


def alpha_axes(alpha) -> dict[str, list]:
    """A grid's values of α (:class:`decompvae.sweep.Grid`) as its axes, one form each.

    ``{name: values}`` gives ``{"alpha.<name>": values}`` (an axis per regulariser); a list of ``{name: value}``
    points gives ``{"alpha": points}`` (one axis whose weights move together, e.g. DIP-VAE's λ_d = 10·λ_od); a list
    of numbers gives ``{"alpha": numbers}`` (the scalar form's α, eq. 7).

    Raises:
      ValueError: points that name different regularisers, or a list mixing numbers and points.
    """
    if isinstance(alpha, Mapping):
        return {f"alpha.{k}": list(v) for k, v in alpha.items()}
    points = list(alpha)
    if points and all(isinstance(p, Mapping) for p in points):
        names = {tuple(sorted(p)) for p in points}
        if len(names) > 1:
            raise ValueError(f"every alpha point must name the same regularisers; got {sorted(names)}")
        return {"alpha": [dict(p) for p in points]}
    if any(isinstance(p, Mapping) for p in points):
        raise ValueError("alpha mixes numbers and {name: value} points; use one form")
    return {"alpha": points}


def weighted_sum(regulariser: Mapping[str, Any], alpha) -> Any:
    """Σ_k α_k·D_k (α·D in the scalar form): the regularisers' loss term.

    Args:
      regulariser: ``terms.regulariser``, ``{name: D_k}``.
      alpha: ``Hyperparams.alpha``, read by :func:`alpha_by_name`.
    """
    alpha = alpha_by_name(alpha, regulariser)
    return sum((alpha[k] * regulariser[k] for k in sorted(regulariser)), start=0.0)


#: Column prefixes written by releases before the regularisers had one name, and today's.
FORMER_COLUMNS = {"divergence_params": "regulariser_params", "eval_divergence": "eval_regulariser",
                  "divergence": "regulariser"}


def current_column(name: str) -> str:
    """A column of ``log.jsonl``, ``summary.csv``, ``members.csv`` or ``estimates.json`` under today's name:
    ``divergence[.<name>]`` → ``regulariser[.<name>]``, ``eval_divergence…`` → ``eval_regulariser…``,
    ``divergence_params.<p>`` → ``regulariser_params.<p>``; any other name as it is."""
    head, dot, rest = name.partition(".")
    return FORMER_COLUMNS[head] + dot + rest if head in FORMER_COLUMNS else name


def current_columns(row: Mapping[str, Any]) -> dict:
    """``row`` with every column under today's name (:func:`current_column`): a run directory written by an
    earlier release reads, and resumes, like one written today."""
    return {current_column(k): v for k, v in row.items()}
