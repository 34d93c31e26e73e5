"""Per-member metrics of a trained sweep, compiled once per run.

:func:`make_member_metrics` compiles the objective terms on the evaluation points, the
overlap estimates and the encoder once for a built run (parameters are
arguments), so evaluating N members costs one compilation, not N.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from decompvae import metrics
from decompvae.data.sprites import ProceduralDSprites
from decompvae.objective import make_model
from decompvae.posteriors import make_posterior

__all__ = ["DisentanglementSizes", "gaussianise", "make_member_metrics"]


class DisentanglementSizes(NamedTuple):
    """Sample sizes of the ground-truth metrics (None: the metric's published default).

    Attributes:
      variance_points: disentanglement_lib FactorVAE global variance points (10,000).
      train_votes, eval_votes: disentanglement_lib FactorVAE votes (10,000 / 5,000).
      points_per_vote: disentanglement_lib FactorVAE batch per vote (64).
      paper_votes: the paper's FactorVAE votes M (20,000).
      paper_points_per_vote: the paper's L (1,000).
      paper_pool: the paper's pool size (None: the full data set, 737,280 images).
      mig_points: points for MIG (10,000).
    """

    variance_points: int | None = None
    train_votes: int | None = None
    eval_votes: int | None = None
    points_per_vote: int | None = None
    paper_votes: int | None = None
    paper_points_per_vote: int | None = None
    paper_pool: int | None = None
    mig_points: int | None = None


class _JittedImages:
    """A procedural ground-truth data set whose ``images`` is jitted (one compilation per batch shape).

    ``ProceduralDSprites.images`` runs op by op; the metrics render hundreds of
    thousands of images, so compiling the renderer once per shape matters.
    """

    def __init__(self, dataset):
        self._dataset = dataset
        self._images = jax.jit(dataset.images)

    def images(self, factors):
        return self._images(jnp.asarray(factors))

    def __getattr__(self, name):
        return getattr(self._dataset, name)


def _kw(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def gaussianise(codes: np.ndarray, df: float, scale: float = 1.0) -> np.ndarray:
    """Student-t codes mapped to a standard Gaussian per dimension: Φ⁻¹(F_ν(μ_d / scale)).

    The published analysis of the Student-t priors scores FactorVAE on these
    (an optimal-transport map of each marginal of the prior onto N(0, 1)),
    and reports the raw codes' score beside it. Tails are computed from the
    survival function so that far-out codes keep their order (clipped at
    ±37.5, where Φ's tail underflows double precision).

    Args:
      codes: ``[n, D]`` encoder means.
      df: ν of the prior.
      scale: the prior's scale.

    Returns:
      ``[n, D]`` float64.
    """
    from scipy import stats

    t = np.asarray(codes, np.float64) / scale
    upper = stats.norm.isf(np.clip(stats.t.sf(t, df), 1e-300, 1.0))
    lower = stats.norm.ppf(np.clip(stats.t.cdf(t, df), 1e-300, 1.0))
    return np.clip(np.where(t > 0, upper, lower), -37.5, 37.5)


def _encode_grid(encode_both, params, dataset, batch_size: int = 4096) -> tuple[jax.Array, jax.Array]:
    """Encoder outputs ``(loc, raw)`` ``[N, D]`` for every image of a finite ground-truth data set."""
    locs, raws = [], []
    for _, images in dataset.iter_grid(batch_size=batch_size):
        n = images.shape[0]
        if n < batch_size:  # one input shape, one compilation
            images = jnp.pad(images, ((0, batch_size - n),) + ((0, 0),) * (images.ndim - 1))
        loc, raw = encode_both(params, images)
        locs.append(loc[:n])
        raws.append(raw[:n])
    return jnp.concatenate(locs), jnp.concatenate(raws)


def make_member_metrics(
    built, *, eval_points: int, overlap_points: int, disentanglement: DisentanglementSizes | None = None,
    hoyer: bool = False, dataset_overlap_points: int | None = None,
) -> Callable[[jax.Array, dict, Any], dict]:
    """``metrics_fn(key, params, hyper) -> dict`` of floats for one member.

    Always: ``recon``, ``kl``, ``elbo`` (means over the ``eval_points`` evaluation points)
    and the overlap measures ``overlap_mi`` (I_q(x; z)), ``entropy`` (mean
    H[q(z|x)]) and ``aggregate_kl`` (KL(q(z) ‖ p(z))) over ``overlap_points``.
    With ``disentanglement``: ``factor_vae_dlib``, ``factor_vae_paper``,
    ``mig`` and ``active_dims``, and for a Student-t prior also
    ``factor_vae_dlib_gaussianised`` and ``factor_vae_paper_gaussianised``
    (the same votes on the codes mapped by :func:`gaussianise`). With
    ``hoyer``: ``hoyer`` (normalised Hoyer sparsity of the encoder means of
    the held-out points). With ``dataset_overlap_points`` (a finite
    ground-truth data set with ``iter_grid``): the overlap measures come from
    :func:`decompvae.metrics.dataset_overlap` over the whole data set, with
    ``overlap_mi_se`` and ``overlap_mi_bound`` = log N; otherwise from the
    minibatch mixture of ``overlap_points`` points (bound log of that).

    Args:
      built: :class:`decompvae.runner.Built`.
      eval_points: evaluation points for the objective terms and Hoyer.
      overlap_points: evaluation points for the minibatch-mixture overlap estimates (an N×N cost).
      disentanglement: sizes of the ground-truth metrics, or None to skip them.
      hoyer: compute the sparsity score.
    """
    cfg = built.config
    model = make_model(
        built.encoder, built.decoder, likelihood=built.likelihood, prior=built.prior_fn, posterior=cfg.model.posterior
    )
    x_eval = jnp.asarray(built.bundle.eval_x[:eval_points])
    x_overlap = jnp.asarray(built.bundle.eval_x[:overlap_points])
    objective = jax.jit(built.eval_objective)

    @jax.jit
    def overlap_fn(key, params, hyper):
        dist = model(params, hyper, x_overlap)
        return metrics.overlap(key, dist.posterior, dist.prior)

    encode = jax.jit(lambda params, x: built.encoder.apply(params["encoder"], x)[0])
    encode_both = jax.jit(lambda params, x: built.encoder.apply(params["encoder"], x))
    posterior_fn = make_posterior(cfg.model.posterior)

    @jax.jit
    def grid_overlap(key, params, hyper, loc, raw):
        prior = model(params, hyper, x_overlap[:2]).prior
        return metrics.dataset_overlap(key, posterior_fn, loc, raw, prior, num_points=dataset_overlap_points)

    raw_dataset = built.bundle.ground_truth
    dataset = _JittedImages(raw_dataset) if isinstance(raw_dataset, ProceduralDSprites) else raw_dataset
    student_t = cfg.model.prior == "student_t"

    def metrics_fn(key, params, hyper) -> dict:
        k_obj, k_ov, k_fv, k_fp, k_mig = jax.random.split(key, 5)
        _, terms = objective(k_obj, params, hyper, x_eval)
        out = {
            "recon": float(jnp.mean(terms.recon)),
            "kl": float(jnp.mean(terms.kl)),
            "elbo": float(jnp.mean(terms.recon - terms.kl)),
        }
        if dataset_overlap_points:
            loc, raw = _encode_grid(encode_both, params, raw_dataset)
            info, se = grid_overlap(k_ov, params, hyper, loc, raw)
            out.update(overlap_mi_se=float(se), overlap_mi_bound=float(np.log(loc.shape[0])))
        else:
            info = overlap_fn(k_ov, params, hyper)
            out["overlap_mi_bound"] = float(np.log(x_overlap.shape[0]))
        out.update(overlap_mi=float(info.mutual_information), entropy=float(info.entropy),
                   aggregate_kl=float(info.aggregate_kl))
        if hoyer:
            out["hoyer"] = float(metrics.hoyer_sparsity(np.asarray(encode(params, x_eval))))
        if disentanglement is not None:
            if dataset is None:
                raise ValueError("disentanglement metrics need ground-truth data (data.name='dsprites')")
            s = disentanglement
            represent = lambda images: encode(params, jnp.asarray(images, jnp.float32))  # noqa: E731
            dlib = _kw(num_variance_points=s.variance_points, num_train_votes=s.train_votes,
                       num_eval_votes=s.eval_votes, points_per_vote=s.points_per_vote)
            paper = _kw(num_train_votes=s.paper_votes, points_per_vote=s.paper_points_per_vote,
                        num_pool_points=s.paper_pool)
            fv = metrics.factor_vae_score(k_fv, represent, dataset, **dlib)
            fp = metrics.factor_vae_score(k_fp, represent, dataset, protocol="paper", **paper)
            codes, factors = metrics.sample_codes_and_factors(k_mig, represent, dataset, s.mig_points or 10_000)
            out.update(factor_vae_dlib=float(fv["score"]), factor_vae_paper=float(fp["score"]),
                       mig=float(metrics.mig(np.asarray(codes), np.asarray(factors))),
                       active_dims=float(fv["num_active_dims"]))
            if student_t:  # the published analysis: the same votes on Φ⁻¹(F_ν(μ)) (SPEC §8)
                df, scale = float(hyper.prior["df"]), float(hyper.prior.get("scale", 1.0))
                mapped = lambda images: gaussianise(np.asarray(represent(images)), df, scale)  # noqa: E731
                fvg = metrics.factor_vae_score(k_fv, mapped, dataset, **dlib)
                fpg = metrics.factor_vae_score(k_fp, mapped, dataset, protocol="paper", **paper)
                out.update(factor_vae_dlib_gaussianised=float(fvg["score"]),
                           factor_vae_paper_gaussianised=float(fpg["score"]))
        return out

    return metrics_fn
