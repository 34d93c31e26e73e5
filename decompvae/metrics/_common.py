"""Shared pieces of the disentanglement metrics: validation, discretisation, MI.

Everything here is NumPy on the host. Contingency tables are built with
``np.bincount`` on combined integer indices, a block of rows at a time, so
memory stays O(rows_per_block · D + D · classes · bins) whatever N is; nothing
of size N × D × bins (a one-hot tensor) or N × N is ever formed.

Mutual information and entropy are in nats (natural logarithm), as
scikit-learn's ``mutual_info_score`` and disentanglement_lib.
"""

from __future__ import annotations

import numpy as np

from decompvae._checks import check_dim

__all__ = [
    "as_codes",
    "as_factors",
    "check_same_rows",
    "discrete_entropy",
    "histogram_discretize",
    "informative_factors",
    "mutual_information_matrix",
]

# Rows per np.bincount call when building contingency tables.
_ROWS_PER_BLOCK = 65536


def as_codes(name: str, codes, *, min_dims: int = 1, min_rows: int = 2) -> np.ndarray:
    """Validate a representation ``[N, D]`` and return it as a float array.

    A floating input keeps its dtype (so histogram edges are those of the
    caller's data, as in disentanglement_lib); other numeric inputs become
    float64.
    """
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape [N, D]; got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (points); got {arr.shape[0]}")
    if arr.shape[1] < min_dims:
        raise ValueError(f"{name} needs at least {min_dims} columns (latent dimensions); got {arr.shape[1]}")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; it holds NaN or inf")
    return arr


def as_factors(name: str, factors, *, min_factors: int = 1) -> np.ndarray:
    """Validate ground-truth factor classes ``[N, K]`` (an integer array)."""
    arr = np.asarray(factors)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape [N, K]; got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ValueError(f"{name} must be an integer array of factor classes; got dtype {arr.dtype}")
    if arr.shape[1] < min_factors:
        raise ValueError(f"{name} needs at least {min_factors} columns (factors); got {arr.shape[1]}")
    return arr.astype(np.int64, copy=False)


def check_same_rows(names: tuple[str, str], first: np.ndarray, second: np.ndarray) -> None:
    """``first`` and ``second`` must have the same number of rows."""
    if first.shape[0] != second.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of rows; got {first.shape[0]} and {second.shape[0]}"
        )


def check_same_columns(names: tuple[str, str], first: np.ndarray, second: np.ndarray) -> None:
    """``first`` and ``second`` must have the same number of columns."""
    if first.shape[1] != second.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of columns; "
            f"got {first.shape[1]} and {second.shape[1]}"
        )


def informative_factors(factors: np.ndarray) -> np.ndarray:
    """Boolean mask ``[K]``: factors taking more than one value in ``factors``."""
    return np.any(factors != factors[:1], axis=0)


def histogram_discretize(codes, *, num_bins: int = 20) -> np.ndarray:
    """Discretise each latent dimension into ``num_bins`` equal-width bins.

    disentanglement_lib's ``_histogram_discretize``: per dimension, the edges
    of ``np.histogram(x, num_bins)`` (equal width over [min x, max x]; a
    constant dimension gets the range [x − 0.5, x + 0.5]) and bin index
    ``np.digitize(x, edges[:-1])``. Here the bins are numbered from 0.

    Args:
      codes: ``[N, D]`` real representation.
      num_bins: number of bins (≥ 2).

    Returns:
      ``[N, D]`` int64 bin indices in ``[0, num_bins)``.
    """
    codes = as_codes("codes", codes)
    check_dim("num_bins", num_bins)
    if num_bins < 2:
        raise ValueError(f"num_bins must be at least 2; got {num_bins}")
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):  # one O(N) pass per dimension, not per point
        column = codes[:, d]
        edges = np.histogram_bin_edges(column, bins=num_bins)
        out[:, d] = np.digitize(column, edges[:-1]) - 1
    return out


def _class_indices(factors: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """Per factor: classes relabelled 0..n_k−1, and n_k."""
    indices, sizes = [], []
    for k in range(factors.shape[1]):
        values, inverse = np.unique(factors[:, k], return_inverse=True)
        indices.append(inverse.reshape(-1))
        sizes.append(len(values))
    return indices, sizes


def _entropy_of_counts(counts: np.ndarray, axis) -> np.ndarray:
    """Entropy (nats) of count tables normalised over ``axis``."""
    total = counts.sum(axis=axis, keepdims=True)
    p = counts / total
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, p * np.log(np.where(counts > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=axis)


def discrete_entropy(factors) -> np.ndarray:
    """Empirical entropy H(y_k) in nats of each factor column ``[N, K]`` → ``[K]``."""
    factors = as_factors("factors", factors)
    indices, sizes = _class_indices(factors)
    return np.array([_entropy_of_counts(np.bincount(idx, minlength=n).astype(np.float64), axis=0)
                     for idx, n in zip(indices, sizes)])


def discrete_mutual_info(binned: np.ndarray, factors: np.ndarray, num_bins: int) -> np.ndarray:
    """Plug-in MI (nats) between every binned code column and factor column.

    Args:
      binned: ``[N, D]`` integer bins in ``[0, num_bins)``.
      factors: ``[N, K]`` integer classes (already validated).
      num_bins: the number of bins of ``binned``.

    Returns:
      ``[D, K]``: I(b_d; y_k) = Σ p(b, y) log p(b, y) / (p(b) p(y)), the value
      of ``sklearn.metrics.mutual_info_score(y_k, b_d)`` for each pair.
    """
    n, dims = binned.shape
    indices, sizes = _class_indices(factors)
    mi = np.empty((dims, factors.shape[1]))
    offsets = (np.arange(dims, dtype=np.int64) * num_bins)[None, :]  # [1, D]
    for k, (y, n_y) in enumerate(zip(indices, sizes)):
        # Joint counts [D, n_y, bins] from one bincount per block of rows, on the
        # combined index ((y · D) + d) · bins + b.
        counts = np.zeros(n_y * dims * num_bins, dtype=np.int64)
        for start in range(0, n, _ROWS_PER_BLOCK):
            stop = min(start + _ROWS_PER_BLOCK, n)
            combined = (y[start:stop, None] * (dims * num_bins)) + offsets + binned[start:stop]  # [rows, D]
            counts += np.bincount(combined.ravel(), minlength=counts.size)
        joint = counts.reshape(n_y, dims, num_bins).transpose(1, 0, 2).astype(np.float64) / n  # [D, n_y, bins]
        p_y = joint.sum(axis=2, keepdims=True)  # [D, n_y, 1]
        p_b = joint.sum(axis=1, keepdims=True)  # [D, 1, bins]
        positive = joint > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(positive, joint / (p_y * p_b), 1.0)
        mi[:, k] = np.sum(np.where(positive, joint * np.log(ratio), 0.0), axis=(1, 2))
    return np.maximum(mi, 0.0)  # as sklearn: clip rounding below zero


def mutual_information_matrix(codes, factors, *, num_bins: int = 20) -> np.ndarray:
    """Discrete mutual information between histogram-binned codes and factors.

    The matrix MIG and modularity are built on (disentanglement_lib's
    ``discrete_mutual_info`` after ``histogram_discretizer`` with
    ``num_bins = 20``), vectorised: one ``np.bincount`` per factor and block of
    rows instead of D·K calls of ``sklearn.metrics.mutual_info_score``.

    Args:
      codes: ``[N, D]`` representation (e.g. encoder means).
      factors: ``[N, K]`` integer factor classes.
      num_bins: equal-width histogram bins per latent dimension.

    Returns:
      ``[D, K]`` mutual information in nats.
    """
    codes = as_codes("codes", codes)
    factors = as_factors("factors", factors)
    check_same_rows(("codes", "factors"), codes, factors)
    binned = histogram_discretize(codes, num_bins=num_bins)
    return discrete_mutual_info(binned, factors, num_bins)
