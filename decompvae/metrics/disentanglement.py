"""Array-level disentanglement metrics: MIG, DCI, SAP, modularity, explicitness.

Each function takes a representation ``codes [N, D]`` (e.g. encoder means) and
integer ground-truth factor classes ``factors [N, K]`` and follows the
definitions and defaults of disentanglement_lib (Locatello et al., "Challenging
Common Assumptions in the Unsupervised Learning of Disentangled
Representations", ICML 2019; github.com/google-research/disentanglement_lib,
``evaluation/metrics/``), with three deliberate differences, each stated where
it applies:

* Every scikit-learn estimator gets its hyperparameters spelled out, so a
  change of scikit-learn's defaults cannot move a score (the defaults of
  ``LogisticRegression`` changed between the versions disentanglement_lib ran
  on and today's).
* Degenerate inputs give numbers, not NaN or a crash: a factor that takes a
  single value in the training sample carries no information and is left out
  of the average (disentanglement_lib divides by its zero entropy or fails to
  fit a classifier); a collapsed (constant) latent dimension is standardised
  by 1 instead of 0.
* Loops that disentanglement_lib runs in Python over (dimension, factor) pairs
  are vectorised where the arithmetic allows (the mutual-information matrix);
  classifier fits stay per pair, optionally in parallel (``n_jobs``).

Invariance to permuting or sign-flipping latent dimensions: exact for MIG and
modularity (up to points lying exactly on a histogram edge); SAP and
explicitness up to solver tolerance; DCI up to the trees' tie-breaking
between equally good splits (of the size of changing ``random_state``).

Scores are Python floats (dicts of floats for several numbers).
"""

from __future__ import annotations

import numpy as np
import scipy.stats
from joblib import Parallel, delayed
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.svm import LinearSVC

from decompvae._checks import check_dim
from decompvae.metrics._common import (
    as_codes,
    as_factors,
    check_same_columns,
    check_same_rows,
    discrete_entropy,
    informative_factors,
    mutual_information_matrix,
)

__all__ = [
    "dci",
    "dci_completeness",
    "dci_disentanglement",
    "explicitness",
    "gbt_importance",
    "mig",
    "modularity",
    "modularity_from_mutual_info",
    "sap",
    "sap_from_score_matrix",
    "sap_score_matrix",
]


def _train_test(codes_train, factors_train, codes_test, factors_test, *, min_dims=1):
    """Validate a train/test split of codes and factors."""
    codes_train = as_codes("codes_train", codes_train, min_dims=min_dims)
    factors_train = as_factors("factors_train", factors_train)
    codes_test = as_codes("codes_test", codes_test, min_dims=min_dims)
    factors_test = as_factors("factors_test", factors_test)
    check_same_rows(("codes_train", "factors_train"), codes_train, factors_train)
    check_same_rows(("codes_test", "factors_test"), codes_test, factors_test)
    check_same_columns(("codes_train", "codes_test"), codes_train, codes_test)
    check_same_columns(("factors_train", "factors_test"), factors_train, factors_test)
    return codes_train, factors_train, codes_test, factors_test


def _used_factors(factors_train: np.ndarray) -> np.ndarray:
    """Indices of the factors with more than one class; error if there are none."""
    used = np.flatnonzero(informative_factors(factors_train))
    if used.size == 0:
        raise ValueError("factors_train: every factor takes a single value; the metric is undefined")
    return used


# --------------------------------------------------------------------- MIG


def mig(codes, factors, *, num_bins: int = 20) -> float:
    """Discrete Mutual Information Gap (histogram MIG of disentanglement_lib).

    Chen et al. (2018), "Isolating Sources of Disentanglement in VAEs", define
    MIG = (1/K) Σ_k [I(z_{j(1)}; y_k) − I(z_{j(2)}; y_k)] / H(y_k), with j(1),
    j(2) the latent dimensions of largest and second-largest mutual
    information with factor k. This is the *discrete* variant of
    disentanglement_lib (``mig.py``, key ``discrete_mig``): each latent
    dimension is discretised into ``num_bins`` equal-width histogram bins
    (``histogram_discretizer``, 20 bins by default), I is the plug-in mutual
    information of the contingency table, H the empirical factor entropy, all
    in nats. It is *not* the continuous MIG of Chen et al.'s own code, which
    estimates I(z_j; y_k) from the encoder distribution q(z|x); the two can
    differ a lot, so report which one you use.

    Factors that take a single value in the sample (H = 0, where
    disentanglement_lib returns NaN) are left out of the mean.

    Args:
      codes: ``[N, D]`` representation (e.g. encoder means), D ≥ 2.
      factors: ``[N, K]`` integer factor classes.
      num_bins: histogram bins per latent dimension.

    Returns:
      The discrete MIG in [0, 1].
    """
    codes = as_codes("codes", codes, min_dims=2)
    factors = as_factors("factors", factors)
    used = _used_factors(factors)
    mi = mutual_information_matrix(codes, factors[:, used], num_bins=num_bins)  # [D, K']
    entropy = discrete_entropy(factors[:, used])  # [K']
    top_two = -np.sort(-mi, axis=0)[:2]  # [2, K'] largest first
    return float(np.mean((top_two[0] - top_two[1]) / entropy))


# -------------------------------------------------------------- modularity


def modularity_from_mutual_info(mutual_info) -> float:
    """Modularity score from a mutual-information matrix ``[D, K]``.

    Ridgeway & Mozer (2018), "Learning Deep Disentangled Embeddings with the
    F-Statistic Loss", §3, as disentanglement_lib's ``modularity``: for each
    latent dimension d with θ_d = max_k I_{dk}²,
    δ_d = (Σ_k I_{dk}² − θ_d) / (θ_d (K − 1)) and the score is 1 − δ_d;
    a dimension with no information (θ_d = 0) scores 0; the result is the
    mean over all D dimensions.

    Args:
      mutual_info: ``[D, K]`` non-negative, K ≥ 2.

    Returns:
      Modularity in [0, 1].
    """
    mi = np.asarray(mutual_info, dtype=np.float64)
    if mi.ndim != 2 or mi.shape[1] < 2 or mi.shape[0] < 1:
        raise ValueError(f"mutual_info must have shape [D, K] with K >= 2; got shape {mi.shape}")
    if not np.all(np.isfinite(mi)) or np.any(mi < 0):
        raise ValueError("mutual_info must be finite and non-negative")
    squared = mi**2
    theta = squared.max(axis=1)
    informative = theta > 0
    delta = (squared.sum(axis=1) - theta) / np.where(informative, theta * (mi.shape[1] - 1), 1.0)
    return float(np.mean(np.where(informative, 1.0 - delta, 0.0)))


def modularity(codes, factors, *, num_bins: int = 20) -> float:
    """Modularity of a representation (Ridgeway & Mozer 2018).

    disentanglement_lib's ``modularity_explicitness.py`` (key
    ``modularity_score``): the mutual-information matrix of
    :func:`decompvae.metrics.mutual_information_matrix` (``num_bins``
    equal-width histogram bins, 20 by default) fed to
    :func:`modularity_from_mutual_info`. Factors with a single value keep
    their zero column, as in disentanglement_lib.

    Args:
      codes: ``[N, D]`` representation.
      factors: ``[N, K]`` integer factor classes, K ≥ 2.
      num_bins: histogram bins per latent dimension.

    Returns:
      Modularity in [0, 1].
    """
    factors = as_factors("factors", factors, min_factors=2)
    return modularity_from_mutual_info(mutual_information_matrix(codes, factors, num_bins=num_bins))


# ------------------------------------------------------------ explicitness


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale by the training mean/std; a zero std is replaced by 1."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def _macro_auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Macro one-vs-rest ROC-AUC over the classes with both labels present."""
    indicator = (y[:, None] == classes[None, :]).astype(np.int64)  # [N, C]
    positives = indicator.sum(axis=0)
    defined = (positives > 0) & (positives < len(y))
    if not np.any(defined):
        raise ValueError("factors: a split holds a single class of a factor; ROC-AUC is undefined")
    return float(np.mean([roc_auc_score(indicator[:, c], proba[:, c]) for c in np.flatnonzero(defined)]))


def explicitness(codes_train, factors_train, codes_test, factors_test, *, max_iter: int = 1000) -> dict:
    """Explicitness of a representation (Ridgeway & Mozer 2018).

    disentanglement_lib's ``modularity_explicitness.py``: codes are
    standardised with the training mean and standard deviation (ddof 0; a
    collapsed dimension, std 0, is divided by 1 instead of giving NaN), one
    L2-regularised logistic regression per factor predicts its class from all
    codes, and the score is the macro one-vs-rest ROC-AUC of the predicted
    class probabilities, averaged over factors (disentanglement_lib's
    defaults: 10,000 train and 5,000 test points).

    The classifier is ``LogisticRegression(C=1, solver="lbfgs",
    max_iter=max_iter)`` (multinomial for more than two classes), fixed here
    rather than left to scikit-learn defaults, which changed since
    disentanglement_lib; ``max_iter`` is raised from 100 to 1000 because lbfgs
    often stops short of the optimum at 100 on 10,000 points (scikit-learn then
    warns). Classes missing from a split are left out of that split's macro
    average; factors with one class in training are left out.

    Args:
      codes_train: ``[N, D]`` representation of the training points.
      factors_train: ``[N, K]`` integer factor classes.
      codes_test: ``[M, D]``.
      factors_test: ``[M, K]``.
      max_iter: lbfgs iterations.

    Returns:
      ``{"explicitness_train", "explicitness_test"}``: mean ROC-AUC in [0, 1]
      (0.5 = chance).
    """
    codes_train, factors_train, codes_test, factors_test = _train_test(
        codes_train, factors_train, codes_test, factors_test
    )
    check_dim("max_iter", max_iter)
    x_train, x_test = _standardise(codes_train.astype(np.float64), codes_test.astype(np.float64))
    train, test = [], []
    for k in _used_factors(factors_train):
        model = LogisticRegression(C=1.0, solver="lbfgs", max_iter=max_iter, tol=1e-4)
        model.fit(x_train, factors_train[:, k])
        train.append(_macro_auc(factors_train[:, k], model.predict_proba(x_train), model.classes_))
        test.append(_macro_auc(factors_test[:, k], model.predict_proba(x_test), model.classes_))
    return {"explicitness_train": float(np.mean(train)), "explicitness_test": float(np.mean(test))}


# --------------------------------------------------------------------- DCI


def dci_disentanglement(importance) -> float:
    """DCI disentanglement of an importance matrix ``[D, K]``.

    Eastwood & Williams (2018), "A Framework for the Quantitative Evaluation
    of Disentangled Representations", §2, as disentanglement_lib's
    ``dci.disentanglement``: per code d, D_d = 1 − H_K(P_d·) with
    P_dk = R_dk / Σ_k R_dk (entropy in base K, 10⁻¹¹ added to every entry as
    there, so an all-zero row counts as uniform); the score is Σ_d ρ_d D_d with
    ρ_d = Σ_k R_dk / Σ R (uniform weights if R is all zero).

    Args:
      importance: ``[D, K]`` non-negative importances, K ≥ 2.

    Returns:
      Disentanglement in [0, 1].
    """
    r = _importance(importance)
    if r.shape[1] < 2:
        raise ValueError(f"importance needs K >= 2 factor columns; got shape {r.shape}")
    return _weighted_specificity(r, axis=1)  # per code d, over factors


def dci_completeness(importance) -> float:
    """DCI completeness of an importance matrix ``[D, K]``.

    Eastwood & Williams (2018), §2, as disentanglement_lib's
    ``dci.completeness``: per factor k, C_k = 1 − H_D(P̃_·k) with
    P̃_dk = R_dk / Σ_d R_dk (base D, 10⁻¹¹ added as there); the score is
    Σ_k ρ_k C_k with ρ_k = Σ_d R_dk / Σ R (uniform if R is all zero).

    Args:
      importance: ``[D, K]`` non-negative importances, D ≥ 2.

    Returns:
      Completeness in [0, 1].
    """
    r = _importance(importance)
    if r.shape[0] < 2:
        raise ValueError(f"importance needs D >= 2 code rows; got shape {r.shape}")
    return _weighted_specificity(r, axis=0)  # per factor k, over codes


def _weighted_specificity(r: np.ndarray, axis: int) -> float:
    """Σ_i ρ_i (1 − H(P_i)) with P_i the rows (axis=1) or columns (axis=0) of R normalised.

    Entropy in base ``r.shape[axis]`` with 10⁻¹¹ added to every entry (as
    disentanglement_lib); ρ_i = mass of slice i / Σ R, uniform if R is all zero.
    """
    specificity = 1.0 - scipy.stats.entropy(r + 1e-11, base=r.shape[axis], axis=axis)
    weights = r if r.sum() > 0 else np.ones_like(r)
    return float(np.sum(specificity * weights.sum(axis=axis) / weights.sum()))


def _importance(importance) -> np.ndarray:
    r = np.asarray(importance, dtype=np.float64)
    if r.ndim != 2 or 0 in r.shape:
        raise ValueError(f"importance must have shape [D, K]; got shape {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("importance must be finite and non-negative")
    return r


def _gbt_one_factor(x_train, y_train, x_test, y_test, random_state):
    # GradientBoostingClassifier's defaults, written out so that they are pinned.
    model = GradientBoostingClassifier(
        loss="log_loss",
        learning_rate=0.1,
        n_estimators=100,
        subsample=1.0,
        criterion="friedman_mse",
        min_samples_split=2,
        min_samples_leaf=1,
        max_depth=3,
        max_features=None,
        random_state=random_state,
    )
    model.fit(x_train, y_train)
    return (
        np.abs(model.feature_importances_),
        float(np.mean(model.predict(x_train) == y_train)),
        float(np.mean(model.predict(x_test) == y_test)),
    )


def gbt_importance(codes_train, factors_train, codes_test, factors_test, *, random_state: int = 0, n_jobs=None):
    """Gradient-boosted-tree importances and accuracies, one model per factor.

    disentanglement_lib's ``compute_importance_gbt``: for each factor a
    ``GradientBoostingClassifier`` with scikit-learn's defaults (100 depth-3
    trees per class, learning rate 0.1, log-loss, Friedman MSE) is fitted on
    all codes; the factor's column of R is the model's impurity-based
    ``feature_importances_``.

    Cost: one tree per class per boosting stage, so 100 · Σ_k n_k trees on N
    points (≈ 11,300 trees for dSprites' 3+6+40+32+32 classes; about five
    minutes on one CPU core for N = 10,000, see ``benchmarks/metrics_suite.py``).
    ``HistGradientBoostingClassifier`` would be far faster but has no impurity
    importances, and permutation importances are a different definition, so
    the exact estimator is kept; ``n_jobs`` fits the factors in parallel
    (joblib) instead. ``random_state`` fixes the tree builder's tie-breaking
    between equally good splits (disentanglement_lib leaves it unseeded).

    Args:
      codes_train: ``[N, D]``; factors_train: ``[N, K]`` integer classes.
      codes_test: ``[M, D]``; factors_test: ``[M, K]``.
      random_state: seed of the trees' feature permutation.
      n_jobs: joblib workers over factors (None: one).

    Returns:
      ``(importance [D, K'], train_accuracy [K'], test_accuracy [K'], used)``
      where ``used`` are the indices of the K' factors with more than one
      class in training (the others cannot be fitted).
    """
    codes_train, factors_train, codes_test, factors_test = _train_test(
        codes_train, factors_train, codes_test, factors_test
    )
    used = _used_factors(factors_train)
    results = Parallel(n_jobs=n_jobs)(
        delayed(_gbt_one_factor)(codes_train, factors_train[:, k], codes_test, factors_test[:, k], random_state)
        for k in used
    )
    importance = np.stack([r[0] for r in results], axis=1)
    return (
        importance,
        np.array([r[1] for r in results]),
        np.array([r[2] for r in results]),
        used,
    )


def dci(codes_train, factors_train, codes_test, factors_test, *, random_state: int = 0, n_jobs=None) -> dict:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    disentanglement_lib's ``dci.py`` (defaults: 10,000 train and 5,000 test
    points): importances R ``[D, K]`` from gradient-boosted trees
    (:func:`gbt_importance`), then :func:`dci_disentanglement` and
    :func:`dci_completeness`. *Informativeness* is, as in
    disentanglement_lib, the mean over factors of the trees' classification
    **accuracy** (higher is better) on the training and on the test points
    (Eastwood & Williams report a prediction error instead).

    Cost: see :func:`gbt_importance` (minutes for dSprites-sized factors;
    ``n_jobs`` parallelises over factors).

    Args:
      codes_train: ``[N, D]`` representation, D ≥ 2.
      factors_train: ``[N, K]`` integer factor classes (K ≥ 2 informative).
      codes_test: ``[M, D]``.
      factors_test: ``[M, K]``.
      random_state: seed of the trees' tie-breaking.
      n_jobs: joblib workers over factors.

    Returns:
      ``{"disentanglement", "completeness", "informativeness_train",
      "informativeness_test"}``.
    """
    codes_train, factors_train, codes_test, factors_test = _train_test(
        codes_train, factors_train, codes_test, factors_test, min_dims=2
    )
    if np.count_nonzero(informative_factors(factors_train)) < 2:
        raise ValueError("factors_train: DCI needs at least 2 factors with more than one class")
    importance, train_acc, test_acc, _ = gbt_importance(
        codes_train, factors_train, codes_test, factors_test, random_state=random_state, n_jobs=n_jobs
    )
    return {
        "disentanglement": dci_disentanglement(importance),
        "completeness": dci_completeness(importance),
        "informativeness_train": float(np.mean(train_acc)),
        "informativeness_test": float(np.mean(test_acc)),
    }


# --------------------------------------------------------------------- SAP


def _sap_one_pair(x_train, y_train, x_test, y_test, c):
    model = LinearSVC(
        C=c,
        class_weight="balanced",
        penalty="l2",
        loss="squared_hinge",
        dual=False,
        tol=1e-4,
        fit_intercept=True,
        intercept_scaling=1.0,
        max_iter=1000,
    )
    model.fit(x_train[:, None], y_train)
    return float(np.mean(model.predict(x_test[:, None]) == y_test))


def sap_score_matrix(codes_train, factors_train, codes_test, factors_test, *, C: float = 0.01, n_jobs=None):
    """SAP score matrix for discrete factors: ``[D, K']`` test accuracies.

    Entry (d, k) is the test accuracy of a linear SVM that predicts factor k
    from latent dimension d alone: disentanglement_lib's
    ``sap_score._compute_score_matrix`` with ``continuous_factors=False``,
    ``LinearSVC(C=0.01, class_weight="balanced")`` (squared hinge, L2,
    one-vs-rest). It is solved in the primal (``dual=False``): the same
    optimisation problem as liblinear's dual that disentanglement_lib ran,
    about twice as fast for one feature and many points.

    Args:
      codes_train: ``[N, D]``; factors_train: ``[N, K]`` integer classes.
      codes_test: ``[M, D]``; factors_test: ``[M, K]``.
      C: the SVM's inverse regularisation strength.
      n_jobs: joblib workers over (dimension, factor) pairs.

    Returns:
      ``(matrix [D, K'], used)``: ``used`` indexes the K' factors with more
      than one class in training (the others are left out).
    """
    codes_train, factors_train, codes_test, factors_test = _train_test(
        codes_train, factors_train, codes_test, factors_test
    )
    if not C > 0:
        raise ValueError(f"C must be > 0; got {C!r}")
    used = _used_factors(factors_train)
    dims = codes_train.shape[1]
    pairs = [(d, k) for d in range(dims) for k in used]
    accuracies = Parallel(n_jobs=n_jobs)(
        delayed(_sap_one_pair)(codes_train[:, d], factors_train[:, k], codes_test[:, d], factors_test[:, k], C)
        for d, k in pairs
    )
    return np.array(accuracies).reshape(dims, len(used)), used


def sap_from_score_matrix(score_matrix) -> float:
    """SAP from a score matrix ``[D, K]``: mean over k of the top-two gap over d.

    Kumar, Sattigeri & Balakrishnan (2018), "Variational Inference of
    Disentangled Latent Concepts from Unlabeled Observations", §3; as
    disentanglement_lib's ``_compute_avg_diff_top_two``.
    """
    s = np.asarray(score_matrix, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] < 2 or s.shape[1] < 1:
        raise ValueError(f"score_matrix must have shape [D, K] with D >= 2; got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("score_matrix must be finite")
    top_two = -np.sort(-s, axis=0)[:2]
    return float(np.mean(top_two[0] - top_two[1]))


def sap(codes_train, factors_train, codes_test, factors_test, *, C: float = 0.01, n_jobs=None) -> float:
    """Separated Attribute Predictability (Kumar et al. 2018), discrete factors.

    disentanglement_lib's ``sap_score.py`` with ``continuous_factors=False``
    (its study configuration; 10,000 train and 5,000 test points): the
    :func:`sap_score_matrix` of single-dimension linear-SVM test accuracies
    (C = 0.01, balanced class weights), then for each factor the gap between
    the best and second-best dimension, averaged over factors
    (:func:`sap_from_score_matrix`).

    Args:
      codes_train: ``[N, D]`` representation, D ≥ 2.
      factors_train: ``[N, K]`` integer factor classes.
      codes_test: ``[M, D]``.
      factors_test: ``[M, K]``.
      C: the SVM's inverse regularisation strength.
      n_jobs: joblib workers over (dimension, factor) pairs.

    Returns:
      SAP in [0, 1].
    """
    matrix, _ = sap_score_matrix(
        as_codes("codes_train", codes_train, min_dims=2), factors_train, codes_test, factors_test, C=C, n_jobs=n_jobs
    )
    return sap_from_score_matrix(matrix)
