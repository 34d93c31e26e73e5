"""Priors p(z) over R^D as distrax distributions (Mathieu et al., 2019; docs/guide.md, priors).

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

import functools
import warnings
from typing import Callable, Mapping, NamedTuple

import distrax
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln

from decompvae._checks import (
    check_block_sizes,
    check_blocks,
    check_choice,
    check_dim,
    check_finite_concrete,
    check_in_range,
    check_positive,
    is_concrete,
    renamed,
)

Array = jax.Array

__all__ = [
    "BlockProduct",
    "HierarchicalGaussian",
    "SphericalStudentT",
    "StudentT",
    "block_scale_mixture",
    "block_student_t",
    "hierarchical",
    "anisotropic",
    "anisotropic_logits",
    "mixture",
    "isotropic",
    "PRIORS",
    "PriorSpec",
    "laplace",
    "make_prior",
    "pca_variances",
    "pinwheel",
    "sparse",
    "student_t",
]


def isotropic(dim: int, *, scale=1.0) -> distrax.MultivariateNormalDiag:
    """The isotropic Gaussian prior N(0, s·I).

    Args:
      dim: D, the latent dimension (static).
      scale: s > 0, the per-dimension *variance* (N(0, s·I), as the paper writes it); a
        scalar, possibly traced.

    Returns:
      A ``MultivariateNormalDiag`` with event shape ``(D,)``.
    """
    check_dim("dim", dim)
    check_positive("scale", scale)
    scale = jnp.asarray(scale)
    std = jnp.sqrt(scale) * jnp.ones((dim,), dtype=jnp.result_type(scale, float))
    return distrax.MultivariateNormalDiag(jnp.zeros_like(std), std)


def anisotropic(*, variances) -> distrax.MultivariateNormalDiag:
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


def anisotropic_logits(*, logits, total_scale=1.0) -> distrax.MultivariateNormalDiag:
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
    and never centres the data; this does neither (docs/guide.md, notes on the
    paper and its published code).

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


def student_t(dim: int, *, df, scale=1.0) -> StudentT:
    """Heavy-tailed prior Π_d StudentT(z_d; ν, 0, scale) (Mathieu et al., 2019).

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


def sparse(dim: int, *, gamma, spike_scale=0.05, slab_scale=1.0) -> distrax.Independent:
    """Spike-and-slab-like sparse prior Π_d [γ·N(0, spike²) + (1−γ)·N(0, slab²)].

    With γ = 0 it equals N(0, slab²·I) exactly. (the paper uses
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


def mixture(*, means, variances, weights=None) -> distrax.MixtureSameFamily:
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


def pinwheel(*, variance=0.03) -> distrax.MixtureSameFamily:
    """The paper's pinwheel prior: 4 equal components at (0,±1), (±1,0), D = 2.

    Args:
      variance: per-dimension variance of each component (paper: 0.03).
    """
    means = jnp.array([[0.0, -1.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    return mixture(means=means, variances=variance * jnp.ones((4,)))


def laplace(dim: int, *, scale=1.0) -> distrax.Independent:
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


# -- Structured priors (beyond the paper): independent subspaces and a hierarchy ---------------


class BlockProduct(distrax.Distribution):
    """A product over contiguous blocks of the latent vector: p(z) = Π_g p_g(z_g).

    z = (z_1, …, z_G) with z_g the next ``k_g`` coordinates; the partition
    (the block sizes) is static, the components' parameters may be traced.
    With components that are rotation invariant on their block (spherical),
    p is invariant to block-diagonal rotations blockdiag(R_1, …, R_G) and to
    permutations of equally-sized, equally-parameterised blocks, but not to
    rotations that mix blocks (the subspace version of Mathieu et al., 2019, Theorem 2).

    Args:
      components: G distributions with event shapes ``(k_g,)`` and one batch
        shape (normally ``()``).
    """

    equiv_tfp_cls = None

    def __init__(self, components):
        super().__init__()
        self._components = tuple(components)
        self._blocks = tuple(int(c.event_shape[0]) for c in self._components)

    @property
    def components(self) -> tuple:
        return self._components

    @property
    def blocks(self) -> tuple[int, ...]:
        """The block sizes (k_1, …, k_G), static."""
        return self._blocks

    @property
    def event_shape(self):
        return (sum(self._blocks),)

    @property
    def batch_shape(self):
        return self._components[0].batch_shape

    def split(self, value: Array) -> list[Array]:
        """``[..., D]`` -> the G blocks ``[..., k_g]``."""
        edges = np.cumsum((0,) + self._blocks)
        return [value[..., a:b] for a, b in zip(edges[:-1], edges[1:])]

    def _sample_n(self, key, n):
        keys = jax.random.split(key, len(self._components))
        parts = [c.sample(seed=k, sample_shape=(n,)) for c, k in zip(self._components, keys)]
        return jnp.concatenate(parts, axis=-1)

    def log_prob(self, value):
        return sum(c.log_prob(v) for c, v in zip(self._components, self.split(value)))

    def block_log_prob(self, value) -> Array:
        """Per-block log-densities log p_g(z_g), ``[..., G]``."""
        return jnp.stack([c.log_prob(v) for c, v in zip(self._components, self.split(value))], axis=-1)

    def mean(self):
        return jnp.concatenate([c.mean() for c in self._components], axis=-1)

    def variance(self):
        return jnp.concatenate([c.variance() for c in self._components], axis=-1)


class SphericalStudentT(distrax.Distribution):
    """The multivariate Student-t t_ν(0, σ²·I_k) on R^k (one block of :func:`block_student_t`).

        log p(z) = log Γ((ν+k)/2) − log Γ(ν/2) − (k/2)·log(νπ) − k·log σ
                   − ((ν+k)/2)·log(1 + ‖z‖²/(ν·σ²))

    It depends on ‖z‖ only (rotation invariant on R^k); its coordinates are
    uncorrelated but dependent (they share one scale draw), unlike the
    product of 1-D Student-t's of :class:`StudentT`. Sampling is
    reparameterised: z = σ·ε·√(ν/(2g)) with ε ~ N(0, I_k), g ~ Gamma(ν/2, 1)
    (2g ~ χ²_ν); ``jax.random.gamma`` carries gradients to ν. (TFP's
    ``MultivariateStudentTLinearOperator`` has the same density but casts
    through float64 with a warning in float32.)

    Args:
      df: ν > 0, scalar (may be traced).
      scale: σ > 0, scalar (may be traced).
      dim: k, static.
    """

    equiv_tfp_cls = None

    def __init__(self, df, scale, dim: int):
        super().__init__()
        dtype = jnp.result_type(df, scale, float)
        self._df = jnp.asarray(df, dtype)
        self._scale = jnp.asarray(scale, dtype)
        self._dim = int(dim)

    @property
    def df(self) -> Array:
        return self._df

    @property
    def scale(self) -> Array:
        return self._scale

    @property
    def event_shape(self):
        return (self._dim,)

    @property
    def batch_shape(self):
        return jnp.shape(self._df)

    def _sample_n(self, key, n):
        key_normal, key_gamma = jax.random.split(key)
        eps = jax.random.normal(key_normal, (n, self._dim), self._df.dtype)  # [n, k]
        g = jax.random.gamma(key_gamma, 0.5 * self._df, (n, 1), self._df.dtype)  # [n, 1]
        return self._scale * eps * jnp.sqrt(self._df / (2.0 * g))

    def log_prob(self, value):
        nu, k = self._df, self._dim
        sq = jnp.sum(value**2, axis=-1) / self._scale**2  # [...] ‖z‖²/σ²
        log_norm = gammaln(0.5 * (nu + k)) - gammaln(0.5 * nu) - 0.5 * k * jnp.log(nu * jnp.pi)
        log_norm = log_norm - k * jnp.log(self._scale)
        return log_norm - 0.5 * (nu + k) * jnp.log1p(sq / nu)

    def mean(self):
        return jnp.where(self._df > 1, jnp.zeros(self.event_shape, self._df.dtype), jnp.nan)

    def variance(self):
        var = self._scale**2 * self._df / (self._df - 2)
        var = jnp.where(self._df > 2, var, jnp.where(self._df > 1, jnp.inf, jnp.nan))
        return jnp.broadcast_to(var, self.event_shape)


def _per_block(name: str, value, count: int, trailing: tuple[int, ...] = (), what: str = "block") -> Array:
    """A parameter given once or once per block (per child, …), as ``[count, *trailing]``."""
    value = jnp.asarray(value)
    if value.shape not in (trailing, (count, *trailing)):
        raise ValueError(f"{name} must have shape {list(trailing)} or {[count, *trailing]} (one per {what}); "
                         f"got shape {list(value.shape)}")
    return jnp.broadcast_to(value, (count, *trailing))


def block_student_t(blocks, *, df, scale=1.0) -> BlockProduct:
    """Independent subspaces with heavy tails: p(z) = Π_g t_ν_g(z_g; 0, σ_g²·I_{k_g}).

    Each block is a spherical multivariate Student-t (:class:`SphericalStudentT`);
    blocks of size 1 give the paper's product of 1-D Student-t's, one block
    of size D the fully rotation-invariant multivariate t.

    Args:
      blocks: the static block sizes (k_1, …, k_G), positive, summing to D.
      df: ν > 0, a scalar or one per block ``[G]``; may be traced.
      scale: σ > 0, a scalar or ``[G]``; may be traced.

    Returns:
      A :class:`BlockProduct` with event shape ``(D,)``.
    """
    blocks = check_block_sizes("blocks", blocks)
    check_positive("df", df)
    check_positive("scale", scale)
    dtype = jnp.result_type(jnp.asarray(df), jnp.asarray(scale), float)
    df = _per_block("df", jnp.asarray(df, dtype), len(blocks))
    scale = _per_block("scale", jnp.asarray(scale, dtype), len(blocks))
    return BlockProduct([SphericalStudentT(df[g], scale[g], k) for g, k in enumerate(blocks)])


def block_scale_mixture(blocks, *, scales=(0.05, 1.0), weights=None) -> BlockProduct:
    """Independent subspaces, each a Gaussian scale mixture: p(z) = Π_g Σ_c π_gc·N(z_g; 0, s_gc²·I_{k_g}).

    Spherical on each block; with a narrow and a wide component it is a
    *group*-sparse spike-and-slab prior (a whole block is near 0 or not), the
    block version of :func:`sparse` (the default: s = (0.05, 1), equal weights).
    The log-density is distrax's ``MixtureSameFamily`` (a logsumexp over c).

    Args:
      blocks: the static block sizes, positive, summing to D.
      scales: s > 0, the components' standard deviations, ``[C]`` or per block ``[G, C]``.
      weights: π ≥ 0 summing to 1 over c, ``[C]`` or ``[G, C]``; uniform if None.

    Returns:
      A :class:`BlockProduct` of ``MixtureSameFamily`` components, event shape ``(D,)``.
    """
    blocks = check_block_sizes("blocks", blocks)
    scales = jnp.asarray(scales)
    if scales.ndim not in (1, 2):
        raise ValueError(f"scales must have shape [C] or [G, C]; got shape {scales.shape}")
    check_positive("scales", scales)
    num = scales.shape[-1]
    dtype = jnp.result_type(scales, float) if weights is None else jnp.result_type(scales, jnp.asarray(weights), float)
    weights = jnp.full((num,), 1.0 / num, dtype) if weights is None else jnp.asarray(weights, dtype)
    check_in_range("weights", weights, 0.0, 1.0)
    if is_concrete(weights) and not np.allclose(np.sum(np.asarray(weights, np.float64), axis=-1), 1.0, atol=1e-5):
        raise ValueError(f"weights must sum to 1 over the components; got sums {np.sum(np.asarray(weights), axis=-1)}")
    scales = _per_block("scales", scales.astype(dtype), len(blocks), (num,))  # [G, C]
    weights = _per_block("weights", weights, len(blocks), (num,))  # [G, C]
    components = [
        distrax.MixtureSameFamily(
            mixture_distribution=distrax.Categorical(probs=weights[g]),
            components_distribution=distrax.MultivariateNormalDiag(
                jnp.zeros((num, k), dtype), jnp.broadcast_to(scales[g][:, None], (num, k))
            ),
        )
        for g, k in enumerate(blocks)
    ]
    return BlockProduct(components)


class HierarchicalGaussian(distrax.Distribution):
    """A two-level prior: parents z_top then children given parents (event shape (P + C,)).

        p(z) = N(z_top; 0, diag σ_p²) · N(z_low; W·z_top, diag σ(z_top)²),
        log σ(z_top) = log s + V·z_top,

    with z_top the first P coordinates and z_low the C = D − P others.
    V = 0 gives a linear-Gaussian model, z ~ N(0, Σ) with
    Σ = [[diag σ_p², diag σ_p²·Wᵀ], [W·diag σ_p², W·diag σ_p²·Wᵀ + diag s²]];
    V ≠ 0 makes the children's spread depend on the parents. Sampling is
    reparameterised: z_top = σ_p·ε₁, z_low = W·z_top + σ(z_top)·ε₂.

    Args:
      weights: W, ``[C, P]``.
      log_scale_weights: V, ``[C, P]``.
      child_scale: s > 0, ``[C]``.
      parent_scale: σ_p > 0, ``[P]``.
    """

    equiv_tfp_cls = None

    def __init__(self, weights, log_scale_weights, child_scale, parent_scale):
        super().__init__()
        self._weights = jnp.asarray(weights)
        self._log_scale_weights = jnp.asarray(log_scale_weights)
        self._child_scale = jnp.asarray(child_scale)
        self._parent_scale = jnp.asarray(parent_scale)

    @property
    def parents(self) -> int:
        """P, the number of parent (top-level) coordinates."""
        return self._weights.shape[-1]

    @property
    def event_shape(self):
        return (sum(self._weights.shape[-2:]),)

    @property
    def batch_shape(self):
        return ()

    def parent_distribution(self) -> distrax.MultivariateNormalDiag:
        """p(z_top) = N(0, diag σ_p²), event ``(P,)``."""
        return distrax.MultivariateNormalDiag(jnp.zeros_like(self._parent_scale), self._parent_scale)

    def conditional(self, z_top: Array) -> distrax.MultivariateNormalDiag:
        """p(z_low | z_top) = N(W·z_top, diag σ(z_top)²) for z_top ``[..., P]`` (batch shape ``[...]``)."""
        loc = z_top @ self._weights.T  # [..., C]
        scale = self._child_scale * jnp.exp(z_top @ self._log_scale_weights.T)  # [..., C]
        return distrax.MultivariateNormalDiag(loc, scale)

    def _sample_n(self, key, n):
        key_top, key_low = jax.random.split(key)
        z_top = self.parent_distribution().sample(seed=key_top, sample_shape=(n,))  # [n, P]
        z_low = self.conditional(z_top).sample(seed=key_low)  # [n, C]
        return jnp.concatenate([z_top, z_low], axis=-1)

    def log_prob(self, value):
        z_top, z_low = value[..., : self.parents], value[..., self.parents :]
        # log N(z_low; W z_top, σ²) written with log σ, so that exp(V z_top) cannot underflow to σ = 0 (NaN).
        log_sigma = jnp.log(self._child_scale) + z_top @ self._log_scale_weights.T  # [..., C]
        u = (z_low - z_top @ self._weights.T) * jnp.exp(-log_sigma)  # [..., C]
        log_conditional = jnp.sum(-0.5 * u**2 - log_sigma - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
        return self.parent_distribution().log_prob(z_top) + log_conditional

    def mean(self):
        return jnp.zeros(self.event_shape, self._weights.dtype)


def hierarchical(
    dim: int, parents: int, *, weights=None, log_scale_weights=None, child_scale=0.5, parent_scale=1.0
) -> HierarchicalGaussian:
    """The hierarchical prior p(z_top)·p(z_low | z_top) of :class:`HierarchicalGaussian`.

    Args:
      dim: D (static).
      parents: P, the number of parent coordinates (the first P), 1 ≤ P < D (static).
      weights: W ``[C, P]`` (C = D − P); default: child c hangs from parent
        c mod P with weight 1 (W_cp = 1 if p = c mod P), a tree.
      log_scale_weights: V ``[C, P]``; default 0 (the linear-Gaussian model).
      child_scale: s > 0, scalar or ``[C]``.
      parent_scale: σ_p > 0, scalar or ``[P]``.

    Returns:
      A :class:`HierarchicalGaussian` with event shape ``(D,)``.
    """
    check_dim("dim", dim)
    if isinstance(parents, bool) or not isinstance(parents, (int, np.integer)) or not 1 <= parents < dim:
        raise ValueError(f"parents must be an integer in [1, D − 1] = [1, {dim - 1}]; got {parents!r}")
    children = dim - parents
    given = [jnp.asarray(v) for v in (weights, log_scale_weights) if v is not None]
    dtype = jnp.result_type(jnp.asarray(child_scale), jnp.asarray(parent_scale), *given, float)
    if weights is None:  # a tree: child c hangs from parent c mod P
        weights = np.arange(children)[:, None] % parents == np.arange(parents)[None, :]
    if log_scale_weights is None:
        log_scale_weights = np.zeros((children, parents))
    for name, value in (("weights", weights), ("log_scale_weights", log_scale_weights)):
        if jnp.shape(value) != (children, parents):
            raise ValueError(f"{name} must have shape [C, P] = [{children}, {parents}]; got shape {jnp.shape(value)}")
        check_finite_concrete(name, value)
    check_positive("child_scale", child_scale)
    check_positive("parent_scale", parent_scale)
    child = _per_block("child_scale", jnp.asarray(child_scale, dtype), children, what="child")
    parent = _per_block("parent_scale", jnp.asarray(parent_scale, dtype), parents, what="parent")
    return HierarchicalGaussian(jnp.asarray(weights, dtype), jnp.asarray(log_scale_weights, dtype), child, parent)


class PriorSpec(NamedTuple):
    """A registered prior: how to build it, which numbers and which static options it takes.

    Attributes:
      make: ``make(dim, **options) -> prior_fn(**params)`` with the structure
        (D and the static options) closed over.
      required: parameters without a default (a config must give them in
        ``model.prior_params`` or sweep them).
      initialisable: the numeric parameter that a run may set from the data
        instead of the config (``model.prior_init``: ``"pca"``, the log of the
        data's top-D PCA variances, or ``"zeros"``) and may train with the
        networks (``model.prior_learned``, in ``params["prior"]``): ``"logits"``
        (ℓ) for ``anisotropic_logits``; None for the other priors.
      dim: the one latent dimension the prior has, or None for any D.
      options: the static options ``make`` accepts (``model.prior_options``),
        e.g. ``("blocks",)``; never traced.
      required_options: the options without a default.
      clusters: its components define clusters, so the clustering metrics
        apply (:func:`decompvae.metrics.clustering_accuracy`).
      student_t_marginals: each z_d ~ t_ν(0, scale²) with the numbers ``df``
        and ``scale``, so FactorVAE is also scored on Φ⁻¹(F_ν(μ)), the paper's
        published analysis (:func:`decompvae.metrics.suite.gaussianise`).
      latent_blocks: ``latent_blocks(dim, options)``: the latent blocks the
        prior defines (scored by :func:`decompvae.metrics.block_mig`), or None.
      example: ``example(dim) -> (options, params)``: valid static options and
        numbers at D = ``dim`` (every one of ``required``), on which the
        registry's contract test drives the entry.
    """

    make: Callable[..., Callable[..., distrax.Distribution]]
    required: tuple[str, ...] = ()
    initialisable: str | None = None
    dim: int | None = None
    options: tuple[str, ...] = ()
    required_options: tuple[str, ...] = ()
    clusters: bool = False
    student_t_marginals: bool = False
    latent_blocks: Callable[[int, Mapping], tuple[int, ...] | None] = lambda dim, options: _blocks_option(options)
    example: Callable[[int], tuple[dict, dict]] = lambda dim: ({}, {})


def _blocks_option(options: Mapping) -> tuple[int, ...] | None:
    return tuple(options["blocks"]) if "blocks" in options else None


def _split_blocks(dim: int) -> dict:
    return {"blocks": (1, dim - 1)}


def _ramp(dim: int, low: float, high: float) -> np.ndarray:
    return np.linspace(low, high, dim, dtype=np.float32)


def _with_dim(dim: int, params_dim: int):
    if params_dim != dim:
        raise ValueError(f"prior parameters have dimension {params_dim} but dim = {dim}")


def _anisotropic(dim):
    def prior_fn(variances):
        _with_dim(dim, jnp.shape(variances)[-1])
        return anisotropic(variances=variances)

    return prior_fn


def _anisotropic_logits(dim):
    def prior_fn(logits, **numbers):
        _with_dim(dim, jnp.shape(logits)[-1])
        return anisotropic_logits(logits=logits, **numbers)

    return prior_fn


def _mixture(dim):
    def prior_fn(means, variances, **numbers):
        _with_dim(dim, jnp.shape(means)[-1])
        return mixture(means=means, variances=variances, **numbers)

    return prior_fn


def _block_student_t(dim, blocks=None):
    blocks = check_blocks("blocks", (dim,) if blocks is None else blocks, dim)
    return functools.partial(block_student_t, blocks)


def _block_scale_mixture(dim, blocks=None):
    blocks = check_blocks("blocks", (dim,) if blocks is None else blocks, dim)
    return functools.partial(block_scale_mixture, blocks)


def _hierarchical(dim, parents):
    hierarchical(dim, parents)  # validates P before any member is built
    return functools.partial(hierarchical, dim, parents)


def _logits_example(dim: int) -> tuple[dict, dict]:
    return {}, {"logits": _ramp(dim, -1.0, 1.0), "total_scale": 1.5}


def _mixture_example(dim: int) -> tuple[dict, dict]:
    means = np.stack([np.full(dim, -1.5, np.float32), np.full(dim, 1.5, np.float32)])
    return {}, {"means": means, "variances": np.array([0.5, 1.0], np.float32),
                "weights": np.array([0.3, 0.7], np.float32)}


#: Prior name → :class:`PriorSpec`: the one list of priors (``model.prior``).
#:
#: ======================= ===========================================
#: name                    numeric parameters
#: ======================= ===========================================
#: ``isotropic``           ``scale`` (variance s)
#: ``anisotropic``         ``variances`` [D]
#: ``anisotropic_logits``  ``logits`` [D] (or from the data: PCA, learned), ``total_scale``
#: ``student_t``           ``df``, ``scale``
#: ``sparse``              ``gamma``, ``spike_scale``, ``slab_scale``
#: ``laplace``             ``scale``
#: ``mixture``             ``means`` [C, D], ``variances``, ``weights``
#: ``pinwheel``            ``variance`` (D = 2)
#: ``block_student_t``     ``df``, ``scale`` (each scalar or [G]); option ``blocks``
#: ``block_scale_mixture`` ``scales`` [C] or [G, C], ``weights``; option ``blocks``
#: ``hierarchical``        ``weights``, ``log_scale_weights`` [C, P], ``child_scale``,
#:                         ``parent_scale``; option ``parents`` (required)
#: ======================= ===========================================
PRIORS: dict[str, PriorSpec] = {
    "isotropic": PriorSpec(lambda dim: functools.partial(isotropic, dim), example=lambda dim: ({}, {"scale": 2.0})),
    "anisotropic": PriorSpec(_anisotropic, required=("variances",),
                             example=lambda dim: ({}, {"variances": _ramp(dim, 0.5, 2.0)})),
    "anisotropic_logits": PriorSpec(_anisotropic_logits, required=("logits",), initialisable="logits",
                                    example=_logits_example),
    "student_t": PriorSpec(lambda dim: functools.partial(student_t, dim), required=("df",),
                           student_t_marginals=True, example=lambda dim: ({}, {"df": 5.0, "scale": 1.5})),
    "sparse": PriorSpec(
        lambda dim: functools.partial(sparse, dim),
        required=("gamma",), example=lambda dim: ({}, {"gamma": 0.8}),
    ),
    "laplace": PriorSpec(lambda dim: functools.partial(laplace, dim),
                         example=lambda dim: ({}, {"scale": 0.7})),
    "mixture": PriorSpec(_mixture, required=("means", "variances"), clusters=True, example=_mixture_example),
    "pinwheel": PriorSpec(lambda dim: pinwheel, dim=2, clusters=True,
                          example=lambda dim: ({}, {"variance": 0.05})),
    "block_student_t": PriorSpec(_block_student_t, required=("df",), options=("blocks",),
                                 example=lambda dim: (_split_blocks(dim), {"df": 5.0, "scale": 1.2})),
    "block_scale_mixture": PriorSpec(
        _block_scale_mixture, options=("blocks",),
        example=lambda dim: (_split_blocks(dim), {"scales": np.array([0.3, 1.0], np.float32),
                                                  "weights": np.array([0.4, 0.6], np.float32)}),
    ),
    "hierarchical": PriorSpec(
        _hierarchical, options=("parents",), required_options=("parents",),
        latent_blocks=lambda dim, options: (options["parents"], dim - options["parents"]),
        example=lambda dim: ({"parents": 1}, {"log_scale_weights": np.full((dim - 1, 1), 0.3, np.float32),
                                              "child_scale": 0.5, "parent_scale": 1.2}),
    ),
}


#: Registry keys that named a source of ℓ rather than a prior (kept by :func:`make_prior`, with a
#: DeprecationWarning): the PCA-fixed and the learned anisotropic Gaussian are ``anisotropic_logits``
#: with ``model.prior_init = "pca"`` (and ``model.prior_learned = true``).
FORMER_NAMES = {"anisotropic_pca": "anisotropic_logits", "anisotropic_learned": "anisotropic_logits"}


def make_prior(name: str, dim: int, **options) -> Callable[..., distrax.Distribution]:
    """A prior constructor with the structure (name, D, static options) closed over.

    The returned function takes only the numeric parameters as keywords (see
    :data:`PRIORS`), so the objective can build the prior from a (traced)
    hyperparameter dict.

    Args:
      name: a key of :data:`PRIORS`.
      dim: D.
      **options: the prior's static options (:attr:`PriorSpec.options`), e.g.
        ``blocks=(2, 2, 3, 3)`` for ``"block_student_t"`` or ``parents=2`` for
        ``"hierarchical"``.

    Returns:
      ``prior_fn(**params) -> distrax.Distribution`` with event shape (D,).

    Raises:
      ValueError: an unknown or missing option, or a bad value; the message
        starts with the option's name.
    """
    check_dim("dim", dim)
    if name in FORMER_NAMES:
        warnings.warn(f"the prior name {name!r} is deprecated; use {FORMER_NAMES[name]!r} (where ℓ comes from is "
                      "the run's model.prior_init / model.prior_learned)", DeprecationWarning, stacklevel=2)
        name = FORMER_NAMES[name]
    check_choice("prior", name, tuple(PRIORS))
    spec = PRIORS[name]
    if spec.dim is not None and dim != spec.dim:
        raise ValueError(f"the {name} prior is {spec.dim}-D; got dim = {dim}")
    for option in options:
        if option not in spec.options:
            raise ValueError(f"{option} is not an option of the {name} prior; allowed: {list(spec.options)}")
    for option in spec.required_options:
        if option not in options:
            raise ValueError(f"{option} is required by the {name} prior (a static option)")
    return spec.make(dim, **options)


#: The names before the constructors took their keys' names (kept, with a DeprecationWarning).
_MODULE = "decompvae.priors"
isotropic_gaussian = renamed(_MODULE, "isotropic_gaussian", isotropic, "PRIORS")
anisotropic_gaussian = renamed(_MODULE, "anisotropic_gaussian", anisotropic, "PRIORS")
anisotropic_gaussian_from_logits = renamed(_MODULE, "anisotropic_gaussian_from_logits", anisotropic_logits, "PRIORS")
gaussian_mixture = renamed(_MODULE, "gaussian_mixture", mixture, "PRIORS")
pinwheel_mixture = renamed(_MODULE, "pinwheel_mixture", pinwheel, "PRIORS")
laplace_prior = renamed(_MODULE, "laplace_prior", laplace, "PRIORS")
