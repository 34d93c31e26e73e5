"""2-D convolutions with selectable formulations and one parameter layout.

``Conv2D`` and ``ConvTranspose2D`` hold exactly the parameters of
``flax.linen.Conv`` and ``flax.linen.ConvTranspose`` (``kernel`` of shape
``[kh, kw, c_in, c_out]``, ``bias`` of shape ``[c_out]``) and compute the same
function; only the formulation of the arithmetic changes with ``impl``:

- ``"lax"``: ``lax.conv_general_dilated`` / ``lax.conv_transpose``, exactly
  what flax calls. The reference, and what GPUs (cuDNN) are built for.
- ``"phase"``: convolutions as ``"lax"``; a transposed convolution with
  stride s as s·s stride-1 convolutions of the undilated input, one per
  output phase, interleaved (sub-pixel decomposition): no multiplications by
  the zeros of the dilated input. Much faster than ``"lax"`` for one model on
  XLA:CPU, except where the output has a single channel.
- ``"matmul"``: every layer as one matmul (``einsum``) between linear
  rearrangements of the activations (slices, pads, reshapes), in one of two
  forms per layer, whichever materialises fewer floats:

  * convolution, *gather*: im2col patches ``[b, h_out, w_out, kh, kw, c_in]``
    times the kernel (few input channels, e.g. the first layer);
  * convolution, *space-to-depth*: the padded input folded into s×s blocks,
    times all ``ceil(k/s)²`` block taps at once, then a stride-1 overlap-add
    of the shifted products (channels that grow, as in an encoder);
  * transposed convolution, *block*: a stride-1 convolution (computed as
    above) to s·s·c_out channels, i.e. s×s output blocks, then depth-to-space
    (channels that stay or grow);
  * transposed convolution, *scatter*: every input pixel times every kernel
    tap, ``[b, h, w, kh, kw, c_out]``, overlap-added into the output (few
    output channels, e.g. the last layer).

  Overlap-adding and patch extraction are each other's adjoints; each is
  given the other as its derivative (``jax.custom_vjp``), so the backward
  pass is again matmuls and the same rearrangements (the automatic transpose
  of a sum of slices is a sum of full-size pads, slow on XLA:CPU). Under
  ``jax.vmap`` over stacked parameters the matmuls become batched GEMMs,
  whereas vmapped convolutions become grouped convolutions, which XLA:CPU
  runs several times slower: the formulation for vmapped sweeps on CPU, and
  also the fastest single model there. Reverse-mode only (``custom_vjp``):
  ``jax.jvp`` through it raises; use ``"lax"`` for forward-mode derivatives.
- ``"auto"``: chosen from the backend at trace time (``resolve_conv_impl``).

Mixed precision: with bfloat16 inputs and kernels and
``preferred_element_type=jnp.float32`` (what the modules pass when their
``dtype`` is bfloat16), every formulation multiplies in bfloat16 and
accumulates in float32, forward and backward (``_accumulate``); the
rearrangements of ``"matmul"`` move bfloat16 activations, and its
overlap-adds sum float32 products.

Padding follows lax: for ``Conv2D`` it pads the input; for ``ConvTranspose2D``
it pads the stride-dilated input (``lax.conv_transpose`` semantics, which flax
uses), so ``"SAME"`` with kernel 4 and stride 2 doubles the spatial size, like
PyTorch's ``ConvTranspose2d(kernel_size=4, stride=2, padding=1)`` up to the
kernel flip (flax does not flip).
"""

from __future__ import annotations

import functools
import operator
from typing import NamedTuple, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from decompvae._checks import check_choice, check_dim

Array = jax.Array
Padding = Union[str, int, Sequence[tuple[int, int]]]

CONV_IMPLS = ("auto", "lax", "phase", "matmul")
_DIMS = ("NHWC", "HWIO", "NHWC")

__all__ = [
    "CONV_IMPLS",
    "Conv2D",
    "ConvTranspose2D",
    "conv2d",
    "conv_transpose2d",
    "resolve_conv_impl",
]


def resolve_conv_impl(impl: str, backend: str | None = None) -> str:
    """The concrete formulation for ``impl`` on ``backend``.

    Args:
      impl: one of ``CONV_IMPLS``.
      backend: ``"cpu"``, ``"gpu"``, ``"tpu"``…; ``None`` uses
        ``jax.default_backend()``.

    Returns:
      ``impl`` itself unless it is ``"auto"``: then ``"matmul"`` on CPU and
      ``"lax"`` elsewhere (cuDNN/TPU convolutions). docs/guide.md, "Convolution
      formulations", gives the CPU measurements behind the choice.
    """
    check_choice("conv_impl", impl, CONV_IMPLS)
    if impl != "auto":
        return impl
    backend = jax.default_backend() if backend is None else backend
    return "matmul" if backend == "cpu" else "lax"


# --------------------------------------------------------------------------
# Padding arithmetic (static Python integers).


def _conv_pads(padding: Padding, size: Sequence[int], kernel: Sequence[int], stride: int):
    """Explicit ``[(lo, hi)] * 2`` input padding of a convolution."""
    if isinstance(padding, str):
        check_choice("padding", padding.upper(), ("SAME", "VALID"))
        return lax.padtype_to_pads(tuple(size), tuple(kernel), (stride, stride), padding.upper())
    if isinstance(padding, (int, np.integer)):
        return [(int(padding), int(padding))] * 2
    return _check_pairs(padding)


def _conv_transpose_pads(padding: Padding, kernel: Sequence[int], stride: int):
    """Explicit ``[(lo, hi)] * 2`` padding of the dilated input (lax semantics)."""
    if isinstance(padding, str):
        mode = padding.upper()
        check_choice("padding", mode, ("SAME", "VALID"))
        pads = []
        for k in kernel:
            if mode == "SAME":
                total = k + stride - 2
                lo = k - 1 if stride > k - 1 else -(-total // 2)
            else:
                total = k + stride - 2 + max(k - stride, 0)
                lo = k - 1
            pads.append((lo, total - lo))
        return pads
    if isinstance(padding, (int, np.integer)):
        return [(int(padding), int(padding))] * 2
    return _check_pairs(padding)


def _check_pairs(padding):
    try:
        pairs = [tuple(int(p) for p in pair) for pair in padding]
    except TypeError:
        pairs = []
    if len(pairs) != 2 or any(len(p) != 2 for p in pairs):
        raise ValueError(
            f"padding must be 'SAME', 'VALID', an int or two (low, high) pairs; got {padding!r}"
        )
    return pairs


# --------------------------------------------------------------------------
# The sub-pixel decomposition of a transposed convolution.


class _Phase(NamedTuple):
    """Output phase ``(r_h, r_w)``: output ``[s·i + r_h, s·j + r_w]`` reads
    ``x[i + off_h + a, j + off_w + b]`` through kernel tap
    ``[t0_h + s·a, t0_w + s·b]``, for ``a < n_h``, ``b < n_w``."""

    t0_h: int
    t0_w: int
    n_h: int
    n_w: int
    off_h: int
    off_w: int


class _Plan(NamedTuple):
    """Static geometry of a transposed convolution ``[b, h, w, ·] → [b, h_out, w_out, ·]``.

    With the input dilated by s and padded by ``lo`` in front, output
    ``o = s·i + r`` reads input ``m`` through tap ``t`` exactly when
    ``s·m = o + t − lo``: for phase r the taps are ``t0, t0 + s, …`` with
    ``t0 = (lo − r) mod s``, read at ``m = i + (r + t0 − lo)/s + a``. Every phase
    produces ``ceil(h_out / s)`` rows; the interleaved result is cropped.
    Hashable, so it can be a static argument.
    """

    stride: int
    kernel: tuple[int, int]
    lo: tuple[int, int]
    size: tuple[int, int]  # (h, w) of the input
    out: tuple[int, int]  # (h_out, w_out)
    n_phase: tuple[int, int]  # rows, columns of every phase output
    phases: tuple[_Phase, ...]  # row-major over (r_h, r_w)
    front: tuple[int, int]  # zero rows/columns in front of the input that phases read
    back: tuple[int, int]  # and behind

    @classmethod
    def make(cls, size, kernel, stride, pads):
        """Plan for input spatial ``size``, kernel ``(kh, kw)``, dilated-input ``pads``."""
        s = stride
        out = tuple((n - 1) * s + 1 + lo + hi - k + 1 for n, (lo, hi), k in zip(size, pads, kernel))
        if min(out) < 1:
            raise ValueError(f"padding {pads} leaves no output for an input of spatial size {tuple(size)}")
        n_phase = tuple(-(-n // s) for n in out)
        per_dim = []  # per dimension, per phase r: (first tap t0, number of taps, input offset)
        for k, (lo, _) in zip(kernel, pads):
            t0s = [(lo - r) % s for r in range(s)]
            per_dim.append([(t0, len(range(t0, k, s)), (r + t0 - lo) // s) for r, t0 in enumerate(t0s)])
        phases = tuple(
            _Phase(t0h, t0w, nh, nw, oh, ow) for t0h, nh, oh in per_dim[0] for t0w, nw, ow in per_dim[1]
        )
        front = tuple(max(0, *(-off for _, _, off in dim)) for dim in per_dim)
        back = tuple(
            max(0, *(off + n_taps - 1 + n_ph - n for _, n_taps, off in dim))
            for dim, n_ph, n in zip(per_dim, n_phase, size)
        )
        return cls(s, tuple(kernel), tuple(lo for lo, _ in pads), tuple(size), out, n_phase, phases, front, back)

    def pad(self, a: Array) -> Array:
        """``a [b, h, w, ...]`` with the zero rows/columns the phases read."""
        widths = ((0, 0), (self.front[0], self.back[0]), (self.front[1], self.back[1]))
        return jnp.pad(a, widths + ((0, 0),) * (a.ndim - 3))

    def window(self, ap: Array, ph: _Phase, a: int, b: int, extra: tuple[int, int] = (0, 0)) -> Array:
        """``[b, n_phase_h + extra_h, n_phase_w + extra_w, ...]``: padded ``ap`` read at
        offset ``(off_h + a, off_w + b)``."""
        i, j = self.front[0] + ph.off_h + a, self.front[1] + ph.off_w + b
        return ap[:, i : i + self.n_phase[0] + extra[0], j : j + self.n_phase[1] + extra[1]]

    def interleave(self, ys: Sequence[Array]) -> Array:
        """Phase outputs ``[b, nh, nw, ...]`` (row-major over phases) → ``[b, h_out, w_out, ...]``."""
        s, (nh, nw) = self.stride, self.n_phase
        b, rest = ys[0].shape[0], ys[0].shape[3:]
        y = jnp.stack(ys, axis=3).reshape(b, nh, nw, s, s, *rest)
        y = jnp.moveaxis(y, 3, 2).reshape(b, nh * s, nw * s, *rest)
        return y[:, : self.out[0], : self.out[1]]


def _overlap_add_impl(z: Array, plan: _Plan) -> Array:
    """``y[o] = Σ_{m, t : s·m + lo − t = o} z[m, t]`` in both spatial dimensions.

    Each phase sums shifted slices of ``z``; a slice that would read outside
    ``z`` is cut and zero-padded at the output size instead of padding ``z``.

    Args:
      z: ``[b, h, w, kh, kw, c]``, the product of input pixel ``m`` with tap ``t``.

    Returns:
      ``[b, h_out, w_out, c]``.
    """
    b, h, w = z.shape[:3]
    c = z.shape[-1]
    s, (nh, nw) = plan.stride, plan.n_phase
    ys = []
    for ph in plan.phases:
        terms = []
        for a in range(ph.n_h):
            for bb in range(ph.n_w):
                # The rows/columns of this phase whose input index lies inside z.
                (i0, i1), (j0, j1) = (
                    (max(0, -off), min(n_ph, n - off))
                    for off, n_ph, n in ((ph.off_h + a, nh, h), (ph.off_w + bb, nw, w))
                )
                if i1 <= i0 or j1 <= j0:
                    continue
                di, dj = ph.off_h + a, ph.off_w + bb
                term = z[:, i0 + di : i1 + di, j0 + dj : j1 + dj, ph.t0_h + s * a, ph.t0_w + s * bb]
                terms.append(jnp.pad(term, ((0, 0), (i0, nh - i1), (j0, nw - j1), (0, 0))))
        ys.append(functools.reduce(operator.add, terms) if terms else jnp.zeros((b, nh, nw, c), z.dtype))
    return plan.interleave(ys)


def _extract_patches_impl(y: Array, plan: _Plan) -> Array:
    """The adjoint of ``_overlap_add_impl``: ``z[m, t] = y[s·m + lo − t]`` (zero outside ``y``).

    Args:
      y: ``[b, h_out, w_out, c]``.

    Returns:
      ``[b, h, w, kh, kw, c]``.
    """
    b, _, _, c = y.shape
    s, (kh, kw), (h, w) = plan.stride, plan.kernel, plan.size
    front = [max(0, k - 1 - lo) for k, lo in zip(plan.kernel, plan.lo)]
    back = [max(0, s * (n - 1) + lo - n_out + 1) for n, lo, n_out in zip(plan.size, plan.lo, plan.out)]
    yp = jnp.pad(y, ((0, 0), (front[0], back[0]), (front[1], back[1]), (0, 0)))
    views = []
    for th in range(kh):
        for tw in range(kw):
            i, j = plan.lo[0] - th + front[0], plan.lo[1] - tw + front[1]
            views.append(lax.slice(yp, (0, i, j, 0), (b, i + s * (h - 1) + 1, j + s * (w - 1) + 1, c), (1, s, s, 1)))
    return jnp.stack(views, axis=3).reshape(b, h, w, kh, kw, c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _overlap_add(z: Array, plan: _Plan) -> Array:
    """Overlap-add of per-tap products (the rearrangement of a transposed convolution).

    Differentiated by its adjoint ``_extract_patches`` rather than by the
    transposes of its slices (sums of full-size pads, slow on XLA:CPU).

    Args:
      z: ``[b, h, w, kh, kw, c]``.
      plan: the geometry (``_Plan.make``).

    Returns:
      ``[b, h_out, w_out, c]``.
    """
    return _overlap_add_impl(z, plan)


def _overlap_add_fwd(z, plan):
    return _overlap_add_impl(z, plan), None


def _overlap_add_bwd(plan, _, g):
    return (_extract_patches_impl(g, plan),)


_overlap_add.defvjp(_overlap_add_fwd, _overlap_add_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _extract_patches(y: Array, plan: _Plan) -> Array:
    """Patches ``z[m, t] = y[s·m + lo − t]`` (im2col with reversed taps), adjoint of ``_overlap_add``.

    Args:
      y: ``[b, h_out, w_out, c]``.
      plan: the geometry (``_Plan.make``).

    Returns:
      ``[b, h, w, kh, kw, c]``.
    """
    return _extract_patches_impl(y, plan)


def _extract_patches_fwd(y, plan):
    return _extract_patches_impl(y, plan), None


def _extract_patches_bwd(plan, _, g):
    return (_overlap_add_impl(g, plan),)


_extract_patches.defvjp(_extract_patches_fwd, _extract_patches_bwd)


# --------------------------------------------------------------------------
# Mixed precision: low-precision products, float32 accumulation.


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _accumulate(op, a: Array, b: Array) -> Array:
    """``op(a, b)`` for a bilinear ``op`` (einsum, convolution) on low-precision ``a``, ``b``, accumulated in float32.

    The forward product passes ``preferred_element_type=float32``: bfloat16
    multiplies, float32 sums and result. The backward products take the
    cotangent rounded to the inputs' dtype and return gradients in it (their
    sums in float32 too: XLA:CPU computes bfloat16 dots in float32, cuBLAS and
    cuDNN accumulate bfloat16 in float32), so they run in bfloat16 as well;
    JAX's own transpose would instead pair the float32 cotangent with a
    bfloat16 operand, a mixed product that backends run in float32.

    Args:
      op: ``op(a, b, preferred_element_type=None)``, linear in each argument.
      a, b: operands in one low-precision dtype.

    Returns:
      ``op(a, b)`` in float32.
    """
    return op(a, b, preferred_element_type=jnp.float32)


def _accumulate_fwd(op, a, b):
    return op(a, b, preferred_element_type=jnp.float32), (a, b)


def _accumulate_bwd(op, residuals, g):
    a, b = residuals
    _, pullback = jax.vjp(op, a, b)
    return pullback(g.astype(a.dtype))


_accumulate.defvjp(_accumulate_fwd, _accumulate_bwd)


def _bilinear(op, a: Array, b: Array, acc) -> Array:
    """``op(a, b)``; through :func:`_accumulate` when ``acc`` is float32 and the operands are narrower."""
    if acc is None or jnp.dtype(a.dtype).itemsize >= jnp.dtype(acc).itemsize:
        return op(a, b)
    if jnp.dtype(acc) != jnp.float32:
        raise ValueError(f"preferred_element_type must be float32 or None; got {acc!r}")
    return _accumulate(op, a, b)


def _einsum(spec: str, a: Array, b: Array, precision, acc) -> Array:
    """``jnp.einsum(spec, a, b)``, accumulated in ``acc`` (see :func:`_bilinear`)."""
    return _bilinear(functools.partial(jnp.einsum, spec, precision=precision), a, b, acc)


# --------------------------------------------------------------------------
# Convolution and transposed convolution.


def conv2d(
    x: Array,
    kernel: Array,
    *,
    stride: int = 1,
    padding: Padding = "SAME",
    impl: str = "lax",
    precision=None,
    preferred_element_type=None,
) -> Array:
    """2-D cross-correlation, NHWC, the function ``flax.linen.Conv`` computes.

    Args:
      x: input, ``[b, h, w, c_in]``.
      kernel: ``[kh, kw, c_in, c_out]``.
      stride: the same stride in both spatial dimensions.
      padding: ``"SAME"``, ``"VALID"``, an int (both sides, both dimensions)
        or two ``(low, high)`` pairs; applied to the input.
      impl: one of ``CONV_IMPLS`` (``"phase"`` equals ``"lax"`` here).
      precision: passed to the lax convolution or einsum.
      preferred_element_type: ``jnp.float32`` with low-precision (bfloat16)
        ``x`` and ``kernel``: every matmul/convolution multiplies in their
        dtype and accumulates and returns float32 (see ``_accumulate``);
        None: the inputs' dtype throughout.

    Returns:
      ``[b, h_out, w_out, c_out]`` with ``h_out = (h + lo + hi − kh) // stride + 1``.
    """
    impl = resolve_conv_impl(impl)
    check_dim("stride", stride)
    h, w = x.shape[1:3]
    kh, kw = kernel.shape[:2]
    pads = _conv_pads(padding, (h, w), (kh, kw), stride)
    if impl in ("lax", "phase"):
        op = functools.partial(lax.conv_general_dilated, window_strides=(stride, stride), padding=pads,
                               dimension_numbers=_DIMS, precision=precision)
        return _bilinear(op, x, kernel, preferred_element_type)
    return _conv2d_matmul(x, kernel, stride, pads, precision, preferred_element_type)


def _conv2d_matmul(x, kernel, stride, pads, precision, acc=None, form=None):
    """The ``"matmul"`` convolution; ``form`` ``"gather"`` or ``"s2d"``, ``None``: the
    one with the smaller intermediate."""
    h, w = x.shape[1:3]
    kh, kw, c, c_out = kernel.shape
    size = tuple((n + lo + hi - k) // stride + 1 for n, (lo, hi), k in zip((h, w), pads, (kh, kw)))
    if min(size) < 1:
        raise ValueError(f"x of spatial size {(h, w)} is smaller than the kernel {(kh, kw)}")
    if form is None:
        th, tw = -(-kh // stride), -(-kw // stride)
        gather = size[0] * size[1] * kh * kw * c  # floats per example of the im2col patches
        s2d = (size[0] + th - 1) * (size[1] + tw - 1) * th * tw * c_out  # of the per-tap products
        form = "s2d" if s2d < gather else "gather"
    if form == "s2d":
        return _conv2d_s2d(x, kernel, stride, pads, size, precision, acc)
    # im2col: the adjoint of a transposed convolution from the output grid
    # back to the input grid, with the kernel flipped.
    lo = [k - 1 - pl for k, (pl, _) in zip((kh, kw), pads)]
    back = [n - ((m - 1) * stride + 1 + l - k + 1) for n, m, l, k in zip((h, w), size, lo, (kh, kw))]
    plan = _Plan.make(size, (kh, kw), stride, list(zip(lo, back)))
    patches = _extract_patches(x, plan)  # [b, h_out, w_out, kh, kw, c_in], taps reversed
    return _einsum("bhwijc,ijco->bhwo", patches, kernel[::-1, ::-1], precision, acc)


def _conv2d_s2d(x, kernel, stride, pads, size, precision, acc=None):
    """Convolution on the space-to-depth grid: one matmul, then a stride-1 overlap-add.

    With ``xs[p, (ri, rj, c)] = xp[s·p + ri, s·q + rj, c]`` (the padded input
    folded into s×s blocks) and the kernel split as ``i = s·ti + ri``:
    ``y[o] = Σ_{ti,tj} z[o + (ti, tj), (ti, tj)]`` with
    ``z = xs @ W[(ri, rj, c), (ti, tj, o)]``. Materialises
    ``[b, h_out + th − 1, w_out + tw − 1, th·tw·c_out]`` (``th = ceil(kh / s)``)
    instead of im2col's ``[b, h_out, w_out, kh·kw·c_in]``: cheaper when the
    channels grow, as in an encoder.
    """
    b, h, w, c = x.shape
    kh, kw, _, c_out = kernel.shape
    s, (ho, wo) = stride, size
    th, tw = -(-kh // s), -(-kw // s)
    hs, ws = ho + th - 1, wo + tw - 1
    # Pad (or crop) the input to exactly s·hs × s·ws; rows past the last window are never read.
    widths = ((0, 0, 0), (pads[0][0], s * hs - h - pads[0][0], 0), (pads[1][0], s * ws - w - pads[1][0], 0), (0, 0, 0))
    xp = lax.pad(x, jnp.zeros((), x.dtype), widths)
    xs = xp.reshape(b, hs, s, ws, s, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, hs, ws, s * s * c)
    # The kernel with zero taps up to th·s × tw·s, as [(ri, rj, c), (ti, tj, o)].
    wk = jnp.pad(kernel, ((0, th * s - kh), (0, tw * s - kw), (0, 0), (0, 0)))
    wk = wk.reshape(th, s, tw, s, c, c_out).transpose(1, 3, 4, 0, 2, 5).reshape(s * s * c, th, tw, c_out)
    z = _einsum("bhwk,kijo->bhwijo", xs, wk, precision, acc)  # [b, hs, ws, th, tw, o]
    return _overlap_add(z, _Plan.make((hs, ws), (th, tw), 1, [(0, 0), (0, 0)]))


def conv_transpose2d(
    x: Array,
    kernel: Array,
    *,
    stride: int = 1,
    padding: Padding = "SAME",
    impl: str = "lax",
    precision=None,
    preferred_element_type=None,
) -> Array:
    """2-D transposed convolution, NHWC, the function ``flax.linen.ConvTranspose`` computes.

    Equals ``lax.conv_transpose(x, kernel, (stride, stride), padding,
    dimension_numbers=("NHWC", "HWIO", "NHWC"))``: the input dilated by
    ``stride``, padded, and cross-correlated with the (unflipped) kernel.

    Args:
      x: input, ``[b, h, w, c_in]``.
      kernel: ``[kh, kw, c_in, c_out]``.
      stride: the same stride in both spatial dimensions.
      padding: ``"SAME"``, ``"VALID"``, an int or two ``(low, high)`` pairs,
        applied to the dilated input as in ``lax.conv_transpose``.
      impl: one of ``CONV_IMPLS``.
      precision: passed to the lax convolutions or einsum.
      preferred_element_type: as in :func:`conv2d`.

    Returns:
      ``[b, h_out, w_out, c_out]`` with
      ``h_out = (h − 1)·stride + 1 + lo + hi − kh + 1``.
    """
    impl = resolve_conv_impl(impl)
    check_dim("stride", stride)
    kh, kw = kernel.shape[:2]
    pads = _conv_transpose_pads(padding, (kh, kw), stride)
    acc = preferred_element_type
    if impl == "lax" or (impl == "phase" and stride == 1):
        op = functools.partial(lax.conv_transpose, strides=(stride, stride), padding=pads, dimension_numbers=_DIMS,
                               precision=precision)
        return _bilinear(op, x, kernel, acc)
    if impl == "phase":
        plan = _Plan.make(x.shape[1:3], (kh, kw), stride, pads)
        return plan.interleave([_phase_conv(plan, x, kernel, ph, precision, acc) for ph in plan.phases])
    return _conv_transpose2d_matmul(x, kernel, stride, pads, precision, acc)


def _conv_transpose2d_matmul(x, kernel, stride, pads, precision, acc=None, form=None):
    """The ``"matmul"`` transposed convolution; ``form`` ``"scatter"`` or ``"block"``,
    ``None``: the one with the smaller intermediate."""
    h, w, c = x.shape[1:]
    kh, kw, _, c_out = kernel.shape
    blocks = _BlockPlan.make((h, w), (kh, kw), stride, pads)
    if form is None:
        scatter = h * w * kh * kw * c_out  # floats per example of the per-tap products
        block = blocks.q[0] * blocks.q[1] * (blocks.t[0] * blocks.t[1] * c + stride * stride * c_out)
        form = "block" if block < scatter else "scatter"
    if form == "block":
        return _conv_transpose2d_blocks(x, kernel, blocks, "matmul", precision, acc)
    z = _einsum("bhwc,ijco->bhwijo", x, kernel, precision, acc)  # [b, h, w, kh, kw, c_out]
    return _overlap_add(z, _Plan.make((h, w), (kh, kw), stride, pads))


class _BlockPlan(NamedTuple):
    """A transposed convolution as a stride-1 convolution producing s×s output blocks.

    Output block q holds outputs ``o = s·q + ρ − δ`` (ρ < s). Output o reads
    input ``m`` through tap t when ``s·m = o + t − lo``, so block q reads
    ``m = q + e`` with ``e = (ρ + t − δ − lo)/s``; with ``δ = (s − 1 − lo) mod s``
    every block reads the same ``T = ceil(k/s)`` consecutive inputs
    ``q + e_min, …, q + e_min + T − 1`` (no multiply-adds wasted inside the
    output). Static integers.
    """

    stride: int
    kernel: tuple[int, int]
    lo: tuple[int, int]
    delta: tuple[int, int]
    e_min: tuple[int, int]
    t: tuple[int, int]  # T per dimension
    q: tuple[int, int]  # number of blocks per dimension
    pads: tuple[tuple[int, int], tuple[int, int]]  # input padding of the stride-1 convolution (may be < 0)
    out: tuple[int, int]

    @classmethod
    def make(cls, size, kernel, s, pads):
        """Plan for input spatial ``size``, kernel ``(kh, kw)``, dilated-input ``pads``."""
        fields = []
        for n, k, (lo, hi) in zip(size, kernel, pads):
            n_out = (n - 1) * s + 1 + lo + hi - k + 1
            d = (s - 1 - lo) % s
            e0 = -((d + lo) // s)  # = ceil(−(δ + lo)/s) as δ + lo ≡ s − 1 (mod s)
            n_t, n_q = -(-k // s), (n_out - 1 + d) // s + 1
            fields.append((lo, d, e0, n_t, n_q, (-e0, n_q + e0 + n_t - 1 - n), n_out))
        lo, d, e0, n_t, n_q, in_pads, out = zip(*fields)
        return cls(s, tuple(kernel), lo, d, e0, n_t, n_q, in_pads, out)

    def block_kernel(self, kernel: Array) -> Array:
        """``[Th, Tw, c_in, s·s·c_out]``: entry ``[a, ·, c, (ρ, ·, o)]`` is tap
        ``t = s·(e_min + a) + δ + lo − ρ`` of ``kernel``, zero where t is outside it."""
        s = self.stride
        c, c_out = kernel.shape[2:]
        idx = []
        for k, lo, d, e0, n_t in zip(self.kernel, self.lo, self.delta, self.e_min, self.t):
            t = s * (e0 + np.arange(n_t))[:, None] + d + lo - np.arange(s)[None, :]  # [T, s]
            idx.append(np.where((t >= 0) & (t < k), t, k))  # k: the appended zero tap
        wp = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
        wb = wp[idx[0][:, :, None, None], idx[1][None, None, :, :]]  # [Th, s, Tw, s, c, o]
        return wb.transpose(0, 2, 4, 1, 3, 5).reshape(self.t[0], self.t[1], c, s * s * c_out)


def _conv_transpose2d_blocks(x: Array, kernel: Array, plan: _BlockPlan, impl: str, precision, acc=None) -> Array:
    """Transposed convolution as a stride-1 convolution to s·s·c_out channels, then depth-to-space.

    The stride-1 convolution is ``conv2d(impl=impl)``; with ``"matmul"`` it
    materialises about ``[b, h, w, T²·c_in]`` and ``[b, h, w, s²·c_out]``
    (T = ceil(k/s)). (With ``"lax"`` it is the sub-pixel convolution of Shi et
    al. 2016; XLA:CPU runs its backward slowly for one model, so ``"phase"``
    uses per-phase convolutions instead.)
    """
    b = x.shape[0]
    s, c_out = plan.stride, kernel.shape[-1]
    (qh, qw), (dh, dw) = plan.q, plan.delta
    zb = conv2d(x, plan.block_kernel(kernel), stride=1, padding=plan.pads, impl=impl, precision=precision,
                preferred_element_type=acc)
    y = zb.reshape(b, qh, qw, s, s, c_out).transpose(0, 1, 3, 2, 4, 5).reshape(b, qh * s, qw * s, c_out)
    return y[:, dh : dh + plan.out[0], dw : dw + plan.out[1]]


def _phase_conv(plan: _Plan, x: Array, kernel: Array, ph: _Phase, precision, acc=None) -> Array:
    """One output phase as a stride-1 VALID lax convolution of the padded input."""
    if not ph.n_h or not ph.n_w:
        return jnp.zeros((x.shape[0], *plan.n_phase, kernel.shape[-1]), acc or x.dtype)
    s = plan.stride
    sub = kernel[ph.t0_h :: s, ph.t0_w :: s]  # [n_h, n_w, c_in, c_out]
    xs = plan.window(plan.pad(x), ph, 0, 0, extra=(ph.n_h - 1, ph.n_w - 1))
    op = functools.partial(lax.conv_general_dilated, window_strides=(1, 1), padding="VALID", dimension_numbers=_DIMS,
                           precision=precision)
    return _bilinear(op, xs, sub, acc)


# --------------------------------------------------------------------------
# Modules.


class _SquareConv(nn.Module):
    """Shared fields and parameters of :class:`Conv2D` and :class:`ConvTranspose2D`.

    Attributes:
      features: number of output channels.
      kernel_size: square kernel side.
      stride: the same stride in both spatial dimensions.
      padding: see ``conv2d`` / ``conv_transpose2d``.
      impl: one of ``CONV_IMPLS``; the parameters do not depend on it.
      use_bias, dtype, param_dtype, precision, kernel_init, bias_init: as in
        the flax layer. A ``dtype`` narrower than float32 (bfloat16) casts the
        input and kernel to it and accumulates the products and the bias in
        float32 (mixed precision); the parameters stay ``param_dtype``.
    """

    features: int
    kernel_size: int = 3
    stride: int = 1
    padding: Padding = "SAME"
    impl: str = "auto"
    use_bias: bool = True
    dtype: jnp.dtype | None = None
    param_dtype: jnp.dtype = jnp.float32
    precision: lax.Precision | None = None
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

    def _op(self, x: Array, kernel: Array, acc) -> Array:
        raise NotImplementedError

    @nn.compact
    def __call__(self, x: Array) -> Array:
        """Args: x ``[b, h, w, c_in]``. Returns ``[b, h_out, w_out, features]``."""
        _check_nhwc("x", x)
        check_dim("kernel_size", self.kernel_size)
        k = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features), self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
        # Low-precision compute (bfloat16): products in x's dtype, sums and the bias in float32, the
        # result back in x's dtype for the next layer.
        acc = jnp.float32 if jnp.dtype(x.dtype).itemsize < 4 else None
        y = self._op(x, kernel, acc)
        if bias is not None:
            y = y + bias.astype(y.dtype if acc is None else acc)
        return y.astype(x.dtype)


class Conv2D(_SquareConv):
    """``flax.linen.Conv`` (square kernel, equal strides) with a selectable formulation.

    Same parameters (``kernel [k, k, c_in, c_out]``, ``bias``) and function as
    ``flax.linen.Conv``; attributes as :class:`_SquareConv` (``padding``: see
    ``conv2d``).
    """

    def _op(self, x: Array, kernel: Array, acc) -> Array:
        return conv2d(x, kernel, stride=self.stride, padding=self.padding, impl=self.impl, precision=self.precision,
                      preferred_element_type=acc)


class ConvTranspose2D(_SquareConv):
    """``flax.linen.ConvTranspose`` (square kernel, equal strides) with a selectable formulation.

    Same parameters and function as ``flax.linen.ConvTranspose`` with
    ``transpose_kernel=False``; ``padding`` is that of the dilated input (see
    ``conv_transpose2d``).
    """

    def _op(self, x: Array, kernel: Array, acc) -> Array:
        return conv_transpose2d(
            x, kernel, stride=self.stride, padding=self.padding, impl=self.impl, precision=self.precision,
            preferred_element_type=acc,
        )


def _check_nhwc(name: str, x) -> None:
    if jnp.ndim(x) != 4:
        raise ValueError(f"{name} must be a batch of images [b, h, w, c]; got shape {jnp.shape(x)}")
