"""One evaluation of a trained member, used by ``decompvae evaluate`` and every experiment.

:func:`make_evaluator` compiles what a run's structure needs once (the
objective terms on the evaluation points, the IWAE bound, the overlap
estimates, the encoder) and returns ``evaluate(key, params, hyper) -> dict``:
evaluating N members costs one compilation, not N. The measures are named
once, here (:data:`MEASURES`), so ``metrics.json`` of ``decompvae evaluate``
and ``metrics.csv`` of ``decompvae reproduce`` share their columns.

=================== ==========================================================
measure             keys
=================== ==========================================================
``terms``           ``recon``, ``kl``, ``elbo`` (means over the evaluation points)
``iwae``            ``iwae_log_likelihood`` (Burda et al. 2016, K samples)
``overlap``         ``overlap_mi`` (I_q(x; z)), ``entropy`` (E H[q(z|x)]),
                    ``aggregate_kl`` (KL(q(z) ‖ p(z))), ``overlap_mi_bound``
                    (log N) and, over a whole finite data set, ``overlap_mi_se``
``hoyer``           ``hoyer``: normalised Hoyer sparsity of the encoder means
``unsupervised``    ``gaussian_total_correlation``, ``gaussian_wasserstein_correlation``,
                    ``gaussian_wasserstein_correlation_norm``, ``mutual_info_score``
                    (:func:`decompvae.metrics.unsupervised_scores` of the encoder
                    means of the evaluation points; D ≥ 2)
``factor_vae``      ``factor_vae_dlib``, ``factor_vae_paper``, ``active_dims``;
                    with a Student-t prior also ``*_gaussianised`` (the paper's analysis)
``factor_vae_dlib`` the same without the paper's protocol: ``factor_vae_dlib``,
                    ``active_dims`` (and ``factor_vae_dlib_gaussianised``)
``mig``             ``mig`` (discrete, 20 bins)
``mig_sampled``     ``mig_sampled``: Chen et al.'s MIG from samples of q(z|x) over the whole
                    finite grid (:func:`decompvae.metrics.mig_sampled`; on dSprites
                    scale, orientation, x and y); not in the default set (a GPU-sized job)
``dci``             ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness_*``
                    (gradient-boosted trees on MIG's sample; the slow one)
``dlib_suite``      ``beta_vae``, ``modularity``, ``explicitness_*``, ``sap``, ``dci_*``
``irs``             ``irs`` (Suter et al. 2019, on MIG's sample with the factors in
                    20 histogram bins, as disentanglement_lib)
``clustering``      ``clustering_accuracy``, ``clustering_nmi`` (mixture priors)
``block_mig``       ``block_mig`` (:func:`decompvae.metrics.block_mig`: latent
                    blocks against factor groups) and, when there are as many
                    blocks as groups, ``block_alignment``: the mean normalised
                    information of block g about group g minus that of the
                    other blocks (block g is meant for group g)
=================== ==========================================================

``block_mig`` needs factor groups (``ground_truth.factor_groups``, as
``dsprites_pair``; or ``data.factor_groups`` with ``eval_labels``, as
``hierarchical_toy``) and latent blocks: ``latent_blocks`` given to
:func:`make_evaluator`, else the prior's (``prior_options.blocks``;
(P, D − P) for ``hierarchical``), so an isotropic model can be scored on the
blocks of the structured model it is compared with.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from decompvae.data import ProceduralDSprites
from decompvae.metrics.clustering import clustering_scores
from decompvae.metrics._common import histogram_discretize
from decompvae.metrics.disentanglement import dci, explicitness, mig, modularity, sap
from decompvae.metrics.irs import irs
from decompvae.metrics.sampled_mig import CHEN_DSPRITES_FACTORS, mig_sampled
from decompvae.metrics.overlap import dataset_overlap, overlap
from decompvae.metrics.sampled import beta_vae_score, factor_vae_score, sample_codes_and_factors
from decompvae.metrics.sparsity import hoyer_sparsity
from decompvae.metrics.subspace import block_mig
from decompvae.metrics.unsupervised import unsupervised_scores
from decompvae.priors import PRIORS

__all__ = ["MEASURES", "MEASURE_SPECS", "EvalSizes", "MeasureSpec", "Requirement", "applicable_measures",
           "gaussianise", "make_evaluator"]

#: Priors whose components define clusters (:attr:`decompvae.priors.PriorSpec.clusters`).
MIXTURE_PRIORS = tuple(name for name, spec in PRIORS.items() if spec.clusters)


class Requirement(NamedTuple):
    """What a measure needs of a run: ``holds(setup, blocks) -> bool``, and the error's words when it does not."""

    holds: Callable[[Any, tuple[int, ...] | None], bool]
    message: str


GROUND_TRUTH = Requirement(lambda setup, blocks: setup.data.ground_truth is not None,
                           "ground-truth data (data.name='dsprites', 'dsprites_file' or 'dsprites_pair')")
TWO_LATENTS = Requirement(lambda setup, blocks: setup.config.model.latent_dim >= 2, "at least 2 latent dimensions")
MIXTURE_PRIOR = Requirement(lambda setup, blocks: PRIORS[setup.config.model.prior].clusters,
                            f"a mixture prior {MIXTURE_PRIORS}")
LABELS = Requirement(lambda setup, blocks: setup.data.eval_labels is not None, "labelled evaluation points")
GROUPS_AND_BLOCKS = Requirement(
    lambda setup, blocks: factor_groups(setup) is not None and blocks is not None,
    "factor groups (data.name='dsprites_pair' or 'hierarchical_toy') and latent blocks (a block or hierarchical "
    "prior, or latent_blocks)")


class MeasureSpec(NamedTuple):
    """A registered measure: what it needs, and whether a run gets it by default (:func:`applicable_measures`)."""

    needs: tuple[Requirement, ...] = ()
    default: bool = True


#: Measure name → :class:`MeasureSpec`, in the order :func:`applicable_measures` lists them. ``factor_vae`` holds
#: ``factor_vae_dlib`` and ``dlib_suite`` holds ``dci``, so those two are not defaults; nor is ``mig_sampled``
#: (a GPU-sized job over the whole grid).
MEASURE_SPECS: dict[str, MeasureSpec] = {
    "terms": MeasureSpec(), "iwae": MeasureSpec(), "overlap": MeasureSpec(), "hoyer": MeasureSpec(),
    "unsupervised": MeasureSpec((TWO_LATENTS,)),
    "factor_vae": MeasureSpec((GROUND_TRUTH,)), "factor_vae_dlib": MeasureSpec((GROUND_TRUTH,), default=False),
    "mig": MeasureSpec((GROUND_TRUTH,)), "mig_sampled": MeasureSpec((GROUND_TRUTH,), default=False),
    "dci": MeasureSpec((GROUND_TRUTH,), default=False), "dlib_suite": MeasureSpec((GROUND_TRUTH,)),
    "irs": MeasureSpec((GROUND_TRUTH,)),
    "clustering": MeasureSpec((MIXTURE_PRIOR, LABELS)),
    "block_mig": MeasureSpec((GROUPS_AND_BLOCKS,)),
}

MEASURES = tuple(MEASURE_SPECS)


class EvalSizes(NamedTuple):
    """Sample sizes of every measure (None: the measure's published default).

    Attributes:
      eval_points: evaluation points of the objective terms, Hoyer and clustering.
      iwae_points, iwae_samples: points and importance samples K of the IWAE bound.
      overlap_points: points of the minibatch-mixture overlap estimates (an N×N cost).
      dataset_overlap_points: outer points of the exact aggregate over a whole
        finite ground-truth data set (:func:`decompvae.metrics.dataset_overlap`),
        or None for the minibatch mixture.
      variance_points, train_votes, eval_votes, points_per_vote: FactorVAE
        (disentanglement_lib: 10,000; 10,000 / 5,000 votes of 64), also the
        β-VAE score's train/eval points and batch.
      paper_votes, paper_points_per_vote, paper_pool: the paper's FactorVAE
        protocol (20,000 votes of L = 1,000 from the full data set).
      mig_points: codes for MIG and IRS, and the training codes of ``dlib_suite`` (10,000).
      test_points: test codes of ``dlib_suite`` (5,000).
      dci_points: training points of DCI's gradient-boosted trees (its cost), half as many test points.
      mig_sampled_samples: S, the samples of each entropy estimate of ``mig_sampled`` (Chen et al.: 10,000).
    """

    eval_points: int = 1000
    iwae_points: int = 500
    iwae_samples: int = 1000
    overlap_points: int = 2000
    dataset_overlap_points: int | None = None
    variance_points: int | None = None
    train_votes: int | None = None
    eval_votes: int | None = None
    points_per_vote: int | None = None
    paper_votes: int | None = None
    paper_points_per_vote: int | None = None
    paper_pool: int | None = None
    mig_points: int | None = None
    test_points: int = 5000
    dci_points: int = 2000
    mig_sampled_samples: int = 10_000

    @classmethod
    def quick(cls) -> "EvalSizes":
        """Small sizes for smoke tests (seconds per member on a CPU)."""
        return cls(eval_points=200, iwae_points=64, iwae_samples=50, overlap_points=200, variance_points=300,
                   train_votes=100, eval_votes=50, points_per_vote=16, paper_votes=100, paper_points_per_vote=16,
                   paper_pool=2000, mig_points=300, test_points=150, dci_points=200)


def applicable_measures(setup) -> tuple[str, ...]:
    """Every default measure whose needs the run meets (a :class:`decompvae.build.RunSetup`)."""
    blocks = prior_blocks(setup.config.model)
    return tuple(name for name, spec in MEASURE_SPECS.items()
                 if spec.default and all(need.holds(setup, blocks) for need in spec.needs))


def factor_groups(setup) -> tuple[tuple[int, ...], ...] | None:
    """The run's factor groups: the ground truth's, else the data's (with ``eval_labels``), else None."""
    groups = getattr(setup.data.ground_truth, "factor_groups", None)
    return groups if groups is not None else setup.data.factor_groups


def prior_blocks(model) -> tuple[int, ...] | None:
    """The latent blocks a model's prior defines (:attr:`decompvae.priors.PriorSpec.latent_blocks`), or None."""
    return PRIORS[model.prior].latent_blocks(model.latent_dim, model.prior_options)


def _block_mig(codes, factors, blocks, groups) -> dict:
    r = block_mig(codes, factors, blocks, groups)
    out = {"block_mig": r["score"]}
    if len(blocks) == len(groups):
        matched = np.diag(r["normalised_mi"])
        others = (r["normalised_mi"].sum(axis=0) - matched) / (len(blocks) - 1)
        out["block_alignment"] = float(np.mean(matched - others))
    return out


def gaussianise(codes: np.ndarray, df: float, scale: float = 1.0) -> np.ndarray:
    """Student-t codes mapped to a standard Gaussian per dimension: Φ⁻¹(F_ν(μ_d / scale)).

    The published analysis of the Student-t priors scores FactorVAE on these
    (an optimal-transport map of each marginal of the prior onto N(0, 1)).
    Each side is computed from its own tail (survival function above 0, CDF
    below) so far-out codes keep their order; clipped at ±37.5, where Φ's
    tail underflows double precision.

    Args:
      codes: ``[n, D]`` encoder means.
      df: ν of the prior.
      scale: the prior's scale.

    Returns:
      ``[n, D]`` float64.
    """
    t = np.asarray(codes, np.float64) / scale
    tail = np.clip(stats.t.sf(np.abs(t), df), 1e-300, 1.0)  # P(T > |t|), symmetric
    return np.clip(np.sign(t) * stats.norm.isf(tail), -37.5, 37.5)


class _JittedImages:
    """A procedural ground-truth data set whose ``images`` is jitted (one compilation per batch shape)."""

    def __init__(self, dataset):
        self._dataset = dataset
        self._images = jax.jit(dataset.images)

    def images(self, factors):
        return self._images(jnp.asarray(factors))

    def __getattr__(self, name):
        return getattr(self._dataset, name)


def _present(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _encode_grid(encode, params, dataset, batch_size: int = 4096) -> tuple[jax.Array, jax.Array]:
    """Encoder outputs ``(loc, raw)`` ``[N, D]`` for every image of a finite ground-truth data set."""
    locs, raws = [], []
    for _, images in dataset.iter_grid(batch_size=batch_size):
        n = images.shape[0]
        if n < batch_size:  # one input shape, one compilation
            images = jnp.pad(images, ((0, batch_size - n),) + ((0, 0),) * (images.ndim - 1))
        loc, raw = encode(params, images)
        locs.append(loc[:n])
        raws.append(raw[:n])
    return jnp.concatenate(locs), jnp.concatenate(raws)


class _Compiled(NamedTuple):
    """The jitted functions of one run's evaluation."""

    objective: Callable
    iwae: Callable
    overlap: Callable
    grid_overlap: Callable
    encode: Callable
    overlap_points: int


def _compile(setup, sizes: EvalSizes) -> _Compiled:
    x_overlap = jnp.asarray(setup.data.eval_x[: sizes.overlap_points])
    iwae = setup.iwae(num_samples=sizes.iwae_samples, chunk_size=min(100, sizes.iwae_samples))

    def overlap_fn(key, params, hyper):
        dist = setup.model(params, hyper, x_overlap)
        return overlap(key, dist.posterior, dist.prior)

    def grid_overlap(key, params, hyper, loc, raw):
        prior = setup.model(params, hyper, x_overlap[:2]).prior
        return dataset_overlap(key, setup.posterior, loc, raw, prior, num_points=sizes.dataset_overlap_points)

    return _Compiled(jax.jit(setup.eval_objective), jax.jit(iwae), jax.jit(overlap_fn), jax.jit(grid_overlap),
                     jax.jit(setup.encode), int(x_overlap.shape[0]))


def _terms(c: _Compiled, key, params, hyper, x) -> dict:
    _, terms = c.objective(key, params, hyper, x)
    return {"recon": float(jnp.mean(terms.recon)), "kl": float(jnp.mean(terms.kl)),
            "elbo": float(jnp.mean(terms.recon - terms.kl))}


def _overlap(c: _Compiled, key, params, hyper, sizes: EvalSizes, dataset) -> dict:
    """Overlap over the minibatch mixture of the evaluation points, or exactly over a finite data set."""
    if sizes.dataset_overlap_points:
        loc, raw = _encode_grid(c.encode, params, dataset)
        info, se = c.grid_overlap(key, params, hyper, loc, raw)
        extra = {"overlap_mi_se": float(se), "overlap_mi_bound": float(np.log(loc.shape[0]))}
    else:
        info = c.overlap(key, params, hyper)
        extra = {"overlap_mi_bound": float(np.log(c.overlap_points))}
    return {"overlap_mi": float(info.mutual_information), "entropy": float(info.entropy),
            "aggregate_kl": float(info.aggregate_kl), **extra}


def _factor_vae(keys, represent, dataset, sizes: EvalSizes, hyper, student_t: bool, paper_protocol: bool = True
                ) -> dict:
    dlib = _present(num_variance_points=sizes.variance_points, num_train_votes=sizes.train_votes,
                    num_eval_votes=sizes.eval_votes, points_per_vote=sizes.points_per_vote)
    paper = _present(num_train_votes=sizes.paper_votes, points_per_vote=sizes.paper_points_per_vote,
                     num_pool_points=sizes.paper_pool)
    key_dlib, key_paper = keys
    fv = factor_vae_score(key_dlib, represent, dataset, **dlib)
    out = {"factor_vae_dlib": float(fv["score"])}
    if paper_protocol:
        out["factor_vae_paper"] = float(
            factor_vae_score(key_paper, represent, dataset, protocol="paper", **paper)["score"])
    out["active_dims"] = float(fv["num_active_dims"])
    if student_t:  # the published analysis: the same votes on Φ⁻¹(F_ν(μ)) (the paper's code)
        df, scale = float(hyper.prior["df"]), float(hyper.prior.get("scale", 1.0))
        mapped = lambda images: gaussianise(np.asarray(represent(images)), df, scale)  # noqa: E731
        out["factor_vae_dlib_gaussianised"] = float(factor_vae_score(key_dlib, mapped, dataset, **dlib)["score"])
        if paper_protocol:
            out["factor_vae_paper_gaussianised"] = float(
                factor_vae_score(key_paper, mapped, dataset, protocol="paper", **paper)["score"])
    return out


def _mig_sampled(key, c: _Compiled, params, posterior_fn, dataset, sizes: EvalSizes) -> float:
    """Chen et al.'s MIG over every image of the grid: their dSprites factors, else every factor of ≥ 2 values."""
    loc, raw = _encode_grid(c.encode, params, dataset)
    names, counts = dataset.factor_names, dataset.factor_sizes
    chen = [k for k, name in enumerate(names) if name in CHEN_DSPRITES_FACTORS]
    factors = chen if isinstance(dataset, ProceduralDSprites) else [k for k, n in enumerate(counts) if n >= 2]
    return mig_sampled(key, posterior_fn, loc, raw, counts, factors, num_samples=sizes.mig_sampled_samples)["score"]


def _dlib_suite(key_bv, represent, dataset, sizes: EvalSizes, train, test) -> dict:
    votes = _present(num_train=sizes.train_votes, num_eval=sizes.eval_votes, points_per_vote=sizes.points_per_vote)
    (c_tr, f_tr), (c_te, f_te) = train, test
    out = {"beta_vae": float(beta_vae_score(key_bv, represent, dataset, **votes)["score"]),
           "modularity": float(modularity(c_tr, f_tr)), "sap": float(sap(c_tr, f_tr, c_te, f_te))}
    out.update(explicitness(c_tr, f_tr, c_te, f_te))
    out.update(_dci(sizes, train, test))
    return out


def _dci(sizes: EvalSizes, train, test) -> dict:
    """DCI on the first ``dci_points`` training codes and half as many test codes."""
    (c_tr, f_tr), (c_te, f_te), n = train, test, sizes.dci_points
    return {f"dci_{k}": v for k, v in dci(c_tr[:n], f_tr[:n], c_te[: n // 2], f_te[: n // 2], n_jobs=-1).items()}


def make_evaluator(setup, sizes: EvalSizes = EvalSizes(), measures: tuple[str, ...] | None = None, *,
                   latent_blocks: tuple[int, ...] | None = None) -> Callable[[jax.Array, dict, Any], dict]:
    """``evaluate(key, params, hyper) -> {key: float}`` for one member of a run.

    Args:
      setup: the run's :class:`decompvae.build.RunSetup`.
      sizes: sample sizes (:class:`EvalSizes`; ``EvalSizes.quick()`` for smoke tests).
      measures: names from :data:`MEASURES` (default: :func:`applicable_measures`).
      latent_blocks: block sizes for ``block_mig`` (default: the prior's).

    Raises:
      ValueError: an unknown measure, or one the run's data or prior cannot give.
    """
    measures = applicable_measures(setup) if measures is None else tuple(measures)
    blocks = latent_blocks or prior_blocks(setup.config.model)
    _check_measures(setup, measures, blocks)
    c = _compile(setup, sizes)
    x_eval = jnp.asarray(setup.data.eval_x[: sizes.eval_points])
    truth = setup.data.ground_truth
    dataset = _JittedImages(truth) if isinstance(truth, ProceduralDSprites) else truth
    student_t = PRIORS[setup.config.model.prior].student_t_marginals

    def evaluate(key, params, hyper) -> dict:
        k = dict(zip(("terms", "overlap", "fv_dlib", "fv_paper", "mig", "iwae", "beta_vae", "test"),
                     jax.random.split(key, 8)))
        out = _terms(c, k["terms"], params, hyper, x_eval) if "terms" in measures else {}
        if "iwae" in measures:
            x = x_eval[: sizes.iwae_points]
            out["iwae_log_likelihood"] = float(jnp.mean(c.iwae(k["iwae"], params, hyper, x)))
        if "overlap" in measures:
            out.update(_overlap(c, k["overlap"], params, hyper, sizes, truth))
        codes = np.asarray(c.encode(params, x_eval)[0])
        if "hoyer" in measures:
            out["hoyer"] = float(hoyer_sparsity(codes))
        if "unsupervised" in measures:
            out.update(unsupervised_scores(codes))
        represent = lambda images: c.encode(params, jnp.asarray(images, jnp.float32))[0]  # noqa: E731
        out.update(_factor_vae_scores(k, represent, dataset, sizes, hyper, measures, student_t))
        sampled_mig = lambda: _mig_sampled(jax.random.fold_in(key, 8), c, params, setup.posterior, truth, sizes)  # noqa: E731
        out.update(_supervised_scores_of_samples(k, represent, dataset, sizes, measures, codes, setup, blocks,
                                                 sampled_mig))
        if "clustering" in measures:
            prior = setup.model(params, hyper, x_eval[:2]).prior
            scores = clustering_scores(codes, np.asarray(setup.data.eval_labels[: sizes.eval_points]), prior=prior)
            out.update(clustering_accuracy=float(scores["accuracy"]), clustering_nmi=float(scores["nmi"]))
        return out

    return evaluate


def _factor_vae_scores(keys: dict, represent, dataset, sizes: EvalSizes, hyper, measures, student_t: bool) -> dict:
    """FactorVAE (both protocols with ``factor_vae``, disentanglement_lib's alone with ``factor_vae_dlib``)."""
    if "factor_vae" not in measures and "factor_vae_dlib" not in measures:
        return {}
    return _factor_vae((keys["fv_dlib"], keys["fv_paper"]), represent, dataset, sizes, hyper, student_t,
                       paper_protocol="factor_vae" in measures)


def _supervised_scores_of_samples(keys: dict, represent, dataset, sizes: EvalSizes, measures, codes, setup,
                                  blocks, sampled_mig: Callable[[], float]) -> dict:
    """MIG, Chen et al.'s MIG, DCI, the disentanglement_lib suite, IRS and block MIG, in that order.

    MIG's sample (``mig_points`` codes and factors) is drawn once for every measure that needs it, and the
    test sample (``test_points``) once for DCI and the suite; ``sampled_mig()`` computes ``mig_sampled``
    (over the whole grid, with its own key).
    """
    out, train, test = {}, None, None
    if {"mig", "dci", "dlib_suite", "irs"} & set(measures) or ("block_mig" in measures and dataset is not None):
        train = tuple(map(np.asarray, sample_codes_and_factors(keys["mig"], represent, dataset,
                                                                sizes.mig_points or 10_000)))
    if {"dci", "dlib_suite"} & set(measures):
        test = tuple(map(np.asarray, sample_codes_and_factors(keys["test"], represent, dataset, sizes.test_points)))
    if "mig" in measures:
        out["mig"] = float(mig(*train))
    if "mig_sampled" in measures:
        out["mig_sampled"] = sampled_mig()
    if "dci" in measures and "dlib_suite" not in measures:
        out.update(_dci(sizes, train, test))
    if "dlib_suite" in measures:
        out.update(_dlib_suite(keys["beta_vae"], represent, dataset, sizes, train, test))
    if "irs" in measures:  # disentanglement_lib's protocol: the sampled factors in 20 histogram bins
        out["irs"] = irs(train[0], histogram_discretize(train[1], num_bins=20))
    if "block_mig" in measures:  # without a ground truth: the evaluation points and their labels
        sample = train or (codes, np.asarray(setup.data.eval_labels[: sizes.eval_points]))
        out.update(_block_mig(*sample, blocks, factor_groups(setup)))
    return out


def _check_measures(setup, measures: tuple[str, ...], blocks=None) -> None:
    for name in measures:
        if name not in MEASURE_SPECS:
            raise ValueError(f"measures: {name!r} is not one of {MEASURES}")
        for need in MEASURE_SPECS[name].needs:
            if not need.holds(setup, blocks):
                raise ValueError(f"measure {name!r} needs {need.message}; got data.name={setup.config.data.name!r}, "
                                 f"model.prior={setup.config.model.prior!r}, "
                                 f"model.latent_dim={setup.config.model.latent_dim}")