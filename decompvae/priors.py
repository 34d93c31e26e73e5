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

from typing import Callable, NamedTuple

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from decompvae._checks import (
    check_choice,
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
    "PRIORS",
    "PriorSpec",
    "laplace_prior",
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


def laplace_prior(dim: int, scale=1.0) -> distrax.Independent:
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


class PriorSpec(NamedTuple):
    """A registered prior: how to build it and which numbers it needs.

    Attributes:
      make: ``make(dim) -> prior_fn(**params)`` with the structure closed over.
      required: parameters without a default (a config must give them in
        ``model.prior_params`` or sweep them).
      logits: for the anisotropic Gaussian on logits, where ℓ comes from:
        ``"pca"`` (fixed to the log of the data's top-D PCA variances) or
        ``"learned"`` (trained with the networks, ``params["prior"]``); None
        for the other priors.
      dim: the one latent dimension the prior has, or None for any D.
    """

    make: Callable[[int], Callable[..., distrax.Distribution]]
    required: tuple[str, ...] = ()
    logits: str | None = None
    dim: int | None = None


def _with_dim(dim: int, params_dim: int):
    if params_dim != dim:
        raise ValueError(f"prior parameters have dimension {params_dim} but dim = {dim}")


def _isotropic(dim):
    return lambda scale=1.0: isotropic_gaussian(dim, scale)


def _anisotropic(dim):
    def prior_fn(variances):
        _with_dim(dim, jnp.shape(variances)[-1])
        return anisotropic_gaussian(variances)

    return prior_fn


def _anisotropic_logits(dim):
    def prior_fn(logits, total_scale=1.0):
        _with_dim(dim, jnp.shape(logits)[-1])
        return anisotropic_gaussian_from_logits(logits, total_scale)

    return prior_fn


def _mixture(dim):
    def prior_fn(means, variances, weights=None):
        _with_dim(dim, jnp.shape(means)[-1])
        return gaussian_mixture(means, variances, weights)

    return prior_fn


#: Prior name → :class:`PriorSpec`: the one list of priors (``model.prior``).
#:
#: ======================= ===========================================
#: name                    numeric parameters
#: ======================= ===========================================
#: ``isotropic``           ``scale`` (variance s)
#: ``anisotropic``         ``variances`` [D]
#: ``anisotropic_logits``  ``logits`` [D], ``total_scale``
#: ``anisotropic_pca``     as ``anisotropic_logits``, ℓ fixed from the data's PCA
#: ``anisotropic_learned`` as ``anisotropic_logits``, ℓ learned
#: ``student_t``           ``df``, ``scale``
#: ``sparse``              ``gamma``, ``spike_scale``, ``slab_scale``
#: ``laplace``             ``scale``
#: ``mixture``             ``means`` [C, D], ``variances``, ``weights``
#: ``pinwheel``            ``variance`` (D = 2)
#: ======================= ===========================================
PRIORS: dict[str, PriorSpec] = {
    "isotropic": PriorSpec(_isotropic),
    "anisotropic": PriorSpec(_anisotropic, required=("variances",)),
    "anisotropic_logits": PriorSpec(_anisotropic_logits, required=("logits",)),
    "anisotropic_pca": PriorSpec(_anisotropic_logits, logits="pca"),
    "anisotropic_learned": PriorSpec(_anisotropic_logits, logits="learned"),
    "student_t": PriorSpec(lambda dim: lambda df, scale=1.0: student_t(dim, df, scale), required=("df",)),
    "sparse": PriorSpec(
        lambda dim: lambda gamma, spike_scale=0.05, slab_scale=1.0: sparse(dim, gamma, spike_scale, slab_scale),
        required=("gamma",),
    ),
    "laplace": PriorSpec(lambda dim: lambda scale=1.0: laplace_prior(dim, scale)),
    "mixture": PriorSpec(_mixture, required=("means", "variances")),
    "pinwheel": PriorSpec(lambda dim: lambda variance=0.03: pinwheel_mixture(variance), dim=2),
}


def make_prior(name: str, dim: int) -> Callable[..., distrax.Distribution]:
    """A prior constructor with the structure (name, D) closed over.

    The returned function takes only the numeric parameters as keywords (see
    :data:`PRIORS`), so the objective can build the prior from a (traced)
    hyperparameter dict.

    Args:
      name: a key of :data:`PRIORS`.
      dim: D.

    Returns:
      ``prior_fn(**params) -> distrax.Distribution`` with event shape (D,).
    """
    check_dim("dim", dim)
    check_choice("prior", name, tuple(PRIORS))
    spec = PRIORS[name]
    if spec.dim is not None and dim != spec.dim:
        raise ValueError(f"the {name} prior is {spec.dim}-D; got dim = {dim}")
    return spec.make(dim)
