"""Clustering scores for mixture priors (the paper's pinwheel experiment; docs/guide.md#metrics).

A code is assigned to the prior component under which it is most likely
(the maximum-a-posteriori component); assignments are compared with known
labels by accuracy after the best one-to-one matching of clusters to labels
(Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``) and by
normalised mutual information (scikit-learn).

Reference: Mathieu et al. (2019), §5 "Clustering".
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import normalized_mutual_info_score

from decompvae._checks import check_dim
from decompvae.metrics._common import as_codes

__all__ = ["assign_to_components", "clustering_scores", "component_log_posterior"]


@jax.jit
def component_log_posterior(prior: distrax.MixtureSameFamily, codes) -> jax.Array:
    """Unnormalised log p(c | z) = log π_c + log p(z | c) for every component.

    Args:
      prior: a distrax ``MixtureSameFamily`` with event shape ``(D,)`` and C
        components (e.g. :func:`decompvae.priors.pinwheel`).
      codes: ``[N, D]``.

    Returns:
      ``[N, C]`` log-joint ``prior.components_distribution.log_prob(z[:, None])
      + log π``; its row-wise argmax is the most likely component.
    """
    log_weights = jax.nn.log_softmax(prior.mixture_distribution.logits, axis=-1)  # [C]
    return prior.components_distribution.log_prob(codes[:, None, :]) + log_weights  # [N, C]


def assign_to_components(prior: distrax.MixtureSameFamily, codes, *, batch_size: int = 4096) -> np.ndarray:
    """Assign each code to its most likely mixture component.

    argmax_c [log π_c + log p(z | c)] for a distrax ``MixtureSameFamily``
    prior, computed ``batch_size`` codes at a time (memory O(batch_size · C · D)).

    Args:
      prior: ``MixtureSameFamily`` prior with event shape ``(D,)``.
      codes: ``[N, D]`` codes (e.g. encoder means).
      batch_size: codes scored per call.

    Returns:
      ``[N]`` int64 component indices.
    """
    if not isinstance(prior, distrax.MixtureSameFamily):
        raise ValueError(f"prior must be a distrax.MixtureSameFamily; got {type(prior).__name__}")
    check_dim("batch_size", batch_size)
    codes = as_codes("codes", codes, min_rows=1)
    if prior.event_shape != (codes.shape[1],):
        raise ValueError(
            f"codes must have D = {prior.event_shape} columns (the prior's event shape); got {codes.shape}"
        )
    n = codes.shape[0]
    dtype = jnp.result_type(prior.components_distribution.dtype, float)
    out = np.empty(n, dtype=np.int64)
    for start in range(0, n, batch_size):
        chunk = codes[start : start + batch_size]
        rows = chunk.shape[0]
        padded = np.zeros((batch_size, codes.shape[1]), dtype=dtype)  # one compiled shape
        padded[:rows] = chunk
        scores = component_log_posterior(prior, jnp.asarray(padded))
        out[start : start + rows] = np.asarray(jnp.argmax(scores, axis=1))[:rows]
    return out


def clustering_scores(codes_or_assignments, labels, *, prior: distrax.MixtureSameFamily | None = None) -> dict:
    """Clustering accuracy (best matching) and NMI against known labels.

    * ``accuracy``: the fraction of points whose cluster maps to their label
      under the one-to-one cluster→label matching that maximises it (Hungarian
      algorithm on the contingency table; with more clusters than labels the
      unmatched clusters count as errors).
    * ``nmi``: ``sklearn.metrics.normalized_mutual_info_score(labels,
      assignments)`` (arithmetic-mean normalisation), invariant to relabelling.

    Args:
      codes_or_assignments: either ``[N]`` integer cluster assignments, or
        ``[N, D]`` codes, which are first assigned to the most likely
        component of ``prior`` (:func:`assign_to_components`).
      labels: ``[N]`` integer ground-truth labels (e.g. pinwheel arms).
      prior: the mixture prior; required for codes, unused for assignments.

    Returns:
      ``{"accuracy", "nmi"}``, both in [0, 1].
    """
    values = np.asarray(codes_or_assignments)
    if values.ndim == 2:
        if prior is None:
            raise ValueError("prior is required when codes_or_assignments are codes [N, D]")
        assignments = assign_to_components(prior, values)
    elif values.ndim == 1:
        if not (np.issubdtype(values.dtype, np.integer) or values.dtype == np.bool_):
            raise ValueError(f"codes_or_assignments of shape [N] must be integer assignments; got dtype {values.dtype}")
        assignments = values.astype(np.int64)
    else:
        raise ValueError(f"codes_or_assignments must have shape [N] or [N, D]; got shape {values.shape}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        raise ValueError(
            f"labels must be an integer array of shape [N]; got shape {labels.shape}, dtype {labels.dtype}"
        )
    if labels.shape[0] != assignments.shape[0] or labels.shape[0] == 0:
        raise ValueError(
            f"labels and codes_or_assignments must have the same non-zero length; "
            f"got {labels.shape[0]} and {assignments.shape[0]}"
        )
    _, cluster = np.unique(assignments, return_inverse=True)
    _, label = np.unique(labels, return_inverse=True)
    num_clusters, num_labels = cluster.max() + 1, label.max() + 1
    contingency = np.bincount(cluster * num_labels + label, minlength=num_clusters * num_labels).reshape(
        num_clusters, num_labels
    )
    rows, cols = linear_sum_assignment(contingency, maximize=True)
    return {
        "accuracy": float(contingency[rows, cols].sum() / labels.shape[0]),
        "nmi": float(normalized_mutual_info_score(labels, assignments)),
    }
