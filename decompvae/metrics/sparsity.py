"""Sparsity of a representation: the normalised Hoyer measure (Mathieu et al., 2019, sparsity experiment)."""

from __future__ import annotations

import numpy as np

from decompvae.metrics._common import as_codes

__all__ = ["hoyer_sparsity"]


def hoyer_sparsity(codes, *, normalise: bool = True) -> float:
    """Mean normalised Hoyer sparsity of the codes.

    Mathieu et al. (2019), §5 "Sparsity", after Hoyer (2004), "Non-negative
    Matrix Factorization with Sparseness Constraints": each dimension is first
    divided by its standard deviation over the data, z_i = μ_i / std(μ) (no
    centring; this stops a dimension from looking sparse merely because its
    scale is small), then

        score = mean_i (√D − ‖z_i‖₁ / ‖z_i‖₂) / (√D − 1),

    which is 1 for one-hot codes and 0 when every entry of z_i has the same
    magnitude. The ddof of the standard deviation does not matter (it scales
    every dimension alike). As in the paper's code
    (``compute_sparsity(zs, norm=True)``), with two NaN guards that code lacks:

    * a dimension with zero spread is divided by 1 instead of 0 (it keeps its
      constant value: a dimension collapsed to 0 counts as inactive in every
      code, one collapsed to c ≠ 0 as active in every code);
    * a code vector that is exactly zero has no defined Hoyer ratio and is left
      out of the mean (a ``ValueError`` if every code is zero).

    Args:
      codes: ``[N, D]`` encoder means over a test set, D ≥ 2.
      normalise: divide each dimension by its standard deviation (the paper's
        metric); False gives the plain mean Hoyer sparsity of the rows.

    Returns:
      Sparsity in [0, 1].
    """
    codes = as_codes("codes", codes, min_dims=2).astype(np.float64)
    dims = codes.shape[1]
    if normalise:
        std = codes.std(axis=0)
        codes = codes / np.where(std > 0, std, 1.0)
    l2 = np.sqrt(np.sum(codes**2, axis=1))  # [N]
    nonzero = l2 > 0
    if not np.any(nonzero):
        raise ValueError("codes: every code vector is zero; the Hoyer sparsity is undefined")
    ratio = np.sum(np.abs(codes[nonzero]), axis=1) / l2[nonzero]
    root = np.sqrt(dims)
    return float(np.mean((root - ratio) / (root - 1.0)))
