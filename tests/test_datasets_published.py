"""The published data sets (3D Shapes, MPI3D, Cars3D, smallNORB) and the procedural dSprites variants.

Every file is written by the test itself, small, in the published format
(valid and corrupt); nothing is downloaded.
"""

import gzip
import io
import json
import struct

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io

from decompvae import cli, data, runner
from decompvae.config import load_config
from decompvae.data import dsprites_variants as variants
from decompvae.data import published, sources
from decompvae.metrics.disentanglement import mig
from decompvae.metrics.sampled import sample_codes_and_factors

# --- helpers ------------------------------------------------------------------------


def row_colour(index):
    """A distinct uint8 RGB colour per row index ``[n]`` → ``[n, 3]``."""
    index = np.asarray(index)
    return np.stack([(index * 7) % 256, (index * 13 + 50) % 256, (index * 29 + 100) % 256], axis=-1).astype(np.uint8)


def constant_images(colours, size=64):
    """uint8 images ``[n, size, size, C]``, each one colour ``[n, C]``."""
    colours = np.asarray(colours, np.uint8)
    return np.broadcast_to(colours[:, None, None, :], (len(colours), size, size, colours.shape[1])).copy()


def grid_factors(sizes):
    """Every combination ``[prod, F]`` (int32) in index order (last factor fastest)."""
    return np.indices(sizes, dtype=np.int32).reshape(len(sizes), -1).T


def assert_batches(training, shape, batch_size):
    x = jax.jit(training.batch)(jax.random.key(1), jnp.int32(3), training.data)  # as inside a training step
    assert x.dtype == jnp.float32 and x.shape == (batch_size, *shape)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert training.data_shape == shape and training.eval_x.shape[1:] == shape
    assert training.eval_labels.shape == (training.eval_x.shape[0], len(training.ground_truth.factor_sizes))


# --- 3D Shapes ----------------------------------------------------------------------

SHAPES_SIZES = (2, 2, 2, 2, 2, 3)


def shapes_labels(factors):
    """Published-style label values of classes [n, 6]: hues in [0, 1), scale 0.75…, shape 0…, orientation ±30."""
    base = np.array([0.0, 0.0, 0.0, 0.75, 0.0, -30.0])
    step = np.array([0.1, 0.1, 0.1, 0.5 / 7, 1.0, 60.0 / 14])
    return base + step * factors


def write_shapes3d(path, factors=None, *, images=None, labels=None):
    factors = grid_factors(SHAPES_SIZES) if factors is None else factors
    rows = np.ravel_multi_index(tuple(factors.T), SHAPES_SIZES)
    images = constant_images(row_colour(rows)) if images is None else images
    labels = shapes_labels(factors) if labels is None else labels
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["labels"] = labels
    return path


def test_shapes3d_grid_from_the_labels(tmp_path, key):
    path = write_shapes3d(tmp_path / "3dshapes.h5")
    ds = published.load_shapes3d(tmp_path)  # the directory works too
    assert isinstance(ds, data.GroundTruthData) and ds.path == str(path)
    assert ds.factor_sizes == SHAPES_SIZES and ds.factor_names == published.SHAPES3D_FACTOR_NAMES
    assert ds.num_images == 96 and ds.images_per_combination == 1 and isinstance(ds.imgs, np.ndarray)
    assert ds.imgs.dtype == np.uint8  # never a float copy of the whole file
    np.testing.assert_allclose(ds.factor_values[5], [-30.0, -30 + 60 / 14, -30 + 120 / 14])
    query = np.array([[0, 0, 0, 0, 0, 0], [1, 0, 1, 1, 0, 2], [1, 1, 1, 1, 1, 2]], np.int32)
    expected = row_colour(np.ravel_multi_index(tuple(query.T), SHAPES_SIZES)) / 255.0
    images = ds.images(query)
    assert images.dtype == jnp.float32 and images.shape == (3, 64, 64, 3)
    np.testing.assert_allclose(images[:, 10, 20], expected, atol=1e-6)
    factors = ds.sample_factors(key, 500)
    assert factors.dtype == jnp.int32 and factors.shape == (500, 6)
    assert np.all(np.asarray(factors) >= 0) and np.all(np.asarray(factors) < np.array(SHAPES_SIZES))
    seen = np.concatenate([np.asarray(f) for f, _ in ds.iter_grid(batch_size=40)])
    np.testing.assert_array_equal(seen, grid_factors(SHAPES_SIZES))


def test_shapes3d_rows_in_any_order(tmp_path, key):
    order = np.asarray(jax.random.permutation(key, 96))
    factors = grid_factors(SHAPES_SIZES)[order]
    ds = published.load_shapes3d(write_shapes3d(tmp_path / "shuffled.h5", factors))
    query = grid_factors(SHAPES_SIZES)[[5, 17, 95]]
    np.testing.assert_allclose(ds.images(query)[:, 0, 0], row_colour([5, 17, 95]) / 255.0, atol=1e-6)
    for f, images in ds.iter_grid(batch_size=32):  # file order, each row with its own factors
        index = np.ravel_multi_index(tuple(np.asarray(f).T), SHAPES_SIZES)
        np.testing.assert_allclose(images[:, 0, 0], row_colour(index) / 255.0, atol=1e-6)


def test_shapes3d_training_data_keeps_uint8_on_device(tmp_path):
    ds = published.load_shapes3d(write_shapes3d(tmp_path / "3dshapes.h5"))
    training = sources.stored_training_data(ds, jax.random.key(0), batch_size=16, eval_points=20)
    assert isinstance(training.data, jax.Array) and training.data.dtype == jnp.uint8
    assert training.ground_truth.imgs is training.data  # one copy of the images
    assert_batches(training, (64, 64, 3), 16)
    np.testing.assert_allclose(training.eval_x, training.ground_truth.images(training.eval_labels))
    with pytest.raises(ValueError, match="train.batch_size \\(200\\) exceeds the 96 images"):
        sources.stored_training_data(ds, jax.random.key(0), batch_size=200, eval_points=20)


def _shapes_corruption(path, change):
    factors = grid_factors(SHAPES_SIZES)
    images = constant_images(row_colour(np.arange(96)))
    labels = shapes_labels(factors)
    if change == "junk":
        path.write_bytes(b"definitely not HDF5")
    elif change == "truncated":
        write_shapes3d(path)
        raw = path.read_bytes()
        path.write_bytes(raw[: len(raw) // 2])
    elif change == "no_labels":
        with h5py.File(path, "w") as f:
            f["images"] = images
    elif change == "labels_group":
        with h5py.File(path, "w") as f:
            f["images"] = images
            f.create_group("labels")
    elif change == "float_images":
        write_shapes3d(path, images=images.astype(np.float32))
    elif change == "small_images":
        write_shapes3d(path, images=images[:, :32, :32])
    elif change == "grey_images":
        write_shapes3d(path, images=images[..., :1])
    elif change == "int_labels":
        write_shapes3d(path, labels=factors.astype(np.int64))
    elif change == "five_labels":
        write_shapes3d(path, labels=labels[:, :5])
    elif change == "fewer_labels":
        write_shapes3d(path, images=images, labels=labels[:95])
    elif change == "nan":
        labels[3, 2] = np.nan
        write_shapes3d(path, labels=labels)
    elif change == "missing_row":
        write_shapes3d(path, factors[:95])
    elif change == "repeated_row":
        factors[7] = factors[8]
        write_shapes3d(path, factors)
    return path


SHAPES_CORRUPTIONS = [
    ("junk", "is not a readable HDF5 file"),
    ("truncated", "is not a readable HDF5 file.*truncated"),
    ("no_labels", r"lacks dataset\(s\) \['labels'\]"),
    ("labels_group", r"lacks dataset\(s\) \['labels'\]"),
    ("float_images", "'images' has dtype float32, expected uint8"),
    ("small_images", r"'images' has shape \(96, 32, 32, 3\), expected \[N, 64, 64, 3\]"),
    ("grey_images", r"'images' has shape \(96, 64, 64, 1\)"),
    ("int_labels", "'labels' has dtype int64, expected a float type"),
    ("five_labels", r"'labels' has shape \(96, 5\), expected \[N, 6\]"),
    ("fewer_labels", "'images' has 96 rows but 'labels' has 95"),
    ("nan", "'labels' holds NaN or inf"),
    ("missing_row", r"incomplete factor grid: .* 96 combinations, but the file holds 95 images"),
    ("repeated_row", r"lists factor classes \[0, 0, 0, 1, 0, 2\] 2 times"),
]


@pytest.mark.parametrize("change, message", SHAPES_CORRUPTIONS)
def test_corrupt_shapes3d_files_name_what_is_wrong(tmp_path, change, message):
    path = _shapes_corruption(tmp_path / "bad.h5", change)
    with pytest.raises(ValueError, match=message) as err:
        published.load_shapes3d(path)
    assert str(path) in str(err.value)


def test_missing_shapes3d_names_the_file_and_source(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        published.load_shapes3d(tmp_path)
    assert "3dshapes.h5" in str(err.value) and "3d-shapes" in str(err.value)


# --- MPI3D --------------------------------------------------------------------------

MPI_SIZES = (2, 2, 1, 1, 3, 2, 3)  # 72 images


def mpi_images(sizes=MPI_SIZES):
    return constant_images(row_colour(np.arange(int(np.prod(sizes)))))


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_mpi3d_with_sizes_in_the_file(tmp_path, save, key):
    path = tmp_path / "mpi3d_toy.npz"
    save(path, images=mpi_images(), factor_sizes=np.array(MPI_SIZES))
    ds = published.load_mpi3d(tmp_path)
    assert ds.factor_sizes == MPI_SIZES and ds.factor_names == published.MPI3D_FACTOR_NAMES
    assert isinstance(ds.imgs, np.memmap) == (save is np.savez)  # uncompressed members are memory-mapped
    query = np.array([[1, 0, 0, 0, 2, 1, 2], [0, 1, 0, 0, 1, 0, 0]])
    index = np.ravel_multi_index(tuple(query.T), MPI_SIZES)
    np.testing.assert_allclose(ds.images(query)[:, 63, 0], row_colour(index) / 255.0, atol=1e-6)
    factors = np.asarray(ds.sample_factors(key, 300))
    assert factors.shape == (300, 7) and np.all((factors >= 0) & (factors < np.array(MPI_SIZES)))
    training = sources.stored_training_data(ds, key, batch_size=8, eval_points=10)
    assert training.data.dtype == jnp.uint8
    assert_batches(training, (64, 64, 3), 8)


def test_mpi3d_sizes_argument_and_published_default(tmp_path):
    path = tmp_path / "mpi3d_real.npz"
    np.savez(path, images=mpi_images((3, 4)))
    ds = published.load_mpi3d(path, factor_sizes=(3, 4))
    assert ds.factor_sizes == (3, 4) and ds.factor_names == ("factor_0", "factor_1")
    np.testing.assert_allclose(ds.images(np.array([[2, 1]]))[0, 0, 0], row_colour([9])[0] / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match=r"'images' has 12 rows but the factor sizes \(6, 6, 2, 3, 3, 40, 40\) "
                                         r"make 1036800 combinations"):
        published.load_mpi3d(path)


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


MPI_CORRUPTIONS = [
    (lambda p: p.write_bytes(b"PK\x03\x04 not a zip"), "is not a readable .npz archive"),
    (lambda p: p.write_bytes(np.lib.format.magic(1, 0) + b"{'descr': '<f8'"), "is not a readable .npz archive"),
    (lambda p: p.write_bytes(npy_bytes(np.zeros(3))), "single .npy array"),
    (lambda p: np.savez(p, imgs=mpi_images()), r"lacks key 'images'; found \['imgs'\]"),
    (lambda p: np.savez(p, images=mpi_images().astype(np.float32), factor_sizes=np.array(MPI_SIZES)),
     "'images' has dtype float32, expected uint8"),
    (lambda p: np.savez(p, images=mpi_images()[..., :1], factor_sizes=np.array(MPI_SIZES)),
     r"'images' has shape \(72, 64, 64, 1\), expected \[N, 64, 64, 3\]"),
    (lambda p: np.savez(p, images=mpi_images()[:71], factor_sizes=np.array(MPI_SIZES)),
     "'images' has 71 rows but the factor sizes"),
    (lambda p: np.savez(p, images=mpi_images(), factor_sizes=np.array([[72]])), "must be a non-empty 1-D integer"),
    (lambda p: np.savez(p, images=mpi_images(), factor_sizes=np.array([72.0])), "must be a non-empty 1-D integer"),
    (lambda p: np.savez(p, images=mpi_images(), factor_sizes=np.array([0, 72])), "factor sizes must be positive"),
    (lambda p: np.savez(p, images=np.array([object()] * 72, dtype=object)), "Python objects"),
]


@pytest.mark.parametrize("write, message", MPI_CORRUPTIONS)
def test_corrupt_mpi3d_files_name_what_is_wrong(tmp_path, write, message):
    path = tmp_path / "mpi3d_toy.npz"
    write(path)
    with pytest.raises(ValueError, match=message) as err:
        published.load_mpi3d(path)
    assert str(path) in str(err.value)


def test_truncated_mpi3d_archives(tmp_path):
    path = tmp_path / "mpi3d_toy.npz"
    np.savez(path, images=mpi_images(), factor_sizes=np.array(MPI_SIZES))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # the zip directory is at the end: gone
    with pytest.raises(ValueError, match="is not a readable .npz archive"):
        published.load_mpi3d(path)
    # A stored member whose data end early (the directory intact): the mapping refuses it.
    np.savez(path, images=mpi_images())
    raw = bytearray(path.read_bytes())
    start = raw.index(b"\x93NUMPY")
    header = raw[start : start + 200].split(b"\n")[0]
    raw[start : start + len(header)] = header.replace(b"(72, 64, 64, 3)", b"(99, 64, 64, 3)")
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="'images.npy' is truncated"):
        published.load_mpi3d(path, factor_sizes=(99,))


def test_mpi3d_directories(tmp_path):
    with pytest.raises(FileNotFoundError, match="mpi3d_toy.npz.*rr-learning"):
        published.load_mpi3d(tmp_path)
    np.savez(tmp_path / "mpi3d_toy.npz", images=mpi_images((2,)))
    np.savez(tmp_path / "mpi3d_real.npz", images=mpi_images((2,)))
    with pytest.raises(ValueError, match="several MPI3D archives"):
        published.load_mpi3d(tmp_path)


# --- Cars3D -------------------------------------------------------------------------


def car_colour(obj, azimuth, elevation):
    return row_colour(np.asarray(obj) * 1000 + np.asarray(azimuth) * 4 + np.asarray(elevation))


def write_car(path, obj, side=128, **override):
    az, el = np.meshgrid(np.arange(24), np.arange(4), indexing="ij")  # [24, 4]
    colour = car_colour(obj, az, el)  # [24, 4, 3]
    im = np.broadcast_to(np.moveaxis(colour, -1, 0)[None, None], (side, side, 3, 24, 4)).astype(np.uint8)
    scipy.io.savemat(path, override or {"im": im})
    return path


@pytest.fixture
def cars_dir(tmp_path):
    folder = tmp_path / "cars"
    folder.mkdir()
    write_car(folder / "car_002_mesh.mat", 1)  # the published shape [128, 128, 3, 24, 4]
    write_car(folder / "car_001_mesh.mat", 0)
    (folder / "list.txt").write_text("not a car")
    return folder


def test_cars3d_factors_from_the_files(cars_dir, key):
    ds = published.load_cars3d(cars_dir)
    assert ds.factor_sizes == (4, 24, 2) and ds.factor_names == ("elevation", "azimuth", "object")
    assert ds.imgs.shape == (192, 64, 64, 3) and ds.imgs.dtype == np.uint8
    query = np.array([[0, 0, 0], [3, 23, 1], [2, 5, 0], [1, 17, 1]])  # elevation, azimuth, object (sorted names)
    expected = car_colour(query[:, 2], query[:, 1], query[:, 0]) / 255.0
    images = ds.images(query)
    assert images.shape == (4, 64, 64, 3)
    np.testing.assert_allclose(images[:, 31, 40], expected, atol=1e-6)  # a constant view survives the resize
    np.testing.assert_allclose(images, np.broadcast_to(expected[:, None, None], images.shape), atol=1e-6)
    factors = np.asarray(ds.sample_factors(key, 200))
    assert np.all((factors >= 0) & (factors < np.array([4, 24, 2])))
    training = sources.stored_training_data(ds, key, batch_size=8, eval_points=10)
    assert_batches(training, (64, 64, 3), 8)


CAR_CORRUPTIONS = [
    (lambda p: p.write_bytes(b"x" * 300), "is not a readable MATLAB"),
    (lambda p: p.write_bytes(write_car(p, 0, side=64).read_bytes()[:5000]), "is not a readable MATLAB"),
    (lambda p: write_car(p, 0, side=8, images=np.zeros(3)), r"lacks variable 'im'; found \['images'\]"),
    (lambda p: write_car(p, 0, side=8, im=np.zeros((8, 8, 3, 24, 4))), "'im' has dtype float64, expected uint8"),
    (lambda p: write_car(p, 0, side=8, im=np.zeros((8, 8, 3, 24, 3), np.uint8)),
     r"'im' has shape \(8, 8, 3, 24, 3\), expected \[H, H, 3, 24, 4\]"),
    (lambda p: write_car(p, 0, side=8, im=np.zeros((8, 6, 3, 24, 4), np.uint8)), r"'im' has shape \(8, 6, 3, 24, 4\)"),
]


@pytest.mark.parametrize("write, message", CAR_CORRUPTIONS)
def test_corrupt_cars3d_files_name_what_is_wrong(tmp_path, write, message):
    write_car(tmp_path / "car_001_mesh.mat", 0, side=16)
    path = tmp_path / "car_002_mesh.mat"
    write(path)
    with pytest.raises(ValueError, match=message) as err:
        published.load_cars3d(tmp_path)
    assert str(path) in str(err.value)


def test_missing_cars3d_folder_or_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="Cars3D directory not found.*scottreed"):
        published.load_cars3d(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no .mat files in"):
        published.load_cars3d(tmp_path)


# --- smallNORB ----------------------------------------------------------------------

NORB_MAGIC = {np.dtype(np.uint8): 0x1E3D4C55, np.dtype(np.int32): 0x1E3D4C54, np.dtype(np.float32): 0x1E3D4C51}


def norb_bytes(array, magic=None):
    """The NORB binary matrix format: magic, ndim, max(ndim, 3) sizes (padded with 1), data (little-endian)."""
    array = np.asarray(array)
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    magic = NORB_MAGIC[array.dtype] if magic is None else magic
    head = struct.pack(f"<ii{len(dims)}i", magic, array.ndim, *dims)
    return head + array.astype(array.dtype.newbyteorder("<")).tobytes()


def norb_split(instance, side=96):
    """8 images: category 2 × elevation 2 × azimuth 2 (stored 0, 2) × lighting 1, all of one instance."""
    factors = grid_factors((2, 2, 2, 1))
    grey = (factors @ np.array([64, 16, 4, 1]) + 30 * instance).astype(np.uint8)
    dat = np.zeros((8, 2, side, side), np.uint8)
    dat[:, 0] = grey[:, None, None]
    dat[:, 1] = 255 - grey[:, None, None]  # the second camera is never used
    cat = factors[:, 0].astype(np.int32)
    info = np.stack([np.full(8, instance), factors[:, 1], 2 * factors[:, 2], factors[:, 3]], axis=1).astype(np.int32)
    return {"dat": dat, "cat": cat, "info": info}


def write_norb(folder, splits=None, gz=False):
    folder.mkdir(exist_ok=True)
    splits = {"training": norb_split(1), "testing": norb_split(0)} if splits is None else splits
    for split, parts in splits.items():
        for part, array in parts.items():
            name = f"{published.SMALLNORB_CHUNKS[split]}-{part}.mat"
            raw = array if isinstance(array, bytes) else norb_bytes(array)
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return folder


def test_read_norb_matrix_formats(tmp_path):
    for array in (np.arange(24, dtype=np.int32).reshape(2, 3, 4), np.arange(5, dtype=np.int32),
                  np.arange(6, dtype=np.uint8).reshape(1, 2, 3, 1), np.linspace(0, 1, 4, dtype=np.float32)):
        path = tmp_path / "m.mat"
        path.write_bytes(norb_bytes(array))
        np.testing.assert_array_equal(published.read_norb_matrix(path), array)
        path.write_bytes(gzip.compress(norb_bytes(array)))
        np.testing.assert_array_equal(published.read_norb_matrix(path), array)


@pytest.mark.parametrize("gz", [False, True])
def test_smallnorb_instances_are_a_nuisance(tmp_path, gz, key):
    ds = published.load_smallnorb(write_norb(tmp_path / "norb", gz=gz))
    assert ds.factor_sizes == (2, 2, 2, 1) and ds.factor_names == published.SMALLNORB_FACTOR_NAMES
    assert ds.imgs.shape == (16, 64, 64, 1) and ds.images_per_combination == 2
    np.testing.assert_array_equal(ds.row_nuisance, [1] * 8 + [0] * 8)
    query = grid_factors((2, 2, 2, 1))
    base = query @ np.array([64, 16, 4, 1])
    fixed = np.asarray(ds.images(query))[:, 32, 32, 0] * 255
    assert np.all(np.isin(np.round(fixed) - base, [0, 30]))  # one of the two instances, the first camera
    np.testing.assert_array_equal(ds.images(query), ds.images(query))  # the fixed choice is fixed
    drawn = np.stack([np.asarray(ds.images(query, jax.random.key(s)))[:, 0, 0, 0] * 255 for s in range(12)])
    assert set(np.unique(np.round(drawn - base))) == {0.0, 30.0}  # a key draws either instance
    seen = np.concatenate([np.asarray(f) for f, _ in ds.iter_grid(batch_size=5)])
    assert seen.shape == (16, 4)
    training = sources.stored_training_data(ds, key, batch_size=4, eval_points=10)
    assert_batches(training, (64, 64, 1), 4)


def test_smallnorb_resizes_96_to_64_and_one_split(tmp_path):
    ds = published.load_smallnorb(write_norb(tmp_path / "norb", {"testing": norb_split(0)}), splits=("testing",))
    assert ds.images_per_combination == 1 and ds.imgs.shape == (8, 64, 64, 1)
    np.testing.assert_array_equal(ds.imgs[..., 0], norb_split(0)["dat"][:, 0, :64, :64])  # constant images
    small = published.load_smallnorb(tmp_path / "norb", size=32, splits=("testing",))
    assert small.image_shape == (32, 32, 1)


def _norb_change(**changes):
    def apply(parts):
        parts = dict(parts)
        for k, v in changes.items():
            parts[k] = v(parts[k]) if callable(v) else v
        return parts
    return apply


def _shift_row(info):
    info = info.copy()
    info[0, :2] = (5, 1)  # a new instance at another elevation: one combination has 3 images, another 1
    return info


NORB_CORRUPTIONS = [
    (_norb_change(dat=lambda a: norb_bytes(a, magic=0x12345678)), "dat.mat': bad NORB magic number 0x12345678"),
    (_norb_change(dat=lambda a: norb_bytes(a)[:-100]), r"header says shape \(8, 2, 96, 96\).*holds 147356 data bytes"),
    (_norb_change(dat=lambda a: norb_bytes(a)[:10]), "header promises 4 sizes"),
    (_norb_change(dat=b"\x55\x4c"), "too short for a NORB matrix header"),
    (_norb_change(cat=lambda a: a.astype(np.uint8)), "cat.mat': a uint8 matrix of shape \\(8,\\); expected the int32"),
    (_norb_change(dat=lambda a: a[:, :1]), r"images have shape \(8, 1, 96, 96\), expected \[N, 2, H, H\]"),
    (_norb_change(info=lambda a: a[:, :3]), r"info has shape \(8, 3\), expected \[N, 4\]"),
    (_norb_change(cat=lambda a: a[:7]), "8 images but 7 categories and 8 info rows"),
    (_norb_change(info=lambda a: a + np.array([0, 0, 1, 0], np.int32)), "azimuths must be even"),
    (_norb_change(cat=lambda a: a - 1), "negative category or info value"),
    (_norb_change(info=_shift_row), "incomplete factor grid"),
    (_norb_change(info=lambda a: a - np.array([1, 0, 0, 0], np.int32)), "lists factor classes .* 2 times"),
]


@pytest.mark.parametrize("change, message", NORB_CORRUPTIONS)
def test_corrupt_smallnorb_files_name_what_is_wrong(tmp_path, change, message):
    folder = write_norb(tmp_path / "norb", {"training": change(norb_split(1)), "testing": norb_split(0)})
    with pytest.raises(ValueError, match=message) as err:
        published.load_smallnorb(folder)
    assert str(folder) in str(err.value)


def test_missing_smallnorb_file_names_it_and_the_source(tmp_path):
    folder = write_norb(tmp_path / "norb")
    (folder / f"{published.SMALLNORB_CHUNKS['testing']}-info.mat").unlink()
    with pytest.raises(FileNotFoundError, match="testing-info.mat.*ylclab"):
        published.load_smallnorb(folder)
    with pytest.raises(FileNotFoundError, match="smallNORB directory not found"):
        published.load_smallnorb(tmp_path / "nope")


# --- procedural variants ------------------------------------------------------------


@pytest.fixture(scope="module")
def sprite_factors():
    return np.asarray(data.ProceduralDSprites().sample_factors(jax.random.key(5), 24))


@pytest.fixture(scope="module")
def sprite_masks(sprite_factors):
    return np.asarray(jax.jit(data.render_factors)(sprite_factors))[..., 0] == 1  # [24, 64, 64]


def test_color_dsprites_colours_the_sprite(sprite_factors, sprite_masks):
    ds = variants.color_dsprites()
    images = np.asarray(ds.images(sprite_factors))
    assert images.shape == (24, 64, 64, 3) and images.dtype == np.float32
    assert np.all(images[~sprite_masks] == 0.0)  # black background
    colours = images.max(axis=(1, 2))  # [24, 3]: the one colour of each sprite
    assert np.all(colours >= 0.5) and np.all(colours <= 1.0)
    np.testing.assert_array_equal(images, sprite_masks[..., None] * colours[:, None, None, :])
    assert len(np.unique(colours[:, 0])) == 24  # a colour per image, per channel


def test_noisy_dsprites_noise_background(sprite_factors, sprite_masks):
    images = np.asarray(variants.noisy_dsprites().images(sprite_factors))
    assert np.all(images[sprite_masks] == 1.0)
    background = images[~sprite_masks]  # [pixels, 3]
    assert background.min() >= 0.0 and background.max() < 1.0
    assert abs(background.mean() - 0.5) < 0.01 and abs(background.std() - 12 ** -0.5) < 0.01  # uniform [0, 1)


def test_scream_dsprites_inverts_a_patch(sprite_factors, sprite_masks):
    h, w = 80, 72
    u, v = np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")
    background = np.stack([u, v, 0.25 + 0.5 * u * v], axis=-1).astype(np.float32)
    images = np.asarray(variants.DSpritesVariant("scream", background=background).images(sprite_factors[:4]))
    for image, mask in zip(images, sprite_masks[:4]):
        base = np.where(mask[..., None], 1.0 - image, image)  # (patch + c) / 2 everywhere
        matches = []
        for r in range(h - 64):
            for c in range(w - 64):
                colour = 2 * base - background[r : r + 64, c : c + 64]  # c per pixel: constant if the patch is right
                if np.ptp(colour.reshape(-1, 3), axis=0).max() < 1e-5:
                    matches.append(colour[0, 0])
        assert len(matches) == 1 and np.all((matches[0] >= 0) & (matches[0] <= 1))


@pytest.mark.parametrize("make", [variants.color_dsprites, variants.noisy_dsprites, variants.scream_dsprites])
def test_variants_are_deterministic_given_a_key(make, sprite_factors):
    ds = make()
    fixed = ds.images(sprite_factors)
    np.testing.assert_array_equal(fixed, ds.images(sprite_factors))  # images(factors) is a function
    order = np.arange(24)[::-1]
    np.testing.assert_array_equal(fixed[order], ds.images(sprite_factors[order]))  # of each combination
    a = ds.images(sprite_factors, jax.random.key(1))
    np.testing.assert_array_equal(a, ds.images(sprite_factors, jax.random.key(1)))
    assert not np.array_equal(a, ds.images(sprite_factors, jax.random.key(2)))
    assert not np.array_equal(fixed, a)


def test_variant_stream_is_a_function_of_its_key():
    stream = variants.make_variant_stream(variants.color_dsprites(), 6)
    x1, f1 = stream(jax.random.key(3))
    x2, f2 = stream(jax.random.key(3))
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(f1, f2)
    assert x1.shape == (6, 64, 64, 3) and f1.shape == (6, 5) and f1.dtype == jnp.int32
    assert not np.array_equal(x1, stream(jax.random.key(4))[0])


def test_render_variant_jits_and_checks(sprite_factors):
    render = jax.jit(lambda k, f: variants.render_variant("color", jax.random.split(k, len(f)), f))
    assert render(jax.random.key(0), jnp.asarray(sprite_factors)).shape == (24, 64, 64, 3)
    with pytest.raises(ValueError, match="background"):
        variants.render_variant("scream", jax.random.split(jax.random.key(0), 2), sprite_factors[:2])
    with pytest.raises(ValueError, match="takes no background"):
        variants.DSpritesVariant("color", background=np.zeros((64, 64, 3)))
    with pytest.raises(ValueError, match=r"H, W ≥ 64"):
        variants.DSpritesVariant("scream", background=np.zeros((63, 100, 3)))


def test_variant_grid_in_index_order():
    ds = variants.noisy_dsprites()
    assert isinstance(ds, data.GroundTruthData) and ds.num_images == 737_280
    factors, images = next(ds.iter_grid(batch_size=24))
    np.testing.assert_array_equal(factors, grid_factors(data.FACTOR_SIZES)[:24])
    np.testing.assert_array_equal(images, ds.images(factors))


def test_scream_background_from_a_file(tmp_path, sprite_factors):
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (600, 480, 3), dtype=np.uint8)).save(tmp_path / "scream.png")
    background = variants.load_scream_background(tmp_path / "scream.png")
    assert background.shape == (274, 219, 3) and background.dtype == np.float32  # thumbnail((350, 274))
    ds = variants.scream_dsprites(tmp_path / "scream.png")
    assert ds.images(sprite_factors[:2]).shape == (2, 64, 64, 3)
    with pytest.raises(FileNotFoundError, match="scream.jpg"):
        variants.load_scream_background(tmp_path / "nope.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="is not a readable image"):
        variants.load_scream_background(tmp_path / "junk.jpg")
    Image.fromarray(np.zeros((40, 100, 3), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(ValueError, match="must be at least 64×64"):
        variants.load_scream_background(tmp_path / "small.png")


# --- registered: a few training steps end to end, metrics, the command line ----------


def _published_path(name, tmp_path):
    if name == "shapes3d":
        return write_shapes3d(tmp_path / "3dshapes.h5")
    if name == "mpi3d":
        np.savez(tmp_path / "mpi3d_toy.npz", images=mpi_images(), factor_sizes=np.array(MPI_SIZES))
        return tmp_path / "mpi3d_toy.npz"
    if name == "cars3d":
        write_car(tmp_path / "car_a.mat", 0, side=64)
        write_car(tmp_path / "car_b.mat", 1, side=64)
        return tmp_path
    if name == "smallnorb":
        return write_norb(tmp_path / "norb", {"training": norb_split(1, side=64), "testing": norb_split(0, side=64)})
    return None


REGISTERED = {"shapes3d": (64, 64, 3), "mpi3d": (64, 64, 3), "cars3d": (64, 64, 3), "smallnorb": (64, 64, 1),
              "color_dsprites": (64, 64, 3), "noisy_dsprites": (64, 64, 3), "scream_dsprites": (64, 64, 3)}


def test_registry_says_which_need_a_path(tmp_path):
    for name in REGISTERED:
        needs = name in ("shapes3d", "mpi3d", "cars3d", "smallnorb")
        assert data.DATASETS[name].needs_path == needs
        assert data.DATASETS[name].shape(None) == REGISTERED[name]  # what the loaders serve (tested below)
        if needs:
            with pytest.raises(ValueError, match=f"data.path is required for data.name={name!r}"):
                load_config(None, [f"data.name={name}", "model.network=mlp", f"output_dir={tmp_path}"])


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_registered_sources_serve_float_batches_and_a_ground_truth(tmp_path, name):
    path = _published_path(name, tmp_path)
    training = data.load_training_data(name, jax.random.key(0), batch_size=4, eval_points=8, path=path)
    assert_batches(training, REGISTERED[name], 4)
    truth = training.ground_truth
    assert isinstance(truth, data.GroundTruthData)
    np.testing.assert_array_equal(training.eval_x, truth.images(training.eval_labels))
    step = jax.jit(training.batch)
    np.testing.assert_array_equal(step(jax.random.key(1), jnp.int32(5), training.data),
                                  step(jax.random.key(1), jnp.int32(5), training.data))  # a function of (key, step)
    assert not np.array_equal(step(jax.random.key(1), jnp.int32(5), training.data),
                              step(jax.random.key(1), jnp.int32(6), training.data))
    if name in ("shapes3d", "mpi3d"):
        with pytest.raises(ValueError, match="data.image_size=32 is not supported"):
            data.load_training_data(name, jax.random.key(0), batch_size=4, eval_points=8, path=path, image_size=32)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_registered_data_sets_train_a_beta_vae(tmp_path, name):
    path = _published_path(name, tmp_path)
    overrides = [f"data.name={name}", "data.eval_points=16", "model.network=mlp", "model.hidden=[8]",
                 "model.latent_dim=3", "model.prior=isotropic", "model.prior_params={}", "train.steps=4",
                 "train.batch_size=4", "train.log_every=2", "train.checkpoint_every=4", "sweep.beta=[4.0]",
                 "sweep.prior={}", f"output_dir={tmp_path / 'run'}"]
    if path is not None:
        overrides.append(f"data.path={path}")
    result = runner.run(load_config(None, overrides), progress=False, figures=False, echo=lambda s: None)
    setup = result.setup
    assert setup.data.data_shape == REGISTERED[name] and np.isfinite(result.summary[0]["eval_loss"])
    params = jax.tree.map(lambda a: a[0], result.state.params)
    encode = jax.jit(lambda x: setup.encode(params, x)[0])
    codes, factors = sample_codes_and_factors(jax.random.key(0), encode, setup.data.ground_truth, 64, batch_size=32)
    assert codes.shape == (64, 3) and factors.shape == (64, len(setup.data.ground_truth.factor_sizes))
    assert 0.0 <= mig(codes, factors) <= 1.0
    # `decompvae evaluate` rebuilds the run from its config.json (data.path included) and scores it
    assert cli.main(["evaluate", str(tmp_path / "run"), "--quick"]) == 0
    (row,) = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.0 <= row["mig"] <= 1.0 and 0.0 <= row["factor_vae_dlib"] <= 1.0 and np.isfinite(row["irs"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shapes3d", "color_dsprites", "smallnorb"])
def test_the_published_convnet_trains_on_each_channel_count(tmp_path, name):
    """model.network = "dsprites" (disentanglement_lib's one convnet) on 64×64 data of 3 and 1 channels."""
    path = _published_path(name, tmp_path)
    overrides = [f"data.name={name}", "data.eval_points=16", "model.network=dsprites", "model.latent_dim=3",
                 "model.prior=isotropic", "model.prior_params={}", "train.steps=2", "train.batch_size=4",
                 "train.log_every=2", "train.checkpoint_every=2", "sweep.beta=[4.0]", "sweep.prior={}",
                 f"output_dir={tmp_path / 'run'}"] + ([f"data.path={path}"] if path is not None else [])
    result = runner.run(load_config(None, overrides), progress=False, figures=False, echo=lambda s: None)
    assert result.setup.data.data_shape == REGISTERED[name] and np.isfinite(result.summary[0]["eval_loss"])
    decoded = result.setup.decode_mean(jax.tree.map(lambda a: a[0], result.state.params), jnp.zeros((2, 3)))
    assert decoded.shape == (2, *REGISTERED[name])


def test_the_published_convnet_refuses_other_data(tmp_path):
    with pytest.raises(ValueError, match="expects 64×64 images"):
        load_config(None, ["data.name=digits", "model.network=dsprites", f"output_dir={tmp_path}"])


def test_cli_reports_a_corrupt_file_in_one_line(tmp_path, capsys):
    bad = tmp_path / "3dshapes.h5"
    bad.write_bytes(b"not HDF5 at all")
    args = ["train", "--no-progress", "--set", "data.name=shapes3d", "--set", f"data.path={bad}",
            "--set", "model.network=mlp", "--set", f"output_dir={tmp_path / 'run'}"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("decompvae: error: ") and "\n" not in err and "Traceback" not in err
    assert str(bad) in err and "not a readable HDF5 file" in err
    assert not (tmp_path / "run" / "checkpoints").exists()
