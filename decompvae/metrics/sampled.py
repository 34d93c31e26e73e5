"""Sampling-based disentanglement scores: FactorVAE and β-VAE metrics.

These scores sample ground-truth factors, render observations and encode them.
They need

* a ground-truth data set: an object with ``factor_sizes`` (tuple of ints,
  e.g. ``(3, 6, 40, 32, 32)``), ``sample_factors(key, n) -> [n, K]`` integer
  classes and ``images(factors) -> [n, ...]`` observations (see
  :mod:`decompvae.data`); an optional ``iter_grid(batch_size)`` yielding
  ``(factors, images)`` over every combination is used when present;
* a representation function ``representation_fn(images) -> [n, D]`` (e.g.
  the encoder means), which is called on at most ``batch_size`` observations
  at a time.

All randomness comes from the ``key`` argument. Factors are drawn in fixed
blocks of votes, so a score does not depend on ``batch_size``.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.linear_model import LogisticRegression

from decompvae._checks import check_choice, check_dim

__all__ = ["DlibProtocol", "PaperProtocol", "beta_vae_score", "factor_vae_score", "sample_codes_and_factors"]

RepresentationFn = Callable[[jax.Array], jax.Array]

# Votes (FactorVAE) or points (β-VAE) whose factors are drawn with one key.
_VOTES_PER_BLOCK = 128

_PROTOCOLS = ("disentanglement_lib", "paper")


# ----------------------------------------------------------------- helpers


def _factor_sizes(dataset) -> tuple[int, ...]:
    """The data set's factor sizes, after checking the interface."""
    for attribute in ("factor_sizes", "sample_factors", "images"):
        if not hasattr(dataset, attribute):
            raise ValueError(
                f"dataset must have factor_sizes, sample_factors(key, n) and images(factors); it lacks {attribute}"
            )
    sizes = tuple(int(s) for s in dataset.factor_sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"dataset.factor_sizes must be a non-empty tuple of positive ints; got {sizes}")
    return sizes


def _sample_factors(dataset, key, num: int, num_factors: int) -> np.ndarray:
    """``dataset.sample_factors`` as a writable NumPy integer array ``[num, K]``."""
    factors = np.array(dataset.sample_factors(key, num))
    if factors.shape != (num, num_factors) or not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(
            f"dataset.sample_factors(key, {num}) must return integers of shape {(num, num_factors)}; "
            f"got {factors.dtype} {factors.shape}"
        )
    return factors


def _represent(representation_fn: RepresentationFn, dataset, factors: np.ndarray, batch_size: int) -> np.ndarray:
    """Codes ``[n, D]`` (float64) of the observations of ``factors [n, K]``.

    When there is more than one batch, the last one is padded (by repeating
    its first row) to ``batch_size`` rows and the padding dropped, so a jitted
    ``representation_fn`` sees a single input shape and compiles once.
    """
    num = factors.shape[0]
    chunks = []
    for start in range(0, num, batch_size):
        rows = factors[start : start + batch_size]
        valid = rows.shape[0]
        if num > batch_size and valid < batch_size:
            rows = np.concatenate([rows, np.repeat(rows[:1], batch_size - valid, axis=0)])
        chunks.append(_check_codes(representation_fn(dataset.images(rows)), rows.shape[0])[:valid])
    return np.concatenate(chunks, axis=0)


def _check_codes(codes, rows: int) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != rows:
        raise ValueError(f"representation_fn must return codes of shape [{rows}, D]; got shape {codes.shape}")
    if not np.all(np.isfinite(codes)):
        raise ValueError("representation_fn returned NaN or inf")
    return codes


def _grid_codes(representation_fn, dataset, sizes, batch_size) -> tuple[np.ndarray, np.ndarray]:
    """Codes and factors of every factor combination (the full data set)."""
    if hasattr(dataset, "iter_grid"):
        codes, factors = [], []
        for grid_factors, images in dataset.iter_grid(batch_size):
            grid_factors = np.asarray(grid_factors)
            factors.append(grid_factors)
            codes.append(_check_codes(representation_fn(images), grid_factors.shape[0]))
        return np.concatenate(codes), np.concatenate(factors)
    factors = np.indices(sizes, dtype=np.int32).reshape(len(sizes), -1).T  # [prod, K], last factor fastest
    return _represent(representation_fn, dataset, factors, batch_size), factors


def _numpy_rng(key) -> np.random.Generator:
    """A NumPy generator seeded from a JAX key (for many small host-side draws)."""
    return np.random.default_rng(np.asarray(jax.random.bits(key, (4,), jnp.uint32)))


def _blocks(num: int):
    """(block index, size) covering ``num`` items in blocks of ``_VOTES_PER_BLOCK``.

    Every block draws its random numbers for a full ``_VOTES_PER_BLOCK`` items
    (one shape, one compilation) and uses the first ``size``.
    """
    for block, start in enumerate(range(0, num, _VOTES_PER_BLOCK)):
        yield block, min(_VOTES_PER_BLOCK, num - start)


def _block_draws(dataset, key, size: int, points: int, num_factors: int) -> tuple[np.ndarray, np.ndarray]:
    """One block's fixed-factor indices ``[size]`` and factor rows ``[size, points, K]``."""
    key_index, key_factors = jax.random.split(key)
    fixed = np.asarray(jax.random.randint(key_index, (_VOTES_PER_BLOCK,), 0, num_factors))[:size]
    factors = _sample_factors(dataset, key_factors, _VOTES_PER_BLOCK * points, num_factors)
    return fixed, factors.reshape(_VOTES_PER_BLOCK, points, num_factors)[:size]


def sample_codes_and_factors(
    key, representation_fn: RepresentationFn, dataset, num_points: int, *, batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Sample factors, encode their observations: the input of the array metrics.

    disentanglement_lib's ``generate_batch_factor_code`` (rows are points
    here, not columns): ``num_points`` factor rows from
    ``dataset.sample_factors(key, num_points)``, observations
    ``dataset.images``, codes ``representation_fn`` in batches of
    ``batch_size``.

    Args:
      key: PRNG key.
      representation_fn: observations ``[b, ...]`` → codes ``[b, D]``.
      dataset: ground-truth data set (module docstring).
      num_points: number of points.
      batch_size: observations encoded per call.

    Returns:
      ``(codes [num_points, D] float64, factors [num_points, K] int)``.
    """
    sizes = _factor_sizes(dataset)
    check_dim("num_points", num_points)
    check_dim("batch_size", batch_size)
    factors = _sample_factors(dataset, key, num_points, len(sizes))
    return _represent(representation_fn, dataset, factors, batch_size), factors


# --------------------------------------------------------------- FactorVAE


def _fixed_factor_votes(key, representation_fn, dataset, sizes, num_votes, points, global_var, active, batch_size):
    """disentanglement_lib votes ``[K, D]``: (fixed factor, argmin dimension) counts."""
    num_factors, dims = len(sizes), global_var.shape[0]
    votes = np.zeros((num_factors, dims), dtype=np.int64)
    for block, size in _blocks(num_votes):
        # fixed [v], factors [v, L, K]
        fixed, factors = _block_draws(dataset, jax.random.fold_in(key, block), size, points, num_factors)
        rows = np.arange(size)
        # Fix the chosen factor across each vote's batch at the batch's first value.
        factors[rows[:, None], np.arange(points)[None, :], fixed[:, None]] = factors[rows, 0, fixed][:, None]
        codes = _represent(representation_fn, dataset, factors.reshape(-1, num_factors), batch_size)
        local_var = codes.reshape(size, points, dims).var(axis=1, ddof=1)  # [v, D]
        ratio = local_var[:, active] / global_var[active]  # [v, D_active]
        chosen = active[np.argmin(ratio, axis=1)]  # [v], index among all D
        votes += np.bincount(fixed * dims + chosen, minlength=num_factors * dims).reshape(num_factors, dims)
    return votes


def _majority_accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    total = votes.sum()
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / total) if total else 0.0


def _zero_scores(protocol: str) -> dict:
    scores = {"train_accuracy": 0.0, "score": 0.0, "num_active_dims": 0}
    if protocol == "disentanglement_lib":
        scores["eval_accuracy"] = 0.0
    return scores


def _factor_vae_disentanglement_lib(
    key, representation_fn, dataset, sizes, *, points, num_train, num_eval, num_variance, min_std, batch_size
) -> dict:
    key_var, key_train, key_eval = jax.random.split(key, 3)
    codes, _ = sample_codes_and_factors(key_var, representation_fn, dataset, num_variance, batch_size=batch_size)
    global_var = codes.var(axis=0, ddof=1)
    std = np.sqrt(global_var)
    active = np.flatnonzero((std >= min_std) & (std > 0))
    if active.size == 0:
        return _zero_scores("disentanglement_lib")
    args = (representation_fn, dataset, sizes)
    train_votes = _fixed_factor_votes(key_train, *args, num_train, points, global_var, active, batch_size)
    classifier = np.argmax(train_votes, axis=0)  # [D]: the majority factor of each dimension
    eval_votes = _fixed_factor_votes(key_eval, *args, num_eval, points, global_var, active, batch_size)
    eval_accuracy = _majority_accuracy(eval_votes, classifier)
    return {
        "train_accuracy": _majority_accuracy(train_votes, classifier),
        "eval_accuracy": eval_accuracy,
        "score": eval_accuracy,
        "num_active_dims": int(active.size),
    }


def _factor_vae_paper(key, representation_fn, dataset, sizes, *, points, num_votes, num_pool, min_std, batch_size):
    key_pool, key_votes = jax.random.split(key)
    if num_pool is None:
        codes, factors = _grid_codes(representation_fn, dataset, sizes, batch_size)
    else:
        codes, factors = sample_codes_and_factors(key_pool, representation_fn, dataset, num_pool, batch_size=batch_size)
    std = codes.std(axis=0, ddof=1)
    active = np.flatnonzero((std > 0) & (std >= min_std))
    if active.size == 0:
        return _zero_scores("paper")
    z = codes[:, active] / std[active]  # [P, D_active], std-normalised
    num_factors, dims = factors.shape[1], codes.shape[1]
    # For each factor: the pool sorted by its class, and each class's slice.
    groups = []
    for k in range(num_factors):
        order = np.argsort(factors[:, k], kind="stable")
        _, starts, counts = np.unique(factors[order, k], return_index=True, return_counts=True)
        if not np.any(counts >= 2):
            raise ValueError(f"the pool has no class of factor {k} with 2 or more points; use a larger num_pool_points")
        groups.append((order, starts[counts >= 2], counts[counts >= 2]))
    rng = _numpy_rng(key_votes)
    votes = np.zeros((num_factors, dims), dtype=np.int64)
    for k in rng.integers(0, num_factors, size=num_votes):
        order, starts, counts = groups[k]
        g = rng.integers(0, starts.size)  # a class of factor k, uniformly
        pick = rng.choice(counts[g], size=min(points, counts[g]), replace=False)
        local_var = z[order[starts[g] + pick]].var(axis=0, ddof=1)  # [D_active]
        votes[k, active[np.argmin(local_var)]] += 1
    accuracy = float(votes.max(axis=0).sum() / num_votes)
    return {"train_accuracy": accuracy, "score": accuracy, "num_active_dims": int(active.size)}


class DlibProtocol(NamedTuple):
    """disentanglement_lib's FactorVAE protocol (``factor_vae.py`` with the study configuration, Locatello et al. 2019).

    Global variances (ddof 1) from ``num_variance_points`` sampled points; dimensions with std below
    ``min_std`` are pruned; each vote draws ``points_per_vote`` fresh factor rows with the fixed factor set
    to the first row's value; ``num_train_votes`` votes train the majority-vote classifier and
    ``num_eval_votes`` fresh votes evaluate it; the score is the evaluation accuracy. Two cosmetic
    differences: the argmin is mapped back to the dimension's index among all D (disentanglement_lib files
    the vote under its position among the active dimensions; the map is one-to-one, so the accuracy is the
    same), and ``num_active_dims`` counts active dimensions (disentanglement_lib reports D).
    """

    points_per_vote: int = 64
    num_train_votes: int = 10_000
    num_eval_votes: int = 5_000
    num_variance_points: int = 10_000
    min_std: float = 0.05


class PaperProtocol(NamedTuple):
    """The paper's FactorVAE protocol (Kim & Mnih 2018, §4, as in the code of Mathieu et al. 2019).

    Codes of a fixed pool (the full data set, every factor combination once, when ``num_pool_points`` is
    None; else that many sampled points) are divided by their standard deviation over the pool (ddof 1);
    each of ``num_votes = M`` votes picks a factor and a value uniformly and ``points_per_vote = L`` pool
    points with that value (without replacement; all of them if fewer) and votes for the argmin of the
    variance (ddof 1); no pruning beyond ``min_std``; no train/eval split: the score is the classifier's
    training accuracy Σ_d max_k V_kd / M.
    """

    points_per_vote: int = 1_000
    num_votes: int = 20_000
    num_pool_points: int | None = None
    min_std: float = 0.0


def _protocol_options(protocol: str, points_per_vote, num_train_votes, num_eval_votes, num_variance_points,
                      num_pool_points, min_std) -> DlibProtocol | PaperProtocol:
    """The protocol's options: its defaults, overridden by the arguments given (checked, each error naming it)."""
    check_choice("protocol", protocol, _PROTOCOLS)
    paper = protocol == "paper"
    given = {"points_per_vote": points_per_vote, "min_std": min_std,
             "num_votes" if paper else "num_train_votes": num_train_votes}
    if paper:
        if num_pool_points is not None:
            check_dim("num_pool_points", num_pool_points)
        given["num_pool_points"] = num_pool_points
    elif num_pool_points is not None:
        raise ValueError("num_pool_points applies only to protocol='paper'")
    else:
        given.update(num_eval_votes=num_eval_votes, num_variance_points=num_variance_points)
    options = (PaperProtocol if paper else DlibProtocol)()._replace(**{k: v for k, v in given.items() if v is not None})
    for name in ("points_per_vote", "num_votes", "num_train_votes", "num_eval_votes", "num_variance_points"):
        if name in options._fields:
            check_dim(name, getattr(options, name))
            if name in ("points_per_vote", "num_variance_points") and getattr(options, name) < 2:
                raise ValueError(f"{name} must be at least 2 (a variance needs two points); got {getattr(options, name)}")
    if not (math.isfinite(float(options.min_std)) and options.min_std >= 0):
        raise ValueError(f"min_std must be finite and >= 0; got {min_std!r}")
    return options._replace(min_std=float(options.min_std))


def factor_vae_score(
    key, representation_fn: RepresentationFn, dataset, *, protocol: str = "disentanglement_lib",
    points_per_vote: int | None = None, num_train_votes: int | None = None, num_eval_votes: int | None = None,
    num_variance_points: int | None = None, num_pool_points: int | None = None, min_std: float | None = None,
    batch_size: int = 1024,
) -> dict:
    """The FactorVAE disentanglement score (Kim & Mnih 2018) under one of two protocols.

    Each *vote* fixes one factor k at one value, encodes points that share it, normalises each latent
    dimension's variance among them by its global variance and votes for the dimension of least normalised
    variance; a majority-vote classifier maps each dimension to the factor that voted for it most, and the
    score is its accuracy. Dimensions whose global std is below ``min_std`` or exactly 0 never get a vote,
    so a collapsed dimension cannot give NaN.

    Args:
      key: PRNG key.
      representation_fn: observations ``[b, ...]`` → codes ``[b, D]``.
      dataset: ground-truth data set (module docstring).
      protocol: ``"disentanglement_lib"`` (:class:`DlibProtocol`) or ``"paper"`` (:class:`PaperProtocol`).
      points_per_vote, num_train_votes (the paper's M), num_eval_votes, num_variance_points,
        num_pool_points, min_std: override the protocol's defaults (None: keep them); the last three but
        one apply to one protocol each.
      batch_size: observations encoded per ``representation_fn`` call.

    Returns:
      ``{"score", "train_accuracy", "num_active_dims"}`` plus ``"eval_accuracy"`` for
      disentanglement_lib; with no active dimension every accuracy is 0.
    """
    options = _protocol_options(protocol, points_per_vote, num_train_votes, num_eval_votes, num_variance_points,
                                num_pool_points, min_std)
    sizes = _factor_sizes(dataset)
    check_dim("batch_size", batch_size)
    if isinstance(options, PaperProtocol):
        return _factor_vae_paper(key, representation_fn, dataset, sizes, points=options.points_per_vote,
                                 num_votes=options.num_votes, num_pool=options.num_pool_points,
                                 min_std=options.min_std, batch_size=batch_size)
    return _factor_vae_disentanglement_lib(
        key, representation_fn, dataset, sizes, points=options.points_per_vote, num_train=options.num_train_votes,
        num_eval=options.num_eval_votes, num_variance=options.num_variance_points, min_std=options.min_std,
        batch_size=batch_size)


def _beta_vae_points(key, representation_fn, dataset, sizes, num_points, points, batch_size):
    """Features ``[n, D]`` (mean |z₁ − z₂| over a batch) and labels ``[n]``."""
    num_factors = len(sizes)
    features, labels = [], []
    for block, size in _blocks(num_points):
        key_first, key_second = jax.random.split(jax.random.fold_in(key, block))
        fixed, first = _block_draws(dataset, key_first, size, points, num_factors)  # [v], [v, L, K]
        _, second = _block_draws(dataset, key_second, size, points, num_factors)
        rows, cols = np.arange(size)[:, None], np.arange(points)[None, :]
        second[rows, cols, fixed[:, None]] = first[rows, cols, fixed[:, None]]  # pairs share factor k
        codes_first = _represent(representation_fn, dataset, first.reshape(-1, num_factors), batch_size)
        codes_second = _represent(representation_fn, dataset, second.reshape(-1, num_factors), batch_size)
        difference = np.abs(codes_first - codes_second).reshape(size, points, -1)
        features.append(difference.mean(axis=1))
        labels.append(fixed)
    return np.concatenate(features), np.concatenate(labels)


def beta_vae_score(
    key,
    representation_fn: RepresentationFn,
    dataset,
    *,
    points_per_vote: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    max_iter: int = 1000,
    batch_size: int = 1024,
) -> dict:
    """The β-VAE disentanglement score (Higgins et al. 2017).

    As disentanglement_lib's ``beta_vae.py`` (``compute_beta_vae_sklearn``,
    study configuration): each training point picks a factor k uniformly,
    draws two batches of ``points_per_vote = 64`` factor rows that share the
    value of factor k pairwise, and has the feature ``mean_b |z₁,b − z₂,b|`` of
    the two batches' codes and label k. A linear classifier is fitted on
    ``num_train = 10,000`` such points and evaluated on ``num_eval = 5,000``
    fresh ones; the score is the evaluation accuracy. The classifier is
    ``LogisticRegression(C=1, solver="lbfgs", max_iter=max_iter)`` on the raw
    features (multinomial), pinned here because scikit-learn's defaults moved
    since disentanglement_lib (``max_iter`` 1000 instead of 100 so lbfgs
    reaches the optimum).

    Args:
      key: PRNG key.
      representation_fn: observations ``[b, ...]`` → codes ``[b, D]``.
      dataset: ground-truth data set (module docstring) with K ≥ 2 factors.
      points_per_vote: batch size of one point's feature.
      num_train: training points of the classifier.
      num_eval: evaluation points.
      max_iter: lbfgs iterations.
      batch_size: observations encoded per ``representation_fn`` call.

    Returns:
      ``{"train_accuracy", "eval_accuracy", "score"}`` (score = eval accuracy).
    """
    sizes = _factor_sizes(dataset)
    if len(sizes) < 2:
        raise ValueError(f"dataset needs at least 2 factors for the β-VAE score; got factor_sizes {sizes}")
    for name, value in (("points_per_vote", points_per_vote), ("num_train", num_train), ("num_eval", num_eval),
                        ("max_iter", max_iter), ("batch_size", batch_size)):
        check_dim(name, value)
    key_train, key_eval = jax.random.split(key)
    args = (representation_fn, dataset, sizes)
    x_train, y_train = _beta_vae_points(key_train, *args, num_train, points_per_vote, batch_size)
    if np.unique(y_train).size < 2:
        raise ValueError(f"num_train = {num_train} drew a single factor; use more training points")
    model = LogisticRegression(C=1.0, solver="lbfgs", max_iter=max_iter, tol=1e-4).fit(x_train, y_train)
    x_eval, y_eval = _beta_vae_points(key_eval, *args, num_eval, points_per_vote, batch_size)
    eval_accuracy = float(np.mean(model.predict(x_eval) == y_eval))
    return {
        "train_accuracy": float(np.mean(model.predict(x_train) == y_train)),
        "eval_accuracy": eval_accuracy,
        "score": eval_accuracy,
    }
