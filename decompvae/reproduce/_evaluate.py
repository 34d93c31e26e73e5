"""Per-member metrics of a trained sweep, compiled once per run.

:func:`make_member_metrics` compiles the held-out objective terms, the
overlap estimates and the encoder once for a built run (parameters are
arguments), so evaluating N members costs one compilation, not N.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from decompvae import metrics
from decompvae.objective import make_model

__all__ = ["DisentanglementSizes", "make_member_metrics"]


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


def make_member_metrics(
    built, *, eval_points: int, overlap_points: int, disentanglement: DisentanglementSizes | None = None,
    hoyer: bool = False,
) -> Callable[[jax.Array, dict, Any], dict]:
    """``metrics_fn(key, params, hyper) -> dict`` of floats for one member.

    Always: ``recon``, ``kl``, ``elbo`` (held-out means over ``eval_points``)
    and the overlap measures ``overlap_mi`` (I_q(x; z)), ``entropy`` (mean
    H[q(z|x)]) and ``aggregate_kl`` (KL(q(z) ‖ p(z))) over ``overlap_points``.
    With ``disentanglement``: ``factor_vae_dlib``, ``factor_vae_paper``,
    ``mig`` and ``active_dims``. With ``hoyer``: ``hoyer`` (normalised Hoyer
    sparsity of the encoder means of the held-out points).

    Args:
      built: :class:`decompvae.runner.Built`.
      eval_points: held-out points for the objective terms and Hoyer.
      overlap_points: held-out points for the overlap estimates (an N×N cost).
      disentanglement: sizes of the ground-truth metrics, or None to skip them.
      hoyer: compute the sparsity score.
    """
    cfg = built.config
    model = make_model(
        built.encoder, built.decoder, likelihood=built.likelihood, prior=built.prior_fn, posterior=cfg.model.posterior
    )
    x_eval = jnp.asarray(built.bundle.eval_x[:eval_points])
    x_overlap = jnp.asarray(built.bundle.eval_x[:overlap_points])
    objective = jax.jit(built.objective)

    @jax.jit
    def overlap_fn(key, params, hyper):
        dist = model(params, hyper, x_overlap)
        return metrics.overlap(key, dist.posterior, dist.prior)

    encode = jax.jit(lambda params, x: built.encoder.apply(params["encoder"], x)[0])
    dataset = built.bundle.ground_truth
    if type(dataset).__name__ == "ProceduralDSprites":
        dataset = _JittedImages(dataset)

    def metrics_fn(key, params, hyper) -> dict:
        k_obj, k_ov, k_fv, k_fp, k_mig = jax.random.split(key, 5)
        _, terms = objective(k_obj, params, hyper, x_eval)
        out = {
            "recon": float(jnp.mean(terms.recon)),
            "kl": float(jnp.mean(terms.kl)),
            "elbo": float(jnp.mean(terms.recon - terms.kl)),
        }
        info = overlap_fn(k_ov, params, hyper)
        out.update(overlap_mi=float(info.mutual_information), entropy=float(info.entropy),
                   aggregate_kl=float(info.aggregate_kl))
        if hoyer:
            out["hoyer"] = float(metrics.hoyer_sparsity(np.asarray(encode(params, x_eval))))
        if disentanglement is not None:
            if dataset is None:
                raise ValueError("disentanglement metrics need ground-truth data (data.name='dsprites')")
            s = disentanglement
            represent = lambda images: encode(params, jnp.asarray(images, jnp.float32))  # noqa: E731
            fv = metrics.factor_vae_score(
                k_fv, represent, dataset,
                **_kw(num_variance_points=s.variance_points, num_train_votes=s.train_votes,
                      num_eval_votes=s.eval_votes, points_per_vote=s.points_per_vote),
            )
            fp = metrics.factor_vae_score(
                k_fp, represent, dataset, protocol="paper",
                **_kw(num_train_votes=s.paper_votes, points_per_vote=s.paper_points_per_vote,
                      num_pool_points=s.paper_pool),
            )
            codes, factors = metrics.sample_codes_and_factors(k_mig, represent, dataset, s.mig_points or 10_000)
            out.update(factor_vae_dlib=float(fv["score"]), factor_vae_paper=float(fp["score"]),
                       mig=float(metrics.mig(np.asarray(codes), np.asarray(factors))),
                       active_dims=float(fv["num_active_dims"]))
        return out

    return metrics_fn
