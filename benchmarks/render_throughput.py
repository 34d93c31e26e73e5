"""dSprites images per second: procedural rendering vs slicing a pre-rendered array.

Usage:
    python benchmarks/render_throughput.py [--batch-sizes 64 1024 16384] [--repeats 7]
        [--no-prerendered]

Variants, each a jitted function of factor classes ``[b, 5]`` timed with
``block_until_ready`` (median of ``--repeats`` calls after one warm-up):

- ``render uint8`` / ``render float32``: ``decompvae.data.render_factors``,
  the library's analytic per-pixel renderer (sub-pixel positions).
- ``shift 720 sprites uint8``: the alternative formulation — the 3·6·40
  centred sprites rendered once into a 32×32 window, then placed by integer
  pixel shifts (positions rounded to the pixel grid); for comparison only.
- ``gather pre-rendered uint8`` / ``float32``: indexing a device array of all
  737,280 pre-rendered images (3 GB of uint8, passed as an argument), the
  cost a stored data set has.

Also reported: the whole 737,280-image grid rendered in chunks of 1,024
(each dropped after rendering: pure rendering throughput), and materialised as one 3 GB uint8
array in one jitted call (includes first-touch page faults of the output).
Timings on shared machines vary up to 1.5×.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from benchmarks.harness import cpu_model, interleaved
from decompvae.data import (
    FACTOR_SIZES,
    factors_to_index,
    index_to_factors,
    render,
    render_factors,
    sample_uniform_factors,
)
from decompvae.data.sprites import IMAGE_SIZE, NUM_IMAGES, POSITION_MARGIN, POSITION_SPAN, factor_values


def make_shift_renderer():
    """Integer-shift renderer: 720 centred 32×32 sprites placed by pixel offsets."""
    window = 32
    grid = index_to_factors(jnp.arange(3 * 6 * 40) * 32 * 32, FACTOR_SIZES)  # posX = posY = 0
    values = factor_values(grid)
    centre = (window / 2 - POSITION_MARGIN) / POSITION_SPAN  # centre at the window's middle
    full = render(grid[:, 0], values[:, 1], values[:, 2], jnp.full(720, centre), jnp.full(720, centre))
    sprites = full[:, :window, :window, 0].astype(jnp.uint32)
    # One uint32 word per sprite row: bit j = column j.
    rows = jnp.sum(sprites << jnp.arange(window, dtype=jnp.uint32), axis=-1)  # [720, 32]
    # Top-left corner of the window for each position class (may be negative).
    centres = POSITION_MARGIN + POSITION_SPAN * jnp.linspace(0.0, 1.0, 32)
    offsets = jnp.round(centres - window / 2).astype(jnp.int32)

    def shift_render(factors):
        sprite = (factors[:, 0] * 6 + factors[:, 1]) * 40 + factors[:, 2]
        pixel = jnp.arange(IMAGE_SIZE)
        row = pixel[None, :] - offsets[factors[:, 4]][:, None]  # [b, h]
        col = pixel[None, :] - offsets[factors[:, 3]][:, None]  # [b, w]
        words = rows[sprite[:, None], jnp.clip(row, 0, window - 1)]  # [b, h]
        words = jnp.where((row >= 0) & (row < window), words, 0)
        bits = (words[:, :, None] >> jnp.clip(col, 0, window - 1)[:, None, :].astype(jnp.uint32)) & 1
        inside = (col >= 0) & (col < window)
        return jnp.where(inside[:, None, :], bits, 0).astype(jnp.uint8)[..., None]

    return shift_render


def time_call(fn, arg, repeats: int) -> float:
    """Median seconds of ``fn(arg)`` after one warm-up call (:func:`benchmarks.harness.interleaved`)."""
    return statistics.median(interleaved({"call": lambda: fn(arg)}, repeats)["call"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 1024, 16384])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-prerendered", action="store_true", help="skip the 3 GB pre-rendered array")
    args = parser.parse_args(argv)

    devices = f"{jax.device_count()} {jax.default_backend()} device(s)"
    print(f"# {time.strftime('%Y-%m-%d')}, {cpu_model()}, {devices}, jax {jax.__version__}")
    variants = {
        "render uint8": jax.jit(lambda f: render_factors(f, dtype=jnp.uint8)),
        "render float32": jax.jit(lambda f: render_factors(f, dtype=jnp.float32)),
        "shift 720 sprites uint8": jax.jit(make_shift_renderer()),
    }
    chunk_size = 1024  # 737,280 = 720 · 1024

    def grid_chunk(start):
        index = start + jnp.arange(chunk_size)
        return render_factors(index_to_factors(index, FACTOR_SIZES), dtype=jnp.uint8)

    # Whole grid, streamed: render each chunk and drop it (a consumer would
    # encode it). Reducing inside the same jit is slower: XLA:CPU fuses the
    # renderer into a serial reduction loop (61,000 images/s in a trial).
    render_chunk = jax.jit(grid_chunk)
    jax.block_until_ready(render_chunk(0))
    start = time.perf_counter()
    for s in range(0, NUM_IMAGES, chunk_size):
        jax.block_until_ready(render_chunk(s))
    stream_s = time.perf_counter() - start
    print(f"full grid streamed ({NUM_IMAGES} images, chunks of {chunk_size}, uint8): "
          f"{stream_s:.2f} s = {NUM_IMAGES / stream_s:,.0f} images/s")
    store = None
    if not args.no_prerendered:
        # Whole grid materialised on device in one jitted call (3 GB of uint8).
        starts = jnp.arange(0, NUM_IMAGES, chunk_size)
        materialise = jax.jit(
            lambda: jax.lax.map(grid_chunk, starts, batch_size=4).reshape(NUM_IMAGES, IMAGE_SIZE, IMAGE_SIZE)
        )
        compiled = materialise.lower().compile()
        start = time.perf_counter()
        store = jax.block_until_ready(compiled())
        grid_s = time.perf_counter() - start
        print(f"full grid materialised (one jitted call, [{NUM_IMAGES}, 64, 64] uint8): "
              f"{grid_s:.2f} s = {NUM_IMAGES / grid_s:,.0f} images/s")
        # The store is an argument, not a closed-over constant.
        gather_u8 = jax.jit(lambda data, f: data[factors_to_index(f, FACTOR_SIZES)])
        gather_f32 = jax.jit(lambda data, f: data[factors_to_index(f, FACTOR_SIZES)].astype(jnp.float32))
        variants["gather pre-rendered uint8"] = lambda f: gather_u8(store, f)
        variants["gather pre-rendered float32"] = lambda f: gather_f32(store, f)

    print("| variant | " + " | ".join(f"b = {b}" for b in args.batch_sizes) + " |")
    print("|---|" + "---|" * len(args.batch_sizes))
    keys = jax.random.split(jax.random.key(0), len(args.batch_sizes))
    factors = {b: sample_uniform_factors(k, b, FACTOR_SIZES) for b, k in zip(args.batch_sizes, keys)}
    for name, fn in variants.items():
        cells = [f"{b / time_call(fn, factors[b], args.repeats):,.0f}" for b in args.batch_sizes]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("(images per second)")


if __name__ == "__main__":
    main()
