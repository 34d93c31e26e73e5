"""Block-level disentanglement: latent blocks against groups of factors.

A representation ``codes [N, D]`` is split into contiguous latent blocks of
sizes ``latent_blocks`` (e.g. ``(2, 2, 2, 2, 2)``; they sum to D) and the
ground-truth factors ``factors [N, K]`` into groups ``factor_groups`` (a
partition of ``range(K)``, e.g. ``((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))`` for
the two sprites of :class:`decompvae.data.ProceduralSpritePairs`). The
measures ask whether each group lives in its own block, whatever happens
*inside* the block (a rotation within a block changes nothing):

- :func:`block_mig`, a block-level MIG (Chen et al. 2018, "Isolating Sources
  of Disentanglement in VAEs", with dimensions → blocks and factors →
  groups): per group G, the gap between the two blocks of largest normalised
  mutual information with G, averaged over groups.
- :func:`group_dci`, DCI disentanglement and completeness (Eastwood &
  Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled
  Representations") on a block × group importance matrix aggregated from the
  per-dimension, per-factor gradient-boosted-tree importances.

**The mutual-information estimator** (:func:`block_mutual_information`).
Each block B of m dimensions is discretised on a joint histogram: every
dimension into b_m equal-width bins over its range (disentanglement_lib's
``histogram_discretizer``, as :func:`decompvae.metrics.mig`), with
b_m = min(num_bins, ⌊max_cells^{1/m}⌋), so a block has at most ``max_cells``
joint cells (defaults 20 and 1024: 20 bins per dimension for blocks of 1 or
2 dimensions, 10 for 3, 5 for 4, 4 for 5). I is the plug-in mutual information of the
contingency table of joint cells against factor classes, in nats. With
``target="factors"`` (default) the information about a group is the sum over
its factors,

    I(z_B; G) := Σ_{k∈G} I(z_B; v_k),   H(G) := Σ_{k∈G} H(v_k),

and with ``target="joint"`` it is the plug-in I(z_B; v_G) against the joint
class of the group's factors, with H(v_G) its entropy.

Biases, and why they are acceptable at block sizes 1–5:

- Plug-in MI is biased upwards, to first order by (R − 1)(C − 1)/(2N) nats
  for R occupied cells and C classes (Miller 1955; Panzeri & Treves 1996;
  somewhat more when most cells hold few points). The cell cap limits it: at
  N = 10,000 points (MIG's sample) and 1024 cells, about 0.05·(C − 1) nats
  at most, 0.15 nats for a 4-class factor (11 % of its entropy log 4);
  Gaussian codes occupy fewer cells: 4 % of H(G) for blocks of 5 dimensions,
  3 % for blocks of 2 (sprite pairs, tested). Without the cap a
  5-dimensional block on 20 bins per dimension (3.2 million cells) would put
  nearly every point in its own cell and seem to know every factor. The gap
  subtracts two blocks' estimates, which cancels most of this bias (codes
  independent of the factors score ≈ 0.003). The bias grows as 1/N: with
  fewer points, lower ``max_cells`` (N ≫ max_cells·(C − 1)).
- Cells coarser than the code's spacing of the classes bias I downwards (a
  block that folds a factor finer than b_m bins per dimension is
  under-credited: at 400 cells, 3 bins per dimension of a 5-dimensional
  block cannot separate a 4-class factor, which is why the cap is 1024);
  equal-width bins are sensitive to outliers, as MIG's.
- ``"factors"`` is, for the independent factors of a full grid sampled
  uniformly, a lower bound on the joint information: I(z_B; v_G) =
  Σ_k I(z_B; v_k | v_{<k}) ≥ Σ_k I(z_B; v_k), with equality when the block
  determines the group or is independent of it; it misses only synergy
  (information about combinations of the group's factors). It is the
  default because the joint group class has ∏_k s_k classes (384 for a
  sprite of the pair data set), so the bias term of ``"joint"`` is of the
  order of the entropy itself at N = 10,000; use ``"joint"`` only for groups
  of few joint classes (C·max_cells ≪ N).

With blocks of one dimension, singleton groups and the defaults, the
estimates are exactly those of :func:`decompvae.metrics.mig` (20 bins), so
:func:`block_mig` equals MIG there.

Scores are Python floats; the matrices are NumPy arrays.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from decompvae._checks import check_choice, check_dim
from decompvae.metrics._common import (
    as_codes,
    as_factors,
    check_same_rows,
    discrete_entropy,
    discrete_mutual_info,
    histogram_discretize,
    informative_factors,
)
from decompvae.metrics.disentanglement import dci_completeness, dci_disentanglement, gbt_importance

__all__ = [
    "bins_per_dim",
    "block_cells",
    "block_mig",
    "block_mutual_information",
    "group_dci",
    "group_importance",
]

#: How a group's information is measured (see the module docstring).
TARGETS = ("factors", "joint")


def _is_index(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_blocks(latent_blocks: Sequence[int], dims: int) -> tuple[int, ...]:
    """Block sizes: positive integers summing to the D code dimensions."""
    sizes = tuple(latent_blocks)
    if not sizes or not all(_is_index(s) and s >= 1 for s in sizes):
        raise ValueError(f"latent_blocks must be a non-empty sequence of positive block sizes; got {latent_blocks!r}")
    if sum(sizes) != dims:
        raise ValueError(f"latent_blocks must sum to the D = {dims} code dimensions; got {sizes} (sum {sum(sizes)})")
    return tuple(int(s) for s in sizes)


def _check_groups(factor_groups: Sequence[Sequence[int]], num_factors: int) -> tuple[tuple[int, ...], ...]:
    """Factor groups: non-empty, and together every factor index exactly once."""
    groups = tuple(tuple(group) for group in factor_groups)
    if not groups or any(len(g) == 0 for g in groups) or not all(_is_index(k) for g in groups for k in g):
        raise ValueError(f"factor_groups must be a non-empty sequence of non-empty groups of factor indices; "
                         f"got {factor_groups!r}")
    flat = [int(k) for g in groups for k in g]
    problems = []
    if outside := sorted({k for k in flat if not 0 <= k < num_factors}):
        problems.append(f"out of range {outside}")
    if repeated := sorted({k for k in flat if flat.count(k) > 1}):
        problems.append(f"in more than one group {repeated}")
    if missing := sorted(set(range(num_factors)) - set(flat)):
        problems.append(f"in no group {missing}")
    if problems:
        raise ValueError(f"factor_groups must partition the K = {num_factors} factors (each of 0…{num_factors - 1} "
                         f"in exactly one group); factors {'; '.join(problems)}; got {groups}")
    return tuple(tuple(int(k) for k in g) for g in groups)


def bins_per_dim(block_size: int, *, num_bins: int = 20, max_cells: int = 1024) -> int:
    """Histogram bins per dimension of a block: b_m = min(num_bins, ⌊max_cells^{1/m}⌋).

    Args:
      block_size: m, the block's number of dimensions.
      num_bins: bins per dimension when the cap allows (MIG's 20).
      max_cells: the cap on the joint cells b_m^m of a block.

    Returns:
      b_m ≥ 2.
    """
    check_dim("block_size", block_size)
    check_dim("num_bins", num_bins)
    check_dim("max_cells", max_cells)
    bins = int(round(max_cells ** (1.0 / block_size)))
    while bins**block_size > max_cells:  # an exact integer root, whatever the rounding
        bins -= 1
    bins = min(num_bins, bins)
    if bins < 2:
        raise ValueError(f"max_cells = {max_cells} allows fewer than 2 bins per dimension for a block of "
                         f"{block_size} dimensions (needs max_cells >= {2 ** block_size}); num_bins must be >= 2")
    return bins


def block_cells(codes, latent_blocks: Sequence[int], *, num_bins: int = 20, max_cells: int = 1024):
    """The joint histogram cell of every point in every latent block.

    Args:
      codes: ``[N, D]`` representation.
      latent_blocks: sizes of contiguous blocks, summing to D.
      num_bins, max_cells: see :func:`bins_per_dim`.

    Returns:
      ``(cells, bins)``: ``cells [N, B]`` int64, block b's occupied cells
      numbered 0, 1, … (in order of the flat cell index); ``bins`` the
      bins per dimension of each block, a tuple of B ints.
    """
    codes = as_codes("codes", codes)
    sizes = _check_blocks(latent_blocks, codes.shape[1])
    bins = tuple(bins_per_dim(m, num_bins=num_bins, max_cells=max_cells) for m in sizes)
    starts = np.cumsum((0,) + sizes)
    cells = np.empty((codes.shape[0], len(sizes)), dtype=np.int64)
    for b, (start, stop, n_bins) in enumerate(zip(starts[:-1], starts[1:], bins)):
        binned = histogram_discretize(codes[:, start:stop], num_bins=n_bins)  # [N, m]
        flat = np.ravel_multi_index(tuple(binned.T), (n_bins,) * (stop - start))
        cells[:, b] = np.unique(flat, return_inverse=True)[1].reshape(-1)
    return cells, bins


def block_mutual_information(
    codes, factors, latent_blocks: Sequence[int], factor_groups: Sequence[Sequence[int]], *,
    num_bins: int = 20, max_cells: int = 1024, target: str = "factors",
) -> tuple[np.ndarray, np.ndarray]:
    """Mutual information between latent blocks and factor groups (module docstring).

    Args:
      codes: ``[N, D]`` representation (e.g. encoder means).
      factors: ``[N, K]`` integer factor classes.
      latent_blocks: sizes of contiguous latent blocks, summing to D.
      factor_groups: factor indices per group, a partition of ``range(K)``.
      num_bins, max_cells: the joint histogram of a block (:func:`bins_per_dim`).
      target: ``"factors"`` (Σ_{k∈G} I(z_B; v_k)) or ``"joint"`` (I(z_B; v_G)).

    Returns:
      ``(mutual_info [B, G], entropy [G])`` in nats: I(z_B; G) and H(G).
    """
    check_choice("target", target, TARGETS)
    codes = as_codes("codes", codes)
    factors = as_factors("factors", factors)
    check_same_rows(("codes", "factors"), codes, factors)
    groups = _check_groups(factor_groups, factors.shape[1])
    cells, _ = block_cells(codes, latent_blocks, num_bins=num_bins, max_cells=max_cells)
    occupied = int(cells.max()) + 1
    if target == "joint":
        labels = np.stack([np.unique(factors[:, g], axis=0, return_inverse=True)[1].reshape(-1) for g in groups], 1)
        return discrete_mutual_info(cells, labels, occupied), discrete_entropy(labels)
    mi = discrete_mutual_info(cells, factors, occupied)  # [B, K]
    entropy = discrete_entropy(factors)  # [K]
    return (np.stack([mi[:, g].sum(axis=1) for g in groups], axis=1),
            np.array([entropy[list(g)].sum() for g in groups]))


def block_mig(
    codes, factors, latent_blocks: Sequence[int], factor_groups: Sequence[Sequence[int]], *,
    num_bins: int = 20, max_cells: int = 1024, target: str = "factors",
) -> dict:
    """Block MIG: the mutual information gap between latent blocks, per factor group.

    MIG of Chen et al. (2018) with latent dimensions replaced by blocks and
    factors by groups::

        block MIG = (1/|G'|) Σ_{G∈G'} [I(z_{B(1)}; G) − I(z_{B(2)}; G)] / H(G),

    with B(1), B(2) the blocks of largest and second-largest information about
    G, estimated by :func:`block_mutual_information` (joint histograms of
    each block; the estimator and its biases are in the module docstring).
    Groups G' whose factors all take a single value (H(G) = 0) are left out,
    as :func:`decompvae.metrics.mig` leaves such factors out. Invariant to
    permuting blocks (with their sizes) and to any change within a block
    that keeps its histogram cells (permuting or sign-flipping its
    dimensions); a rotation within a block changes the cells, not what they
    resolve, so it moves the score little.

    Args:
      codes: ``[N, D]`` representation, B ≥ 2 blocks.
      factors: ``[N, K]`` integer factor classes.
      latent_blocks: sizes of contiguous latent blocks, summing to D.
      factor_groups: factor indices per group, a partition of ``range(K)``.
      num_bins: bins per dimension (the cap permitting); 20 as MIG.
      max_cells: the cap on a block's joint cells.
      target: ``"factors"`` or ``"joint"`` (module docstring).

    Returns:
      ``{"score": float in [0, 1], "per_group": [G'] gaps, "groups": [G']
      indices of the groups scored, "normalised_mi": [B, G] I(z_B; G)/H(G)
      (0 where H(G) = 0), "mutual_info": [B, G] nats, "entropy": [G] nats,
      "bins_per_dim": per-block tuple}``.
    """
    codes = as_codes("codes", codes)
    if len(tuple(latent_blocks)) < 2:
        raise ValueError(f"latent_blocks needs at least 2 blocks for a gap; got {tuple(latent_blocks)!r}")
    mi, entropy = block_mutual_information(codes, factors, latent_blocks, factor_groups,
                                           num_bins=num_bins, max_cells=max_cells, target=target)
    used = np.flatnonzero(entropy > 0)
    if used.size == 0:
        raise ValueError("factors: every factor takes a single value; the block MIG is undefined")
    normalised = np.zeros_like(mi)
    normalised[:, used] = mi[:, used] / entropy[used]
    top_two = -np.sort(-normalised[:, used], axis=0)[:2]  # [2, G'] largest first
    gaps = top_two[0] - top_two[1]
    return {"score": float(np.mean(gaps)), "per_group": gaps, "groups": used, "normalised_mi": normalised,
            "mutual_info": mi, "entropy": entropy,
            "bins_per_dim": tuple(bins_per_dim(m, num_bins=num_bins, max_cells=max_cells) for m in latent_blocks)}


def group_importance(importance, latent_blocks: Sequence[int], factor_groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Aggregate a dimension × factor importance matrix into blocks × groups.

    R_BG = mean_{k∈G} Σ_{d∈B} R_dk: summed over a block's dimensions,
    averaged over a group's factors, so each group weighs as one factor of
    ordinary DCI does (a GBT importance column sums to 1 per factor).

    Args:
      importance: ``[D, K]`` non-negative importances.
      latent_blocks: sizes of contiguous blocks, summing to D.
      factor_groups: a partition of ``range(K)``.

    Returns:
      ``[B, G]``.
    """
    r = np.asarray(importance, dtype=np.float64)
    if r.ndim != 2 or not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"importance must be a finite, non-negative [D, K] matrix; got shape {r.shape}")
    sizes = _check_blocks(latent_blocks, r.shape[0])
    groups = _check_groups(factor_groups, r.shape[1])
    per_block = np.add.reduceat(r, np.cumsum((0,) + sizes[:-1]), axis=0)  # [B, K]
    return np.stack([per_block[:, g].mean(axis=1) for g in groups], axis=1)


def group_dci(
    codes_train, factors_train, codes_test, factors_test, latent_blocks: Sequence[int],
    factor_groups: Sequence[Sequence[int]], *, random_state: int = 0, n_jobs=None,
) -> dict:
    """DCI disentanglement and completeness of latent blocks against factor groups.

    Eastwood & Williams (2018) on blocks and groups: the importances
    R ``[D, K]`` of :func:`decompvae.metrics.gbt_importance` (one
    gradient-boosted-tree classifier per factor, on all D dimensions, as
    :func:`decompvae.metrics.dci`) are aggregated by
    :func:`group_importance` into R_BG ``[B, G]``, then
    :func:`decompvae.metrics.dci_disentanglement` (does each block serve one
    group?) and :func:`decompvae.metrics.dci_completeness` (is each group
    served by one block?) are taken on R_BG. Factors with a single class in
    training are left out (of their group's mean); a group left with no
    factor is left out. Informativeness is the trees' mean accuracy over the
    factors, as in :func:`decompvae.metrics.dci`.

    Args:
      codes_train: ``[N, D]``; factors_train: ``[N, K]`` integer classes.
      codes_test: ``[M, D]``; factors_test: ``[M, K]``.
      latent_blocks: sizes of contiguous blocks summing to D (B ≥ 2).
      factor_groups: a partition of ``range(K)`` (≥ 2 groups with an
        informative factor).
      random_state: seed of the trees' tie-breaking.
      n_jobs: joblib workers over factors.

    Returns:
      ``{"disentanglement", "completeness", "informativeness_train",
      "informativeness_test"}`` floats, ``"importance"`` ``[B, G']`` and
      ``"groups"`` ``[G']``, the indices of the groups scored.
    """
    codes_train = as_codes("codes_train", codes_train)
    factors_train = as_factors("factors_train", factors_train)
    sizes = _check_blocks(latent_blocks, codes_train.shape[1])
    groups = _check_groups(factor_groups, factors_train.shape[1])
    if len(sizes) < 2:
        raise ValueError(f"latent_blocks needs at least 2 blocks for completeness; got {sizes!r}")
    informative = informative_factors(factors_train)
    scored = [g for g, group in enumerate(groups) if informative[list(group)].any()]
    if len(scored) < 2:
        raise ValueError("factor_groups: group DCI needs at least 2 groups with a factor of more than one class")
    importance, train_acc, test_acc, used = gbt_importance(
        codes_train, factors_train, codes_test, factors_test, random_state=random_state, n_jobs=n_jobs
    )
    position = {int(k): i for i, k in enumerate(used)}
    kept = [[position[k] for k in groups[g] if k in position] for g in scored]
    matrix = group_importance(importance, sizes, kept)  # [B, G']
    return {"disentanglement": dci_disentanglement(matrix), "completeness": dci_completeness(matrix),
            "informativeness_train": float(np.mean(train_acc)), "informativeness_test": float(np.mean(test_acc)),
            "importance": matrix, "groups": np.array(scored)}
