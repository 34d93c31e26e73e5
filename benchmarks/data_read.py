"""Read speed of the published data-set formats: ``python -m benchmarks.data_read [--batches 200]``.

Writes synthetic files in the published formats, scaled-down grids of the
published factor sizes (random uint8 pixels, so compression has nothing to
gain), then times, for each:
opening and loading into the :class:`decompvae.data.published.StoredGrid`
(the run's start), and gathering random training batches of 64 from it
(what ``TrainingData.batch`` does every step, on the device-held uint8 array).
Prints MB/s and images/s, and the time the whole published file would take at
that rate (3D Shapes 480,000 images, MPI3D 1,036,800).
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

import h5py
import jax
import jax.numpy as jnp
import numpy as np

from decompvae.data import published
from decompvae.data.batching import make_batcher

__all__ = ["main", "measure"]

#: Images in each published file (for the scaled-up load time).
PUBLISHED_IMAGES = {"shapes3d (HDF5)": 480_000, "mpi3d (npz, stored)": 1_036_800, "mpi3d (npz, deflated)": 1_036_800}


#: Scaled-down grids of the published factor sizes (3D Shapes: 24,000 images; MPI3D: 12,960).
SHAPES3D_SIZES = (10, 10, 10, 8, 3, 1)
MPI3D_SIZES = (6, 6, 2, 3, 3, 5, 4)


def _grid(sizes: tuple[int, ...]) -> np.ndarray:
    """Every combination ``[Π sizes, F]`` in index order."""
    return np.indices(sizes).reshape(len(sizes), -1).T


def _write(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """The synthetic files: 3D Shapes HDF5, and MPI3D npz stored and deflated (random pixels)."""
    rng = np.random.default_rng(0)
    shapes = _grid(SHAPES3D_SIZES)
    with h5py.File(directory / "3dshapes.h5", "w") as f:
        f["images"] = rng.integers(0, 256, (len(shapes), 64, 64, 3), dtype=np.uint8)
        f["labels"] = shapes.astype(np.float64)
    images = rng.integers(0, 256, (int(np.prod(MPI3D_SIZES)), 64, 64, 3), dtype=np.uint8)
    np.savez(directory / "stored.npz", images=images, factor_sizes=np.array(MPI3D_SIZES))
    np.savez_compressed(directory / "deflated.npz", images=images, factor_sizes=np.array(MPI3D_SIZES))
    return {"shapes3d (HDF5)": directory / "3dshapes.h5", "mpi3d (npz, stored)": directory / "stored.npz",
            "mpi3d (npz, deflated)": directory / "deflated.npz"}


def measure(batches: int = 200) -> list[dict]:
    """Per format: load seconds, MB/s, and ms per batch gather; see the module docstring."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in _write(pathlib.Path(tmp)).items():
            load = published.load_shapes3d if name.startswith("shapes3d") else published.load_mpi3d
            start = time.perf_counter()
            grid = load(path)
            np.asarray(grid.imgs).sum(dtype=np.uint64)  # touch every byte (a memory-mapped file reads lazily)
            seconds = time.perf_counter() - start
            batcher = make_batcher(grid.imgs, 64)
            gather = jax.jit(lambda key, step, data: batcher.batch_at(key, step, data).astype(jnp.float32) / 255.0)
            key = jax.random.key(0)
            jax.block_until_ready(gather(key, jnp.int32(0), batcher.data))
            start = time.perf_counter()
            for step in range(batches):
                out = gather(key, jnp.int32(step), batcher.data)
            jax.block_until_ready(out)
            per_batch = (time.perf_counter() - start) / batches
            megabytes, n = grid.imgs.nbytes / 1e6, grid.num_images
            rows.append({"format": name, "images": n, "megabytes": megabytes, "load_s": seconds,
                         "mb_per_s": megabytes / seconds, "whole_file_s": seconds * PUBLISHED_IMAGES[name] / n,
                         "batch_ms": 1e3 * per_batch})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="batch gathers timed per format")
    args = parser.parse_args(argv)
    print("| format | images | MB | load s | MB/s | whole published file s | batch of 64 ms |")
    print("|---|---|---|---|---|---|---|")
    for r in measure(args.batches):
        print(f"| {r['format']} | {r['images']:,} | {r['megabytes']:.0f} | {r['load_s']:.2f} | {r['mb_per_s']:.0f} | "
              f"{r['whole_file_s']:.0f} | {r['batch_ms']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
