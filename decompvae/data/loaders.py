"""Loaders for real data files, validated, with errors that say what is wrong.

- The official dSprites archive ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``
  (or a subset of its rows) → ``DSpritesFile``, the same ground-truth
  interface as the procedural renderer.
- Fashion-MNIST IDX files (raw or gzipped) → float32 images in [0, 1].
- scikit-learn's bundled 8×8 handwritten digits → float32 images in [0, 1].

Nothing here downloads: a missing file raises ``FileNotFoundError`` naming the
file expected and where it comes from. Malformed files raise ``ValueError``
naming the key, shape, dtype or magic number at fault.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import zipfile
import zlib
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits as sklearn_digits

from decompvae._checks import check_choice, check_dim
from decompvae.data import sprites
from decompvae.data.ground_truth import sample_uniform_factors

Array = jax.Array

__all__ = [
    "DSPRITES_FILENAME",
    "DSPRITES_URL",
    "DSpritesFile",
    "FASHION_MNIST_URL",
    "dsprites",
    "load_digits",
    "load_dsprites",
    "load_fashion_mnist",
    "read_idx",
    "resize_images",
]

DSPRITES_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_URL = "https://github.com/deepmind/dsprites-dataset"
FASHION_MNIST_URL = "https://github.com/zalandoresearch/fashion-mnist (data/fashion/)"

# key -> (dtype, shape after the row axis)
_DSPRITES_KEYS = {
    "imgs": (np.dtype(np.uint8), (64, 64)),
    "latents_values": (np.dtype(np.float64), (6,)),
    "latents_classes": (np.dtype(np.int64), (6,)),
}
_VALUE_TOLERANCE = 1e-6


# ---------------------------------------------------------------------------
# dSprites
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class DSpritesFile:
    """Official dSprites rows through the ground-truth interface.

    Images live in host memory (NumPy); ``images`` looks them up on the host,
    so it is not jittable (to train on device, hand ``imgs`` to
    ``decompvae.data.make_batcher``). With the full official grid every
    combination is present; a subset file answers only the combinations it
    holds (``images`` raises ``KeyError`` for the others) and
    ``sample_factors`` draws uniformly among its rows.

    Attributes:
      imgs: uint8 ``[N, 64, 64]`` in {0, 1}, the file's images in file order.
      factors: int32 ``[N, 5]`` factor classes of each row (colour dropped).
      path: the file read.
      is_full_grid: True when the file holds all 737,280 combinations in
        official order (row = flat index).
    """

    imgs: np.ndarray
    factors: np.ndarray
    path: str
    factor_sizes: tuple[int, ...] = dataclasses.field(default=sprites.FACTOR_SIZES, init=False)
    factor_names: tuple[str, ...] = dataclasses.field(default=sprites.FACTOR_NAMES, init=False)
    is_full_grid: bool = dataclasses.field(init=False)
    _order: np.ndarray = dataclasses.field(init=False, repr=False)  # rows sorted by flat index
    _sorted_index: np.ndarray = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        if self.factors.ndim != 2 or self.factors.shape[1] != 5 or len(self.factors) != len(self.imgs):
            raise ValueError(
                f"factors must have shape [N, 5] with N = len(imgs) = {len(self.imgs)}; "
                f"got {self.factors.shape}"
            )
        flat = np.ravel_multi_index(tuple(self.factors.T), self.factor_sizes)
        order = np.argsort(flat, kind="stable")
        full = len(flat) == sprites.NUM_IMAGES and bool(np.array_equal(flat, np.arange(len(flat))))
        object.__setattr__(self, "is_full_grid", full)
        object.__setattr__(self, "_order", order)
        object.__setattr__(self, "_sorted_index", flat[order])

    @property
    def num_images(self) -> int:
        """The number of rows in the file (737,280 for the official one)."""
        return len(self.imgs)

    def sample_factors(self, key: Array, n: int) -> Array:
        """Factor classes ``[n, 5]`` (int32): uniform on the grid, or on the rows of a subset."""
        if self.is_full_grid:
            return sample_uniform_factors(key, n, self.factor_sizes)
        rows = jax.random.randint(key, (n,), 0, self.num_images)
        return jnp.asarray(self.factors)[rows]

    def rows_of(self, factors) -> np.ndarray:
        """File rows ``[n]`` holding the factor classes ``[n, 5]`` (host side).

        Raises:
          ValueError: classes outside the grid or of the wrong shape.
          KeyError: a combination missing from a subset file.
        """
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] != 5:
            raise ValueError(f"factors must have shape [n, 5]; got {factors.shape}")
        if np.any(factors < 0) or np.any(factors >= np.asarray(self.factor_sizes)):
            raise ValueError(f"factors must lie in [0, {self.factor_sizes}) per column")
        index = np.ravel_multi_index(tuple(factors.T), self.factor_sizes)
        if self.is_full_grid:
            return index
        pos = np.clip(np.searchsorted(self._sorted_index, index), 0, self.num_images - 1)
        found = self._sorted_index[pos] == index
        if not np.all(found):
            missing = factors[~found][0].tolist()
            raise KeyError(f"factor classes {missing} are not in {self.path!r} (a subset file)")
        return self._order[pos]

    def images(self, factors) -> Array:
        """Float32 images ``[n, 64, 64, 1]`` in {0, 1} of classes ``[n, 5]`` (host lookup)."""
        return jnp.asarray(self.imgs[self.rows_of(factors)][..., None], jnp.float32)

    def iter_grid(self, batch_size: int = 1024) -> Iterator[tuple[Array, Array]]:
        """Every row in file order (official index order for the full file).

        Yields:
          ``(factors int32 [b, 5], images float32 [b, 64, 64, 1])``.
        """
        check_dim("batch_size", batch_size)
        for start in range(0, self.num_images, batch_size):
            stop = start + batch_size
            yield (
                jnp.asarray(self.factors[start:stop]),
                jnp.asarray(self.imgs[start:stop][..., None], jnp.float32),
            )


def load_dsprites(path) -> DSpritesFile:
    """Load and validate the official dSprites archive (or a subset of its rows).

    Reads only the keys ``imgs``, ``latents_values`` and ``latents_classes``
    with ``allow_pickle=False`` (the official ``metadata`` entry, a pickled
    dict, is never unpickled). Checks: the three keys exist; dtypes uint8,
    float64, int64; shapes ``[N, 64, 64]``, ``[N, 6]``, ``[N, 6]`` with the
    same N ≥ 1; images in {0, 1}; colour class 0 / value 1; classes inside
    the official grid; values equal to the official values of the classes;
    no combination twice. A file of any N passing these checks loads; the
    index mapping (``is_full_grid``) needs all 737,280 rows in official order.

    Args:
      path: the ``.npz`` file, or a directory containing
        ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``.

    Returns:
      A ``DSpritesFile``.

    Raises:
      FileNotFoundError: no such file (the message names the expected file
        and its source).
      ValueError: not an npz archive, or a check above failed (the message
        names the key and what is wrong).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, DSPRITES_FILENAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"dSprites file not found: {path!r}. Expected the official archive "
            f"{DSPRITES_FILENAME!r} from {DSPRITES_URL} (nothing is downloaded "
            "automatically); pass its path or the directory holding it."
        )
    # The file is opened here so that it is closed whatever np.load does.
    with open(path, "rb") as handle:
        arrays = _read_npz(path, handle)
    imgs, values, classes = arrays["imgs"], arrays["latents_values"], arrays["latents_classes"]
    counts = {k: len(a) for k, a in arrays.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"{path!r}: keys disagree on the number of rows: {counts}")
    if imgs.max() > 1:
        raise ValueError(f"{path!r}: 'imgs' must be binary (0/1); found maximum {int(imgs.max())}")
    _check_latents(path, values, classes)
    factors = sprites.factors_from_latents_classes(classes)
    flat = np.ravel_multi_index(tuple(factors.T), sprites.FACTOR_SIZES)
    if len(np.unique(flat)) != len(flat):
        raise ValueError(f"{path!r}: 'latents_classes' lists some factor combination more than once")
    return DSpritesFile(imgs=imgs, factors=factors, path=path)


def _read_npz(path: str, handle) -> dict[str, np.ndarray]:
    """The three official arrays, with dtype and shape checked."""
    try:
        archive = np.load(handle, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path!r} is not a readable .npz archive: {err}") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path!r} is a single .npy array, not an .npz archive with {list(_DSPRITES_KEYS)}")
    arrays = {}
    with archive:
        missing = [k for k in _DSPRITES_KEYS if k not in archive.files]
        if missing:
            raise ValueError(
                f"{path!r} lacks key(s) {missing}; found {sorted(archive.files)}, "
                f"expected {list(_DSPRITES_KEYS)}"
            )
        for key, (dtype, tail) in _DSPRITES_KEYS.items():
            try:
                array = archive[key]
            except (ValueError, zipfile.BadZipFile, OSError, EOFError) as err:
                raise ValueError(f"{path!r}: key {key!r} is not a plain {dtype} array: {err}") from err
            if array.dtype != dtype:
                raise ValueError(f"{path!r}: {key!r} has dtype {array.dtype}, expected {dtype}")
            if array.ndim != 1 + len(tail) or array.shape[1:] != tail or len(array) == 0:
                raise ValueError(
                    f"{path!r}: {key!r} has shape {array.shape}, expected "
                    f"[N, {', '.join(map(str, tail))}] with N ≥ 1"
                )
            arrays[key] = array
    return arrays


def _check_latents(path: str, values: np.ndarray, classes: np.ndarray) -> None:
    """Classes inside the grid and values equal to the official values."""
    sizes = (1,) + sprites.FACTOR_SIZES
    names = ("colour",) + sprites.FACTOR_NAMES
    for col, (name, size) in enumerate(zip(names, sizes)):
        column = classes[:, col]
        if column.min() < 0 or column.max() >= size:
            raise ValueError(
                f"{path!r}: 'latents_classes' column {col} ({name}) must lie in "
                f"[0, {size}); found [{column.min()}, {column.max()}]"
            )
    expected = sprites.latents_values(classes[:, 1:])
    error = np.abs(values - expected)
    if not np.all(error <= _VALUE_TOLERANCE):
        col = int(np.argmax(error.max(axis=0)))
        row = int(np.argmax(error[:, col]))
        raise ValueError(
            f"{path!r}: 'latents_values' column {col} ({names[col]}) disagrees with the "
            f"official value of its class: row {row} has {values[row, col]!r}, "
            f"class {classes[row, col]} means {expected[row, col]!r}"
        )


# ---------------------------------------------------------------------------
# IDX (Fashion-MNIST)
# ---------------------------------------------------------------------------

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_maybe_gzipped(path: str) -> bytes:
    """The bytes of ``path``, gunzipped when they start with gzip's magic number.

    Raises:
      FileNotFoundError: no such file.
      ValueError: gzip data that does not decompress (named with the path).
    """
    with open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path!r}: corrupt gzip data: {err}") from err
    return raw


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), raw or gzip-compressed.

    The header is a big-endian magic number ``0x0000TTNN`` (TT the element
    type, NN the rank), then NN big-endian uint32 sizes, then the data.
    Compression is detected from the content (gzip magic 1f 8b), not the name.

    Args:
      path: the file.

    Returns:
      The array, shape the header's sizes, dtype from the type code (native
      byte order).

    Raises:
      FileNotFoundError: no such file.
      ValueError: bad magic number, unknown type code, or a data length that
        does not match the header.
    """
    path = os.fspath(path)
    raw = read_maybe_gzipped(path)
    if len(raw) < 4:
        raise ValueError(f"{path!r}: too short for an IDX header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    code, rank = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or code not in _IDX_DTYPES or rank == 0:
        raise ValueError(
            f"{path!r}: bad IDX magic number {magic} (0x{magic:08X}); expected 0x0000TTNN "
            f"with type TT in {[f'0x{c:02X}' for c in _IDX_DTYPES]} and rank NN ≥ 1"
        )
    header = 4 + 4 * rank
    if len(raw) < header:
        raise ValueError(f"{path!r}: header promises {rank} sizes but the file ends after {len(raw)} bytes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path!r}: header says shape {shape} of {dtype} ({expected} data bytes) "
            f"but the file holds {len(raw) - header} data bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find_idx(directory: str, name: str) -> str:
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"Fashion-MNIST file {name!r} (or {name + '.gz'!r}) not found in {directory!r}; "
        f"it comes from {FASHION_MNIST_URL} (nothing is downloaded automatically)"
    )


def load_fashion_mnist(directory, split: str = "train", *, resize: int | None = None):
    """Load Fashion-MNIST from its IDX files, raw or gzipped.

    Expects ``{train,t10k}-images-idx3-ubyte[.gz]`` (magic 2051 = 0x00000803,
    uint8 ``[N, 28, 28]``) and ``{train,t10k}-labels-idx1-ubyte[.gz]`` (magic
    2049 = 0x00000801, uint8 ``[N]`` in 0…9) in ``directory``.

    Args:
      directory: folder holding the files.
      split: ``"train"`` (60k in the official files) or ``"test"`` (10k).
      resize: ``None`` keeps 28×28; an int S resizes to S×S (bilinear, e.g.
        32 as in the paper).

    Returns:
      ``(images, labels)``: float32 ``[N, H, W, 1]`` in [0, 1] (pixel/255),
      int32 ``[N]``.

    Raises:
      FileNotFoundError: a file is missing (the message names it and its source).
      ValueError: wrong magic number, shape, label range, or counts that differ.
    """
    check_choice("split", split, ("train", "test"))
    directory = os.fspath(directory)
    prefix = "train" if split == "train" else "t10k"
    images_path = _find_idx(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_idx(directory, f"{prefix}-labels-idx1-ubyte")
    images = _read_idx_expecting(images_path, magic=0x00000803, what="IDX3 uint8 image file")
    labels = _read_idx_expecting(labels_path, magic=0x00000801, what="IDX1 uint8 label file")
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path!r}: images have shape {images.shape}, expected [N, 28, 28]")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path!r} has {len(images)} images but {labels_path!r} has {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path!r}: labels must lie in 0…9; found {int(labels.max())}")
    out = images.astype(np.float32)[..., None] / 255.0
    if resize is not None:
        out = resize_images(out, resize)
    return jnp.asarray(out), jnp.asarray(labels, jnp.int32)


def _read_idx_expecting(path: str, *, magic: int, what: str) -> np.ndarray:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] == _GZIP_MAGIC:
        with gzip.open(path, "rb") as handle:
            try:
                head = handle.read(4)
            except (OSError, EOFError, zlib.error) as err:
                raise ValueError(f"{path!r}: corrupt gzip data: {err}") from err
    found = int.from_bytes(head, "big") if len(head) == 4 else None
    if found != magic:
        shown = "none (file too short)" if found is None else f"{found} (0x{found:08X})"
        raise ValueError(f"{path!r}: magic number {shown}, expected {magic} (0x{magic:08X}) for an {what}")
    return read_idx(path)


def dsprites(path=None):
    """dSprites through the ground-truth interface.

    Args:
      path: ``None`` for the procedural renderer; otherwise the official
        ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (or a subset of
        it, see ``decompvae.data.loaders.load_dsprites``).

    Returns:
      A ``ProceduralDSprites`` or a ``DSpritesFile``; both have
      ``factor_sizes == (3, 6, 40, 32, 32)``, ``sample_factors(key, n)``,
      ``images(factors)`` and ``iter_grid(batch_size)``.
    """
    if path is None:
        return sprites.ProceduralDSprites()
    return load_dsprites(path)


# ---------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------

DIGITS_TRAIN_SIZE = 1500  # first rows train, the remaining 297 test


def load_digits(split: str = "all", *, resize: int | None = None):
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, no download).

    Args:
      split: ``"all"``; ``"train"`` (the first 1,500 rows) or ``"test"`` (the
        remaining 297): a fixed, documented split.
      resize: ``None`` keeps 8×8; an int S resizes to S×S (bilinear).

    Returns:
      ``(images, labels)``: float32 ``[N, H, W, 1]`` in [0, 1] (pixel/16),
      int32 ``[N]`` in 0…9.
    """
    check_choice("split", split, ("all", "train", "test"))
    bunch = sklearn_digits()
    images = bunch.images.astype(np.float32)[..., None] / 16.0
    labels = bunch.target.astype(np.int32)
    rows = {
        "all": slice(None),
        "train": slice(None, DIGITS_TRAIN_SIZE),
        "test": slice(DIGITS_TRAIN_SIZE, None),
    }[split]
    images, labels = images[rows], labels[rows]
    if resize is not None:
        images = resize_images(images, resize)
    return jnp.asarray(images), jnp.asarray(labels)


def resize_images(images, size: int, *, method: str = "linear") -> Array:
    """Resize square images ``[N, H, W, C]`` to ``[N, size, size, C]``, clipped to [0, 1].

    Args:
      images: float images ``[N, H, W, C]`` in [0, 1].
      size: target height and width (static).
      method: a ``jax.image.resize`` method (``"linear"``, ``"cubic"``, …).

    Returns:
      float32 ``[N, size, size, C]``; cubic overshoot is clipped back to [0, 1].
    """
    check_dim("size", size)
    images = jnp.asarray(images, jnp.float32)
    if images.ndim != 4:
        raise ValueError(f"images must have shape [N, H, W, C]; got {images.shape}")
    n, _, _, c = images.shape
    out = jax.image.resize(images, (n, size, size, c), method=method)
    return jnp.clip(out, 0.0, 1.0)
