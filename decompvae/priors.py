"""Priors p(z) over R^D as distrax distributions (SPEC §4).

Every constructor returns a distribution with event shape ``(D,)`` whose
numeric parameters may be traced JAX values, so one compiled program can vmap
over a grid of prior scales, degrees of freedom, sparsity weights, … . The
validation below runs only on concrete (non-traced) values: it raises a
``ValueError`` naming the parameter before tracing, and is skipped inside
``jit``/``vmap`` where the value is unknown.

References: Mathieu, Rainforth, Siddharth & Teh, "Disentangling
Disentanglement in Variational Autoencoders", ICML 2019, §4 and App. B.
"""

from __future__ import annotations

from typing import Callable

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from decompvae._checks import (
    check_dim,
    check_finite_concrete,
    check_in_range,
    check_positive,
)

Array = jax.Array

__all__ = [
    "StudentT",
    "anisotropic_gaussian",
    "anisotropic_gaussian_from_logits",
    "gaussian_mixture",
    "isotropic_gaussian",
    "laplace",
    "make_prior",
    "pca_variances",
    "pinwheel_mixture",
    "sparse",
    "student_t",
]


def isotropic_gaussian(dim: int, scale=1.0) -> distrax.MultivariateNormalDiag:
    """The isotropic Gaussian prior N(0, s·I).

    Args:
      dim: D, the latent dimension (static).
      scale: s > 0, the per-dimension *variance* (SPEC §4: N(0, s·I)); a
        scalar, possibly traced.

    Returns:
      A ``MultivariateNormalDiag`` with event shape ``(D,)``.
    """
    check_dim("dim", dim)
    check_positive("scale", scale)
    scale = jnp.asarray(scale)
    std = jnp.sqrt(scale) * jnp.ones((dim,), dtype=jnp.result_type(scale, float))
    return distrax.MultivariateNormalDiag(jnp.zeros_like(std), std)


def anisotropic_gaussian(variances) -> distrax.MultivariateNormalDiag:
    """The axis-aligned anisotropic Gaussian prior N(0, diag v).

    Breaks the rotation invariance of Theorem 2 when the ``v_d`` are distinct.

    Args:
      variances: v, shape ``[D]``, all > 0.

    Returns:
      A ``MultivariateNormalDiag`` with event shape ``(D,)``.
    """
    variances = jnp.asarray(variances)
    if variances.ndim != 1:
        raise ValueError(f"variances must have shape [D]; got shape {variances.shape}")
    check_positive("variances", variances)
    return distrax.MultivariateNormalDiag(jnp.zeros_like(variances), jnp.sqrt(variances))


def anisotropic_gaussian_from_logits(logits, total_scale=1.0) -> distrax.MultivariateNormalDiag:
    """Anisotropic Gaussian with variances v_d = s·D·softmax(ℓ)_d (learnable ℓ).

    The total variance Σ_d v_d = s·D is fixed, so learning ℓ only redistributes
    variance between dimensions (the paper's learned anisotropic prior).

    Args:
      logits: ℓ, shape ``[D]``; traced or learnable.
      total_scale: s > 0; the mean per-dimension variance.

    Returns:
      A ``MultivariateNormalDiag`` with event shape ``(D,)``.
    """
    logits = jnp.asarray(logits)
    if logits.ndim != 1:
        raise ValueError(f"logits must have shape [D]; got shape {logits.shape}")
    check_finite_concrete("logits", logits)
    check_positive("total_scale", total_scale)
    dim = logits.shape[0]
    variances = total_scale * dim * jax.nn.softmax(logits)
    return distrax.MultivariateNormalDiag(jnp.zeros_like(variances), jnp.sqrt(variances))


def pca_variances(data, dim: int) -> np.ndarray:
    """Top-D eigenvalues of the *centred* data covariance, in descending order.

    The published code takes the wrong end of scipy's ascending ``svds`` output
    and never centres the data (SPEC §9); this does neither.

    Args:
      data: shape ``[N, ...]``; flattened to ``[N, P]``.
      dim: D ≤ min(N - 1, P), the number of variances returned.

    Returns:
      float64 array ``[D]`` of covariance eigenvalues (ddof=1), descending.
    """
    check_dim("dim", dim)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim < 2:
        raise ValueError(f"data must have shape [N, ...] with N ≥ 2; got shape {data.shape}")
    data = data.reshape(data.shape[0], -1)
    n, p = data.shape
    if dim > min(n - 1, p):
        raise ValueError(f"dim must be ≤ min(N - 1, P) = {min(n - 1, p)}; got {dim}")
    centred = data - data.mean(axis=0)
    # Singular values of the centred data give the covariance spectrum without
    # forming the P×P covariance; numpy returns them in descending order.
    singular = np.linalg.svd(centred, compute_uv=False)
    return singular[:dim] ** 2 / (n - 1)


class StudentT(distrax.Distribution):
    """Product of independent Student-t distributions over R^D.

    p(z) = Π_d StudentT(z_d; ν, loc_d, scale_d). Sampling uses ``jax.random.t``
    (reparameterised: z = loc + scale·t), which is warning-free in float32
    unlike TFP's gamma-based sampler. ν may be traced.
    """

    equiv_tfp_cls = None

    def __init__(self, df, loc, scale):
        super().__init__()
        self._loc = jnp.asarray(loc)
        self._scale = jnp.broadcast_to(jnp.asarray(scale), self._loc.shape)
        self._df = jnp.asarray(df)

    @property
    def df(self) -> Array:
        return self._df

    @property
    def loc(self) -> Array:
        return self._loc

    @property
    def scale(self) -> Array:
        return self._scale

    @property
    def event_shape(self):
        return self._loc.shape[-1:]

    @property
    def batch_shape(self):
        return self._loc.shape[:-1]

    def _sample_n(self, key, n):
        shape = (n,) + self._loc.shape
        t = jax.random.t(key, self._df, shape, dtype=self._loc.dtype)
        return self._loc + self._scale * t

    def log_prob(self, value):
        marginals = jax.scipy.stats.t.logpdf(value, self._df, self._loc, self._scale)
        return jnp.sum(marginals, axis=-1)

    def marginal_log_prob(self, value):
        """Per-dimension log-densities ``[..., D]``."""
        return jax.scipy.stats.t.logpdf(value, self._df, self._loc, self._scale)

    def mean(self):
        return jnp.where(self._df > 1, self._loc, jnp.nan)

    def variance(self):
        var = self._scale**2 * self._df / (self._df - 2)
        return jnp.where(self._df > 2, var, jnp.where(self._df > 1, jnp.inf, jnp.nan))

    def __getitem__(self, index):
        index = distrax.utils.normalize_index(index)
        return StudentT(self._df, self._loc[index], self._scale[index])


def student_t(dim: int, df, scale=1.0) -> StudentT:
    """Heavy-tailed prior Π_d StudentT(z_d; ν, 0, scale) (SPEC §4).

    Args:
      dim: D (static).
      df: ν > 0, degrees of freedom; the paper sweeps {2, 5, 9, 12, 9999}
        (9999 ≈ Gaussian). May be traced.
      scale: the Student-t scale > 0 (a standard deviation for ν → ∞).

    Returns:
      A :class:`StudentT` with event shape ``(D,)``.
    """
    check_dim("dim", dim)
    check_positive("df", df)
    check_positive("scale", scale)
    dtype = jnp.result_type(jnp.asarray(scale), float)
    return StudentT(df, jnp.zeros((dim,), dtype), scale)


def sparse(dim: int, gamma, spike_scale=0.05, slab_scale=1.0) -> distrax.Independent:
    """Spike-and-slab-like sparse prior Π_d [γ·N(0, spike²) + (1−γ)·N(0, slab²)].

    With γ = 0 it equals N(0, slab²·I) exactly. (SPEC §4; the paper uses
    γ = 0.8, spike 0.05, slab 1.)

    Args:
      dim: D (static).
      gamma: γ ∈ [0, 1], the weight of the narrow "spike" component; traced ok.
      spike_scale: standard deviation of the spike (> 0).
      slab_scale: standard deviation of the slab (> 0).

    Returns:
      A ``distrax.Independent`` over a per-dimension two-component mixture,
      event shape ``(D,)``.
    """
    check_dim("dim", dim)
    check_in_range("gamma", gamma, 0.0, 1.0)
    check_positive("spike_scale", spike_scale)
    check_positive("slab_scale", slab_scale)
    gamma = jnp.asarray(gamma)
    dtype = jnp.result_type(gamma, jnp.asarray(spike_scale), jnp.asarray(slab_scale), float)
    probs = jnp.stack([gamma, 1.0 - gamma]).astype(dtype)
    probs = jnp.broadcast_to(probs, (dim, 2))
    scales = jnp.broadcast_to(jnp.stack([jnp.asarray(spike_scale), jnp.asarray(slab_scale)]).astype(dtype), (dim, 2))
    mixture = distrax.MixtureSameFamily(
        mixture_distribution=distrax.Categorical(probs=probs),
        components_distribution=distrax.Normal(jnp.zeros_like(scales), scales),
    )
    return distrax.Independent(mixture, reinterpreted_batch_ndims=1)


def gaussian_mixture(means, variances, weights=None) -> distrax.MixtureSameFamily:
    """Gaussian mixture prior Σ_c π_c N(z; m_c, diag v_c).

    Args:
      means: m, shape ``[C, D]``.
      variances: v, shape ``[C, D]``, ``[C]`` (isotropic per component) or a
        scalar; all > 0.
      weights: π, shape ``[C]``, non-negative, summing to 1; uniform if None.

    Returns:
      A ``MixtureSameFamily`` of ``MultivariateNormalDiag`` components, event
      shape ``(D,)``.
    """
    means = jnp.asarray(means)
    if means.ndim != 2:
        raise ValueError(f"means must have shape [C, D]; got shape {means.shape}")
    num_components, dim = means.shape
    variances = jnp.asarray(variances, dtype=jnp.result_type(means, float))
    check_positive("variances", variances)
    if variances.ndim == 1:
        if variances.shape[0] != num_components:
            raise ValueError(
                f"variances of shape [C] must have C = {num_components} (from means); got {variances.shape}"
            )
        variances = variances[:, None]
    elif variances.ndim == 2 and variances.shape != (num_components, dim):
        raise ValueError(f"variances must have shape [C, D] = {(num_components, dim)}; got {variances.shape}")
    elif variances.ndim > 2:
        raise ValueError(f"variances must be a scalar, [C] or [C, D]; got shape {variances.shape}")
    std = jnp.broadcast_to(jnp.sqrt(variances), means.shape)
    if weights is None:
        weights = jnp.full((num_components,), 1.0 / num_components, dtype=means.dtype)
    weights = jnp.asarray(weights)
    if weights.shape != (num_components,):
        raise ValueError(f"weights must have shape [C] = ({num_components},); got {weights.shape}")
    check_in_range("weights", weights, 0.0, 1.0)
    if not isinstance(weights, jax.core.Tracer) and not np.isclose(float(np.sum(weights)), 1.0, atol=1e-5):
        raise ValueError(f"weights must sum to 1; got sum {float(np.sum(weights))}")
    return distrax.MixtureSameFamily(
        mixture_distribution=distrax.Categorical(probs=weights),
        components_distribution=distrax.MultivariateNormalDiag(means, std),
    )


def pinwheel_mixture(variance=0.03) -> distrax.MixtureSameFamily:
    """The paper's pinwheel prior: 4 equal components at (0,±1), (±1,0), D = 2.

    Args:
      variance: per-dimension variance of each component (paper: 0.03).
    """
    means = jnp.array([[0.0, -1.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    return gaussian_mixture(means, variance * jnp.ones((4,)))


def laplace(dim: int, scale=1.0) -> distrax.Independent:
    """Laplace prior Π_d Laplace(z_d; 0, b).

    Args:
      dim: D (static).
      scale: b > 0; traced ok.

    Returns:
      A ``distrax.Independent(distrax.Laplace)`` with event shape ``(D,)``.
    """
    check_dim("dim", dim)
    check_positive("scale", scale)
    scale = jnp.asarray(scale)
    b = scale * jnp.ones((dim,), dtype=jnp.result_type(scale, float))
    return distrax.Independent(distrax.Laplace(jnp.zeros_like(b), b), reinterpreted_batch_ndims=1)


FAMILIES = (
    "isotropic",
    "anisotropic",
    "anisotropic_logits",
    "student_t",
    "sparse",
    "laplace",
    "mixture",
    "pinwheel",
)


def make_prior(family: str, dim: int) -> Callable[..., distrax.Distribution]:
    """A prior constructor with the structure (family, D) closed over.

    The returned function takes only the numeric parameters as keywords, so
    the objective can build the prior from a (traced) hyperparameter dict:

    ====================  ===========================================
    family                numeric parameters
    ====================  ===========================================
    ``isotropic``         ``scale`` (variance s)
    ``anisotropic``       ``variances`` [D]
    ``anisotropic_logits`` ``logits`` [D], ``total_scale``
    ``student_t``         ``df``, ``scale``
    ``sparse``            ``gamma``, ``spike_scale``, ``slab_scale``
    ``laplace``           ``scale``
    ``mixture``           ``means`` [C, D], ``variances``, ``weights``
    ``pinwheel``          ``variance`` (D must be 2)
    ====================  ===========================================

    Args:
      family: one of the names above.
      dim: D.

    Returns:
      ``prior_fn(**params) -> distrax.Distribution`` with event shape (D,).
    """
    check_dim("dim", dim)
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}; got {family!r}")

    def with_dim(params_dim: int, fn):
        if params_dim != dim:
            raise ValueError(f"prior parameters have dimension {params_dim} but dim = {dim}")
        return fn

    if family == "isotropic":
        return lambda scale=1.0: isotropic_gaussian(dim, scale)
    if family == "student_t":
        return lambda df, scale=1.0: student_t(dim, df, scale)
    if family == "sparse":
        return lambda gamma, spike_scale=0.05, slab_scale=1.0: sparse(dim, gamma, spike_scale, slab_scale)
    if family == "laplace":
        return lambda scale=1.0: laplace(dim, scale)
    if family == "anisotropic":
        return lambda variances: with_dim(jnp.shape(variances)[-1], anisotropic_gaussian)(variances)
    if family == "anisotropic_logits":
        return lambda logits, total_scale=1.0: with_dim(jnp.shape(logits)[-1], anisotropic_gaussian_from_logits)(
            logits, total_scale
        )
    if family == "mixture":
        return lambda means, variances, weights=None: with_dim(jnp.shape(means)[-1], gaussian_mixture)(
            means, variances, weights
        )
    if dim != 2:
        raise ValueError(f"the pinwheel prior is 2-D; got dim = {dim}")
    return lambda variance=0.03: pinwheel_mixture(variance)
