"""Loaders for the published disentanglement data sets: 3D Shapes, MPI3D, Cars3D, smallNORB.

Each file format becomes one :class:`StoredGrid`: uint8 images and the factor
classes of every image, behind the ground-truth interface the metrics use
(``factor_sizes``, ``factor_names``, ``sample_factors(key, n)``,
``images(factors)``, ``iter_grid(batch_size)``), the same interface as
:class:`~decompvae.data.loaders.DSpritesFile`. Factors, sizes and the choice of
nuisance follow disentanglement_lib (``data/ground_truth/*.py``):

==========  ====================================  ===========================================  ============
name        file(s)                               factors (sizes)                              image
==========  ====================================  ===========================================  ============
shapes3d    ``3dshapes.h5`` (HDF5)                floor_hue 10, wall_hue 10, object_hue 10,     64×64×3
                                                  scale 8, shape 4, orientation 15
mpi3d       ``mpi3d_{toy,realistic,real}.npz``    object_color 6, object_shape 6,               64×64×3
                                                  object_size 2, camera_height 3,
                                                  background_color 3, horizontal_axis 40,
                                                  vertical_axis 40
cars3d      a folder of ``*.mat`` (one per car)   elevation 4, azimuth 24, object (files)       64×64×3
smallnorb   the six ``smallnorb-*-{dat,cat,info}  category 5, elevation 9, azimuth 18,          64×64×1
            .mat`` files                          lighting 6 (instance: nuisance)
==========  ====================================  ===========================================  ============

Images stay uint8 (a float32 copy of 3D Shapes would be 23.6 GB); ``images``
and ``iter_grid`` convert the rows they return to float32 in [0, 1]
(pixel / 255), and :func:`decompvae.data.sources.stored_training_data` trains on device-held uint8
images converted per batch. Memory of the whole uint8 array: 3D Shapes
480,000 × 12,288 B = 5.9 GB, MPI3D 1,036,800 × 12,288 B = 12.7 GB, Cars3D
183 cars = 0.2 GB, smallNORB 48,600 × 4,096 B = 0.2 GB.

Nothing here downloads: a missing file raises ``FileNotFoundError`` naming the
file expected and where it comes from; a malformed file (not the format, a
missing key, a wrong shape or dtype, a truncated file, an incomplete factor
grid) raises ``ValueError`` naming the file and what is wrong. The command
line prints either as one line and exits with status 2.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import struct
import zipfile
import zlib
from typing import Any, Iterator, Sequence

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import scipy.io

from decompvae._checks import check_dim
from decompvae.data.ground_truth import sample_uniform_factors
from decompvae.data.loaders import read_maybe_gzipped

Array = jax.Array

__all__ = [
    "CARS3D_FACTOR_NAMES",
    "MPI3D_FACTOR_NAMES",
    "MPI3D_FACTOR_SIZES",
    "MPI3D_FILENAMES",
    "SHAPES3D_FACTOR_NAMES",
    "SHAPES3D_FACTOR_SIZES",
    "SHAPES3D_FILENAME",
    "SMALLNORB_CHUNKS",
    "SMALLNORB_FACTOR_NAMES",
    "SMALLNORB_FACTOR_SIZES",
    "StoredGrid",
    "load_cars3d",
    "load_mpi3d",
    "load_shapes3d",
    "load_smallnorb",
    "read_norb_matrix",
]

SHAPES3D_FILENAME = "3dshapes.h5"
SHAPES3D_URL = "https://github.com/google-deepmind/3d-shapes (gs://3d-shapes/3dshapes.h5)"
SHAPES3D_FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SHAPES3D_FACTOR_SIZES = (10, 10, 10, 8, 4, 15)

MPI3D_FILENAMES = ("mpi3d_toy.npz", "mpi3d_realistic.npz", "mpi3d_real.npz")
MPI3D_URL = "https://github.com/rr-learning/disentanglement_dataset"
MPI3D_FACTOR_NAMES = (
    "object_color", "object_shape", "object_size", "camera_height", "background_color",
    "horizontal_axis", "vertical_axis",
)
MPI3D_FACTOR_SIZES = (6, 6, 2, 3, 3, 40, 40)
#: The decompvae extension of the MPI3D format: an optional npz key giving the factor sizes of a subset file.
MPI3D_SIZES_KEY = "factor_sizes"

CARS3D_URL = "http://www.scottreed.info/ (nips2015-analogy-data.tar.gz, data/cars/*.mat)"
CARS3D_FACTOR_NAMES = ("elevation", "azimuth", "object")
CARS3D_VIEWS = (24, 4)  # the trailing axes of 'im': azimuths, elevations

SMALLNORB_URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
SMALLNORB_CHUNKS = {
    "training": "smallnorb-5x46789x9x18x6x2x96x96-training",
    "testing": "smallnorb-5x01235x9x18x6x2x96x96-testing",
}
SMALLNORB_FACTOR_NAMES = ("category", "elevation", "azimuth", "lighting")
SMALLNORB_FACTOR_SIZES = (5, 9, 18, 6)

IMAGE_SIZE = 64
#: Images per call of the resizing program (the last chunk is padded: one compilation).
_RESIZE_CHUNK = 2048
#: Seed of the fixed nuisance choice of ``StoredGrid.images`` without a key.
_NUISANCE_SEED = 0


# ---------------------------------------------------------------------------
# The ground-truth object
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class StoredGrid:
    """Stored uint8 images of a complete factor grid, through the ground-truth interface.

    Every combination of ``factor_sizes`` has the same number R ≥ 1 of
    images: R = 1 for 3D Shapes, MPI3D and Cars3D; R = 10 for smallNORB,
    whose object instance is a nuisance (disentanglement_lib draws it at
    random for each observation). ``images(factors)`` returns, for R > 1, a
    fixed pseudo-random one of the R images of each combination (the same at
    every call: ``images`` stays a function of its input) or, given a
    ``key``, a uniform draw.

    ``images`` and ``iter_grid`` index the images on the host (or on the
    device once :func:`decompvae.data.sources.stored_training_data` has moved them there); they are
    not jittable.

    Attributes:
      imgs: uint8 ``[N, H, W, C]`` (NumPy, a memory map or a device array).
      row_factors: int32 ``[N, F]``, the factor classes of each row.
      factor_sizes: classes per factor; ``N = R · prod(factor_sizes)``.
      factor_names: one name per factor.
      path: the file or directory read.
      factor_values: the label value of each class, one array per factor, or None.
      row_nuisance: int ``[N]``, the nuisance class of each row (smallNORB's
        instance), or None.
      images_per_combination: R.
    """

    imgs: Any
    row_factors: np.ndarray
    factor_sizes: tuple[int, ...]
    factor_names: tuple[str, ...]
    path: str
    factor_values: tuple[np.ndarray, ...] | None = None
    row_nuisance: np.ndarray | None = None
    images_per_combination: int = dataclasses.field(init=False)
    _rows: np.ndarray | None = dataclasses.field(init=False, repr=False)  # [G, R]; None: row = flat index
    _fixed_pick: np.ndarray | None = dataclasses.field(init=False, repr=False)  # [G] in [0, R)

    def __post_init__(self):
        sizes = tuple(int(s) for s in self.factor_sizes)
        object.__setattr__(self, "factor_sizes", sizes)
        n, f = len(self.imgs), len(sizes)
        if self.row_factors.shape != (n, f) or len(self.factor_names) != f:
            raise ValueError(
                f"{self.path!r}: row_factors must have shape [N, F] = [{n}, {f}] with one name per factor; "
                f"got {self.row_factors.shape} and {len(self.factor_names)} names"
            )
        grid = math.prod(sizes)
        flat = np.ravel_multi_index(tuple(self.row_factors.T), sizes)
        counts = np.bincount(flat, minlength=grid)
        per = int(counts.max())
        if counts.min() != per:
            missing = np.unravel_index(int(np.argmin(counts)), sizes)
            raise ValueError(
                f"{self.path!r}: incomplete factor grid: factor classes {[int(c) for c in missing]} "
                f"(of sizes {sizes}) have {int(counts.min())} image(s), others {per}; every combination "
                "must have the same number of images"
            )
        object.__setattr__(self, "images_per_combination", per)
        in_order = per == 1 and bool(np.array_equal(flat, np.arange(n)))
        rows = None if in_order else np.argsort(flat, kind="stable").reshape(grid, per)
        object.__setattr__(self, "_rows", rows)
        pick = np.random.default_rng(_NUISANCE_SEED).integers(0, per, grid) if per > 1 else None
        object.__setattr__(self, "_fixed_pick", pick)

    @property
    def num_images(self) -> int:
        """N, the stored images (``R · prod(factor_sizes)``)."""
        return len(self.imgs)

    @property
    def is_full_grid(self) -> bool:
        """Always True: loading checked that every combination is present."""
        return True

    @property
    def image_shape(self) -> tuple[int, ...]:
        """``(H, W, C)`` of one image."""
        return tuple(int(d) for d in self.imgs.shape[1:])

    def sample_factors(self, key: Array, n: int) -> Array:
        """Uniform factor classes ``[n, F]`` (int32)."""
        return sample_uniform_factors(key, n, self.factor_sizes)

    def rows_of(self, factors, key: Array | None = None) -> np.ndarray:
        """Rows ``[n]`` of ``imgs`` holding factor classes ``[n, F]`` (one of R: fixed, or drawn with ``key``).

        Raises:
          ValueError: classes of the wrong shape or outside the grid.
        """
        factors = np.asarray(factors)
        f = len(self.factor_sizes)
        if factors.ndim != 2 or factors.shape[1] != f:
            raise ValueError(f"factors must have shape [n, {f}]; got {factors.shape}")
        if np.any(factors < 0) or np.any(factors >= np.asarray(self.factor_sizes)):
            raise ValueError(f"factors must lie in [0, {self.factor_sizes}) per column")
        index = np.ravel_multi_index(tuple(factors.T), self.factor_sizes)
        if self._rows is None:
            return index
        if self.images_per_combination == 1:
            return self._rows[index, 0]
        if key is None:
            pick = self._fixed_pick[index]
        else:
            pick = np.asarray(jax.random.randint(key, index.shape, 0, self.images_per_combination))
        return self._rows[index, pick]

    def images(self, factors, key: Array | None = None) -> Array:
        """Float32 images ``[n, H, W, C]`` in [0, 1] (pixel / 255) of classes ``[n, F]`` (host lookup)."""
        return _to_float(self.imgs[self.rows_of(factors, key)])

    def iter_grid(self, batch_size: int = 1024) -> Iterator[tuple[Array, Array]]:
        """Every stored image once, in file order (index order for the official files).

        Yields:
          ``(factors int32 [b, F], images float32 [b, H, W, C])``; for
          smallNORB each combination appears R = 10 times (once per instance).
        """
        check_dim("batch_size", batch_size)
        for start in range(0, self.num_images, batch_size):
            stop = start + batch_size
            yield jnp.asarray(self.row_factors[start:stop]), _to_float(self.imgs[start:stop])

    def with_images(self, imgs) -> "StoredGrid":
        """The same grid over another copy of the same images (e.g. the device-held one)."""
        if tuple(imgs.shape) != tuple(self.imgs.shape) or imgs.dtype != self.imgs.dtype:
            raise ValueError(f"images must have shape {self.imgs.shape} and dtype {self.imgs.dtype}")
        other = copy.copy(self)  # shares the row tables
        object.__setattr__(other, "imgs", imgs)
        return other


def _to_float(images) -> Array:
    """uint8 images → float32 in [0, 1]."""
    return jnp.asarray(images).astype(jnp.float32) / 255.0


# ---------------------------------------------------------------------------
# Shared checks
# ---------------------------------------------------------------------------


def _locate(path, filename: str, what: str, source: str) -> str:
    """``path`` itself, or ``filename`` inside the directory ``path``; FileNotFoundError if absent."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{what} file not found: {path!r}. Expected {filename!r} from {source} (nothing is downloaded "
            "automatically); pass its path or the directory holding it."
        )
    return path


def _check_array(path: str, key: str, array, dtype_kind: str, dtype_name: str, tail: Sequence[int | None]) -> None:
    """dtype kind and shape ``[N ≥ 1, *tail]`` (None in ``tail``: any size ≥ 1)."""
    if np.dtype(array.dtype).kind != dtype_kind or (dtype_kind == "u" and array.dtype != np.uint8):
        raise ValueError(f"{path!r}: {key!r} has dtype {array.dtype}, expected {dtype_name}")
    shape = tuple(array.shape)
    expected = "[N, " + ", ".join("*" if t is None else str(t) for t in tail) + "]"
    ok = len(shape) == 1 + len(tail) and shape[0] >= 1 and all(
        (s >= 1 if t is None else s == t) for s, t in zip(shape[1:], tail)
    )
    if not ok:
        raise ValueError(f"{path!r}: {key!r} has shape {shape}, expected {expected} with N ≥ 1")


@functools.partial(jax.jit, static_argnames=("size",))
def _resize_chunk(images: Array, size: int) -> Array:
    """uint8 ``[b, H, W, C]`` → uint8 ``[b, size, size, C]`` (antialiased Lanczos-3, rounded)."""
    b, _, _, c = images.shape
    x = images.astype(jnp.float32) / 255.0
    out = jax.image.resize(x, (b, size, size, c), method="lanczos3")  # antialias: PIL's ANTIALIAS is Lanczos
    return jnp.round(jnp.clip(out, 0.0, 1.0) * 255.0).astype(jnp.uint8)


def _resize_uint8(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 images ``[n, H, W, C]`` to ``[n, size, size, C]`` in chunks (no-op at the same size)."""
    check_dim("size", size)
    n, h, w, _ = images.shape
    if h == w == size:
        return np.asarray(images)
    chunk = min(_RESIZE_CHUNK, n)
    out = []
    for start in range(0, n, chunk):
        part = images[start : start + chunk]
        valid = len(part)
        if valid < chunk:
            part = np.concatenate([part, np.zeros((chunk - valid, *part.shape[1:]), part.dtype)])
        out.append(np.asarray(_resize_chunk(jnp.asarray(part), size))[:valid])
    return np.concatenate(out)


# ---------------------------------------------------------------------------
# 3D Shapes (HDF5)
# ---------------------------------------------------------------------------


def load_shapes3d(path) -> StoredGrid:
    """Load and validate 3D Shapes (Burgess & Kim 2018), ``3dshapes.h5``.

    Reads the datasets ``images`` (uint8 ``[N, 64, 64, 3]``) and ``labels``
    (float ``[N, 6]``: floor_hue, wall_hue, object_hue, scale, shape,
    orientation). The classes of each factor are the sorted unique values of
    its label column, so the sizes come from the file: (10, 10, 10, 8, 4, 15)
    for the official one, fewer for a test or subset file. The grid must be
    complete: N = prod(sizes) with every combination exactly once (any row
    order; the official file is in index order, orientation fastest). The
    images are read into one uint8 array (5.9 GB for the official file),
    never converted to float as a whole.

    Args:
      path: the ``.h5`` file, or a directory containing ``3dshapes.h5``.

    Returns:
      A :class:`StoredGrid` with ``factor_values`` the label values of each class.

    Raises:
      FileNotFoundError: no such file.
      ValueError: not a readable HDF5 file, a missing dataset, a wrong dtype
        or shape, non-finite labels, or an incomplete or repeated grid.
    """
    path = _locate(path, SHAPES3D_FILENAME, "3D Shapes", SHAPES3D_URL)
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path!r} is not a readable HDF5 file: {err}") from err
    with handle:
        missing = [k for k in ("images", "labels") if not isinstance(handle.get(k), h5py.Dataset)]
        if missing:
            raise ValueError(
                f"{path!r} lacks dataset(s) {missing}; found {sorted(handle.keys())}, expected ['images', 'labels']"
            )
        images, labels = handle["images"], handle["labels"]
        _check_array(path, "images", images, "u", "uint8", (64, 64, 3))
        _check_array(path, "labels", labels, "f", "a float type", (6,))
        if len(images) != len(labels):
            raise ValueError(f"{path!r}: 'images' has {len(images)} rows but 'labels' has {len(labels)}")
        labels = _read_h5(path, "labels", labels)
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"{path!r}: 'labels' holds NaN or inf")
        values, columns = zip(*(np.unique(labels[:, c], return_inverse=True) for c in range(6)))
        sizes = tuple(len(v) for v in values)
        if math.prod(sizes) != len(labels):
            raise ValueError(
                f"{path!r}: incomplete factor grid: the labels have {sizes} distinct values per factor, "
                f"{math.prod(sizes)} combinations, but the file holds {len(labels)} images"
            )
        factors = np.stack([c.reshape(-1) for c in columns], axis=1).astype(np.int32)
        _check_no_repeats(path, factors, sizes, "'labels'")
        imgs = _read_h5(path, "images", images)
    return StoredGrid(imgs, factors, sizes, SHAPES3D_FACTOR_NAMES, path, factor_values=tuple(values))


def _read_h5(path: str, key: str, dataset) -> np.ndarray:
    """A whole HDF5 dataset into one NumPy array of its own dtype."""
    try:
        out = np.empty(dataset.shape, dataset.dtype)
        dataset.read_direct(out)
    except (OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path!r}: cannot read {key!r} (truncated or corrupt file?): {err}") from err
    return out


def _check_no_repeats(path: str, factors: np.ndarray, sizes: tuple[int, ...], what: str) -> None:
    flat = np.ravel_multi_index(tuple(factors.T), sizes)
    counts = np.bincount(flat, minlength=math.prod(sizes))
    if counts.max() > 1:
        repeated = np.unravel_index(int(np.argmax(counts)), sizes)
        raise ValueError(
            f"{path!r}: {what} lists factor classes {[int(c) for c in repeated]} {int(counts.max())} times "
            "(each combination must appear exactly once)"
        )


# ---------------------------------------------------------------------------
# MPI3D (npz)
# ---------------------------------------------------------------------------


def load_mpi3d(path, *, factor_sizes: Sequence[int] | None = None) -> StoredGrid:
    """Load and validate an MPI3D archive (Gondal et al. 2019): toy, realistic or real.

    The published ``.npz`` holds one key, ``images`` (uint8
    ``[1036800, 64, 64, 3]``), in index order of the factor sizes
    (6, 6, 2, 3, 3, 40, 40) (vertical_axis fastest), and no labels. The
    factor sizes are, first found: the ``factor_sizes`` argument; the
    archive's optional ``factor_sizes`` key (int ``[F]``, a **decompvae
    extension** for subsets and test files: N must equal its product); the
    published sizes. Names are the published ones for 7 factors,
    ``factor_0``… otherwise. (An earlier version of disentanglement_lib's
    ``mpi3d.py`` used sizes (4, 4, 2, 3, 3, 40, 40) for ``mpi3d_toy``; pass
    those as ``factor_sizes`` for a file of 460,800 images.)

    An uncompressed archive member (written by ``np.savez``) is
    memory-mapped, so only the rows used are read until the data go to the
    device; a compressed one (``np.savez_compressed``) cannot be mapped and is
    read into memory whole (12.7 GB for a full file).

    Args:
      path: the ``.npz`` file, or a directory holding exactly one of
        ``mpi3d_toy.npz``, ``mpi3d_realistic.npz``, ``mpi3d_real.npz``.
      factor_sizes: the grid's sizes (default: from the file, else published).

    Returns:
      A :class:`StoredGrid`.

    Raises:
      FileNotFoundError: no such file.
      ValueError: not an npz archive, no ``images``, a wrong dtype or shape,
        a truncated member, or N ≠ prod(factor sizes).
    """
    path = _locate_mpi3d(path)
    # The file is opened here so that it is closed whatever np.load does.
    with open(path, "rb") as handle:
        return _read_mpi3d(path, handle, factor_sizes)


def _read_mpi3d(path: str, handle, factor_sizes) -> StoredGrid:
    try:
        archive = np.load(handle, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path!r} is not a readable .npz archive: {err}") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path!r} is a single .npy array, not an .npz archive with an 'images' key")
    with archive:
        if "images" not in archive.files:
            raise ValueError(f"{path!r} lacks key 'images'; found {sorted(archive.files)}")
        sizes = factor_sizes
        if sizes is None and MPI3D_SIZES_KEY in archive.files:
            sizes = _npz_member(path, archive, MPI3D_SIZES_KEY)
            if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or len(sizes) == 0:
                raise ValueError(f"{path!r}: {MPI3D_SIZES_KEY!r} must be a non-empty 1-D integer array; got "
                                 f"{sizes.dtype} {sizes.shape}")
        sizes = MPI3D_FACTOR_SIZES if sizes is None else tuple(int(s) for s in np.asarray(sizes).reshape(-1))
        if not sizes or any(s < 1 for s in sizes):
            raise ValueError(f"{path!r}: factor sizes must be positive; got {sizes}")
        images = _npz_images(path, archive)
    _check_array(path, "images", images, "u", "uint8", (64, 64, 3))
    if len(images) != math.prod(sizes):
        raise ValueError(
            f"{path!r}: 'images' has {len(images)} rows but the factor sizes {sizes} make {math.prod(sizes)} "
            f"combinations (the published files hold {math.prod(MPI3D_FACTOR_SIZES)}; for a subset give "
            f"factor_sizes or store a {MPI3D_SIZES_KEY!r} key)"
        )
    names = MPI3D_FACTOR_NAMES if len(sizes) == len(MPI3D_FACTOR_NAMES) else tuple(
        f"factor_{i}" for i in range(len(sizes))
    )
    factors = np.indices(sizes, dtype=np.int32).reshape(len(sizes), -1).T  # [N, F], last factor fastest
    return StoredGrid(images, factors, sizes, names, path)


def _locate_mpi3d(path) -> str:
    path = os.fspath(path)
    if os.path.isdir(path):
        found = [name for name in MPI3D_FILENAMES if os.path.isfile(os.path.join(path, name))]
        if len(found) > 1:
            raise ValueError(f"{path!r} holds several MPI3D archives {found}; pass the file to use")
        if not found:
            raise FileNotFoundError(
                f"MPI3D archive not found in {path!r}: expected one of {list(MPI3D_FILENAMES)} from {MPI3D_URL} "
                "(nothing is downloaded automatically)"
            )
        return os.path.join(path, found[0])
    return _locate(path, MPI3D_FILENAMES[0], "MPI3D", MPI3D_URL)


def _npz_member(path: str, archive, key: str) -> np.ndarray:
    try:
        return archive[key]
    except (ValueError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path!r}: key {key!r} is not a readable plain array (truncated or corrupt?): {err}") from err


def _npz_images(path: str, archive) -> np.ndarray:
    """``images``: memory-mapped when stored uncompressed, else read into memory."""
    mapped = _map_stored_member(path, "images.npy")
    return _npz_member(path, archive, "images") if mapped is None else mapped


def _map_stored_member(path: str, member: str) -> np.ndarray | None:
    """A read-only memory map of an uncompressed ``.npy`` member of a zip archive; None if compressed."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)  # the local file header: its name and extra field lengths at bytes 26-29
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"{path!r}: corrupt zip entry {member!r}")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        handle.seek(info.header_offset + 30 + name_len + extra_len)
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                return None  # let np.load read other versions
        except ValueError as err:
            raise ValueError(f"{path!r}: {member!r} is not a readable .npy array: {err}") from err
        offset = handle.tell()
    if dtype.hasobject:
        raise ValueError(f"{path!r}: {member!r} holds Python objects, not a plain array")
    nbytes = math.prod(shape) * dtype.itemsize
    if os.path.getsize(path) < offset + nbytes:
        raise ValueError(
            f"{path!r}: {member!r} is truncated: its header promises {shape} of {dtype} ({nbytes} bytes) but the "
            f"file ends {offset + nbytes - os.path.getsize(path)} bytes short"
        )
    if nbytes == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


# ---------------------------------------------------------------------------
# Cars3D (a folder of .mat files)
# ---------------------------------------------------------------------------


def load_cars3d(path, *, size: int = IMAGE_SIZE) -> StoredGrid:
    """Load and validate Cars3D (Reed et al. 2015): one ``.mat`` file per car model.

    Each file's ``im`` is uint8 ``[128, 128, 3, 24, 4]``: 24 azimuths × 4
    elevations of one car (any square H×W is accepted and resized). Images
    are resized to ``size``×``size`` (antialiased Lanczos-3, as
    disentanglement_lib's PIL ``thumbnail``; rounded back to uint8). Factors,
    as disentanglement_lib: elevation (4), azimuth (24), object (one class
    per file, files in sorted name order: 183 for the published folder).

    Args:
      path: the directory holding the ``*.mat`` files.
      size: output height and width.

    Returns:
      A :class:`StoredGrid` of ``[4·24·n_files, size, size, 3]`` images.

    Raises:
      FileNotFoundError: no such directory, or no ``.mat`` file in it.
      ValueError: a file that is not a readable MATLAB file, lacks ``im``, or
        has a wrong dtype or shape.
    """
    check_dim("size", size)
    directory = os.fspath(path)
    source = f"Expected the Cars3D folder of per-car .mat files from {CARS3D_URL} (nothing is downloaded automatically)"
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Cars3D directory not found: {directory!r}. {source}.")
    files = sorted(name for name in os.listdir(directory) if name.endswith(".mat"))
    if not files:
        raise FileNotFoundError(f"no .mat files in {directory!r}. {source}.")
    azimuths, elevations = CARS3D_VIEWS
    imgs = np.empty((elevations, azimuths, len(files), size, size, 3), np.uint8)
    for i, name in enumerate(files):
        im = _read_car(os.path.join(directory, name))  # [H, W, 3, azimuth, elevation]
        views = np.transpose(im, (4, 3, 0, 1, 2))  # [elevation, azimuth, H, W, 3]
        flat = views.reshape(elevations * azimuths, *views.shape[2:])
        imgs[:, :, i] = _resize_uint8(flat, size).reshape(elevations, azimuths, size, size, 3)
    sizes = (elevations, azimuths, len(files))
    factors = np.indices(sizes, dtype=np.int32).reshape(3, -1).T
    return StoredGrid(imgs.reshape(-1, size, size, 3), factors, sizes, CARS3D_FACTOR_NAMES, directory)


_MAT_ERRORS = (ValueError, OSError, EOFError, TypeError, NotImplementedError, zlib.error, scipy.io.matlab.MatReadError)


def _read_car(path: str) -> np.ndarray:
    try:
        contents = scipy.io.loadmat(path, variable_names=["im"])
    except _MAT_ERRORS as err:
        raise ValueError(f"{path!r} is not a readable MATLAB (v5) file (truncated or corrupt?): {err}") from err
    if "im" not in contents:
        keys = sorted(name for name, _, _ in scipy.io.whosmat(path))
        raise ValueError(f"{path!r} lacks variable 'im'; found {keys}")
    im = contents["im"]
    azimuths, elevations = CARS3D_VIEWS
    if im.dtype != np.uint8:
        raise ValueError(f"{path!r}: 'im' has dtype {im.dtype}, expected uint8")
    if im.ndim != 5 or im.shape[2:] != (3, azimuths, elevations) or im.shape[0] != im.shape[1] or im.shape[0] < 1:
        raise ValueError(f"{path!r}: 'im' has shape {im.shape}, expected [H, H, 3, {azimuths}, {elevations}] "
                         "(published: [128, 128, 3, 24, 4])")
    return im


# ---------------------------------------------------------------------------
# smallNORB (binary matrix files)
# ---------------------------------------------------------------------------

_NORB_DTYPES = {
    0x1E3D4C51: np.dtype("<f4"),
    0x1E3D4C53: np.dtype("<f8"),
    0x1E3D4C54: np.dtype("<i4"),
    0x1E3D4C55: np.dtype(np.uint8),
    0x1E3D4C56: np.dtype("<i2"),
}
_NORB_MAX_DIMS = 16


def read_norb_matrix(path) -> np.ndarray:
    """Read one NORB binary matrix file (raw or gzip-compressed).

    Header, little-endian int32: the magic number (0x1E3D4C55 uint8,
    0x1E3D4C54 int32, 0x1E3D4C51 float32, 0x1E3D4C53 float64, 0x1E3D4C56
    int16), the number of dimensions ndim, then max(ndim, 3) sizes of which
    the first ndim count; then the data, row-major.

    Args:
      path: the file.

    Returns:
      The array (native byte order).

    Raises:
      FileNotFoundError: no such file.
      ValueError: an unknown magic number, a bad ndim or size, or a data
        length that does not match the header (a truncated file).
    """
    path = os.fspath(path)
    raw = read_maybe_gzipped(path)
    if len(raw) < 8:
        raise ValueError(f"{path!r}: too short for a NORB matrix header ({len(raw)} bytes)")
    magic, ndim = struct.unpack("<ii", raw[:8])
    if magic not in _NORB_DTYPES:
        known = ", ".join(f"0x{m:08X}" for m in _NORB_DTYPES)
        raise ValueError(f"{path!r}: bad NORB magic number 0x{magic & 0xFFFFFFFF:08X}; expected one of {known}")
    if not 1 <= ndim <= _NORB_MAX_DIMS:
        raise ValueError(f"{path!r}: NORB header has {ndim} dimensions; expected 1…{_NORB_MAX_DIMS}")
    stored = max(ndim, 3)
    header = 8 + 4 * stored
    if len(raw) < header:
        raise ValueError(f"{path!r}: header promises {stored} sizes but the file ends after {len(raw)} bytes")
    shape = struct.unpack(f"<{stored}i", raw[8:header])[:ndim]
    if any(s < 0 for s in shape):
        raise ValueError(f"{path!r}: negative size in the NORB header {shape}")
    dtype = _NORB_DTYPES[magic]
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path!r}: header says shape {shape} of {dtype} ({expected} data bytes) but the file holds "
            f"{len(raw) - header} data bytes"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_norb(directory: str, name: str) -> str:
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"smallNORB file {name!r} (or {name + '.gz'!r}) not found in {directory!r}; it comes from "
        f"{SMALLNORB_URL} (nothing is downloaded automatically)"
    )


def _read_norb_expecting(path: str, dtype, ndim: int, what: str) -> np.ndarray:
    array = read_norb_matrix(path)
    if array.dtype != dtype or array.ndim != ndim:
        raise ValueError(f"{path!r}: a {array.dtype} matrix of shape {array.shape}; expected the {what}")
    return array


def _read_norb_split(directory: str, chunk: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One split's ``dat`` [N, 2, H, H] uint8, ``cat`` [N] and ``info`` [N, 4] int32, checked against each other."""
    dat_path, cat_path, info_path = (_find_norb(directory, f"{chunk}-{part}.mat") for part in ("dat", "cat", "info"))
    dat = _read_norb_expecting(dat_path, np.uint8, 4, "uint8 images [N, 2, 96, 96]")
    if dat.shape[1] != 2 or dat.shape[2] != dat.shape[3] or dat.shape[0] < 1 or dat.shape[2] < 1:
        raise ValueError(f"{dat_path!r}: images have shape {dat.shape}, expected [N, 2, H, H] (published [N, 2, 96, 96])")
    cat = _read_norb_expecting(cat_path, np.int32, 1, "int32 categories [N]")
    info = _read_norb_expecting(info_path, np.int32, 2, "int32 info [N, 4]")
    if info.shape[1] != 4:
        raise ValueError(f"{info_path!r}: info has shape {info.shape}, expected [N, 4]")
    if not len(dat) == len(cat) == len(info):
        raise ValueError(f"{dat_path!r}: {len(dat)} images but {len(cat)} categories and {len(info)} info rows")
    if cat.min() < 0 or info.min() < 0:
        raise ValueError(f"{cat_path!r} / {info_path!r}: negative category or info value")
    if np.any(info[:, 2] % 2):
        odd = int(info[info[:, 2] % 2 == 1, 2][0])
        raise ValueError(f"{info_path!r}: azimuths must be even (0, 2, …, 34); found {odd}")
    return dat, cat, info


def load_smallnorb(path, *, size: int = IMAGE_SIZE, splits: Sequence[str] = ("training", "testing")) -> StoredGrid:
    """Load and validate smallNORB (LeCun et al. 2004) from its binary matrix files.

    Reads, for each split, ``smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat``
    (and ``…5x01235…-testing-…``), raw or ``.gz``: ``dat`` uint8
    ``[N, 2, 96, 96]`` (two cameras), ``cat`` int32 ``[N]`` (category),
    ``info`` int32 ``[N, 4]`` (instance, elevation, azimuth 0, 2, …, 34,
    lighting). As disentanglement_lib: both splits together (24,300 + 24,300
    images), the first camera, resized to ``size``×``size`` (antialiased
    Lanczos-3, rounded to uint8; single channel); factors category (5),
    elevation (9), azimuth (18, the stored value / 2), lighting (6); the
    instance is a nuisance, so each combination has 10 images (see
    :class:`StoredGrid` for which one ``images`` returns). Factor sizes are
    the largest class + 1 of each factor; every combination must have the
    same number of images, and no (combination, instance) may repeat.

    Args:
      path: the directory holding the files.
      size: output height and width.
      splits: which of ``"training"``, ``"testing"`` to read.

    Returns:
      A :class:`StoredGrid` of uint8 ``[N, size, size, 1]``; the instance
      of each row (int32 ``[N]``) is its ``row_nuisance``.

    Raises:
      FileNotFoundError: a file is missing (the message names it and its source).
      ValueError: a bad header, dtype or shape, counts that differ, values
        out of range, odd azimuths, or an incomplete grid.
    """
    check_dim("size", size)
    directory = os.fspath(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"smallNORB directory not found: {directory!r}; expected the files {SMALLNORB_CHUNKS['training']}-"
            f"{{dat,cat,info}}.mat (and -testing) from {SMALLNORB_URL}"
        )
    unknown = [s for s in splits if s not in SMALLNORB_CHUNKS]
    if unknown or not splits:
        raise ValueError(f"smallNORB splits must be a non-empty subset of {list(SMALLNORB_CHUNKS)}; got {list(splits)}")
    images, labels = [], []
    for split in splits:
        dat, cat, info = _read_norb_split(directory, SMALLNORB_CHUNKS[split])
        images.append(_resize_uint8(dat[:, 0, :, :, None], size))
        labels.append(np.column_stack([cat, info]))
    labels = np.concatenate(labels).astype(np.int32)  # [N, 5]: category, instance, elevation, azimuth, lighting
    factors = np.stack([labels[:, 0], labels[:, 2], labels[:, 3] // 2, labels[:, 4]], axis=1)
    sizes = tuple(int(m) + 1 for m in factors.max(axis=0))
    full = np.concatenate([factors, labels[:, 1:2]], axis=1)
    _check_no_repeats(directory, full, sizes + (int(labels[:, 1].max()) + 1,), "the smallNORB files")
    return StoredGrid(np.concatenate(images), factors, sizes, SMALLNORB_FACTOR_NAMES, directory,
                      row_nuisance=labels[:, 1].copy())
