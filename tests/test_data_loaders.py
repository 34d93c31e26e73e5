"""Loaders: the official dSprites npz, Fashion-MNIST IDX files, scikit-learn digits.

Every file is written by the test itself (valid and corrupt); nothing is downloaded.
"""

import gzip
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import data
from decompvae.data import loaders

SIZES = (3, 6, 40, 32, 32)


# --- dSprites ----------------------------------------------------------------------


def official_rows(factors):
    """The three official arrays for the given factor classes [n, 5]."""
    imgs = np.asarray(data.render_factors(jnp.asarray(factors), dtype=jnp.uint8))[..., 0]
    return {
        "imgs": imgs,
        "latents_values": data.latents_values(factors),
        "latents_classes": data.latents_classes(factors),
    }


@pytest.fixture
def subset_factors(key):
    index = np.sort(np.asarray(jax.random.choice(key, 737_280, (300,), replace=False)))
    return np.stack(np.unravel_index(index, SIZES), axis=1).astype(np.int32)


@pytest.fixture
def subset_file(tmp_path, subset_factors):
    path = tmp_path / loaders.DSPRITES_FILENAME
    # The official file also has a pickled 'metadata' entry; it must never be needed.
    np.savez_compressed(path, metadata=np.array([{"a": 1}], dtype=object), **official_rows(subset_factors))
    return path


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_subset_file_offers_the_ground_truth_interface(subset_file, subset_factors, key):
    ds = data.load_dsprites(subset_file)
    assert isinstance(ds, data.GroundTruthData) and isinstance(ds, data.DSpritesFile)
    assert ds.factor_sizes == SIZES and ds.num_images == 300 and not ds.is_full_grid
    np.testing.assert_array_equal(ds.factors, subset_factors)
    # Same images as the procedural renderer for the same factors, in any order.
    query = subset_factors[::-7]
    np.testing.assert_array_equal(ds.images(query), data.dsprites().images(query))
    # sample_factors draws rows of the file only.
    drawn = np.asarray(ds.sample_factors(key, 1000))
    rows = {tuple(r) for r in subset_factors.tolist()}
    assert all(tuple(r) in rows for r in drawn.tolist())
    np.testing.assert_array_equal(drawn, ds.sample_factors(key, 1000))
    # A combination the subset lacks, and classes outside the grid.
    absent = next(f for f in np.ndindex(*SIZES) if f not in rows)
    with pytest.raises(KeyError, match="not in"):
        ds.images(np.array([absent]))
    with pytest.raises(ValueError, match="must lie in"):
        ds.images(np.array([[0, 6, 0, 0, 0]]))
    # iter_grid: file order.
    batches = list(ds.iter_grid(batch_size=128))
    assert [len(f) for f, _ in batches] == [128, 128, 44]
    np.testing.assert_array_equal(np.concatenate([f for f, _ in batches]), subset_factors)
    np.testing.assert_array_equal(batches[1][1][..., 0], ds.imgs[128:256])


def test_directory_path_and_dsprites_factory(subset_file):
    ds = data.dsprites(subset_file.parent)
    assert isinstance(ds, data.DSpritesFile) and ds.num_images == 300


def test_full_grid_uses_the_index_mapping(key):
    factors = np.asarray(data.index_to_factors(jnp.arange(737_280), SIZES))
    imgs = np.broadcast_to(np.zeros((1, 64, 64), np.uint8), (737_280, 64, 64))  # no memory
    ds = data.DSpritesFile(imgs=imgs, factors=factors, path="in-memory")
    assert ds.is_full_grid
    query = np.asarray(ds.sample_factors(key, 50))
    np.testing.assert_array_equal(ds.sample_factors(key, 50), data.dsprites().sample_factors(key, 50))
    np.testing.assert_array_equal(ds.rows_of(query), np.ravel_multi_index(tuple(query.T), SIZES))
    with pytest.raises(ValueError, match=r"factors must have shape \[N, 5\]"):
        data.DSpritesFile(imgs=imgs[:10], factors=factors[:9], path="short")
    shuffled = data.DSpritesFile(imgs=imgs, factors=factors[::-1].copy(), path="reversed")
    assert not shuffled.is_full_grid
    np.testing.assert_array_equal(shuffled.rows_of(query), 737_279 - np.ravel_multi_index(tuple(query.T), SIZES))


def test_missing_file_names_the_expected_file_and_source(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_dsprites(tmp_path)
    assert loaders.DSPRITES_FILENAME in str(err.value) and "deepmind/dsprites-dataset" in str(err.value)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        data.load_dsprites(tmp_path / "nope.npz")


def test_not_an_archive(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip archive")
    with pytest.raises(ValueError, match="not a readable .npz"):
        data.load_dsprites(bad)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="single .npy array"):
        data.load_dsprites(single)


@pytest.fixture(scope="module")
def twenty_rows():
    """20 distinct valid official rows, spread over the grid."""
    index = np.arange(20) * 36_000 + 7
    return official_rows(np.stack(np.unravel_index(index, SIZES), axis=1))


def corrupt(rows, **changes):
    out = {k: v.copy() for k, v in rows.items()}
    for k, v in changes.items():
        if v is None:
            del out[k]
        else:
            out[k] = v
    return out


def plus(key, column, amount=1):
    """A change adding ``amount`` to one column of ``key``."""
    return lambda r: corrupt(r, **{key: r[key] + amount * (np.arange(6) == column)})


CORRUPTIONS = [
    (lambda r: corrupt(r, latents_classes=None), r"lacks key\(s\) \['latents_classes'\]"),
    (lambda r: corrupt(r, imgs=r["imgs"].astype(np.float32)), "'imgs' has dtype float32, expected uint8"),
    (lambda r: corrupt(r, latents_values=r["latents_values"].astype(np.float32)), "'latents_values' has dtype"),
    (lambda r: corrupt(r, latents_classes=r["latents_classes"].astype(np.int32)), "dtype int32, expected int64"),
    (lambda r: corrupt(r, imgs=r["imgs"][:, :32, :32]), r"'imgs' has shape \(20, 32, 32\), expected \[N, 64, 64\]"),
    (lambda r: corrupt(r, latents_values=r["latents_values"][:, 1:]), r"'latents_values' has shape \(20, 5\)"),
    (lambda r: corrupt(r, imgs=r["imgs"][:19]), "disagree on the number of rows"),
    (lambda r: corrupt(r, imgs=r["imgs"] * 255), "must be binary"),
    (plus("latents_classes", 2, 6), r"column 2 \(scale\) must lie in \[0, 6\)"),
    (plus("latents_classes", 0), r"column 0 \(colour\)"),
    (plus("latents_values", 4, 0.5), r"column 4 \(posX\) disagrees"),
    (plus("latents_values", 0), r"column 0 \(colour\) disagrees"),
    (lambda r: {k: np.concatenate([v, v[:1]]) for k, v in r.items()}, "more than once"),
]


@pytest.mark.parametrize("change, message", CORRUPTIONS)
def test_corrupt_dsprites_files_name_what_is_wrong(tmp_path, twenty_rows, change, message):
    write_npz(tmp_path / "valid.npz", **twenty_rows)
    assert data.load_dsprites(tmp_path / "valid.npz").num_images == 20
    path = write_npz(tmp_path / "corrupt.npz", **change(twenty_rows))
    with pytest.raises(ValueError, match=message):
        data.load_dsprites(path)


def test_object_array_key_is_rejected_without_unpickling(tmp_path, twenty_rows):
    rows = corrupt(twenty_rows, imgs=np.array([object()] * 20, dtype=object))
    path = write_npz(tmp_path / "pickled.npz", **rows)
    with pytest.raises(ValueError, match="'imgs' is not a plain uint8 array"):
        data.load_dsprites(path)


# --- IDX / Fashion-MNIST -----------------------------------------------------------


def idx_bytes(array, type_code=0x08, magic=None):
    array = np.asarray(array)
    head = magic if magic is not None else (type_code << 8) | array.ndim
    header = head.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_fashion(directory, split="train", n=12, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    files = {f"{prefix}-images-idx3-ubyte": idx_bytes(images), f"{prefix}-labels-idx1-ubyte": idx_bytes(labels)}
    for name, payload in files.items():
        path = directory / (name + (".gz" if compress else ""))
        path.write_bytes(gzip.compress(payload) if compress else payload)
    return images, labels


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_fashion_mnist_round_trip(tmp_path, compress, split):
    images, labels = write_fashion(tmp_path, split, compress=compress)
    x, y = data.load_fashion_mnist(tmp_path, split)
    assert x.shape == (12, 28, 28, 1) and x.dtype == jnp.float32 and y.dtype == jnp.int32
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_fashion_mnist_resize_to_32(tmp_path):
    images, _ = write_fashion(tmp_path)
    x, _ = data.load_fashion_mnist(tmp_path, resize=32)
    assert x.shape == (12, 32, 32, 1)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), images.mean(axis=(1, 2)) / 255.0, atol=0.02)
    flat = data.resize_images(np.full((2, 28, 28, 1), 0.3, np.float32), 32)
    np.testing.assert_allclose(flat, 0.3, rtol=1e-6)  # resizing a constant image keeps it


def test_read_idx_generic_types(tmp_path):
    cases = (
        (np.arange(-6, 6, dtype=np.int32).reshape(3, 4), 0x0C),
        (np.linspace(0, 1, 5), 0x0E),
        (np.arange(10, dtype=np.int16), 0x0B),
    )
    for array, code in cases:
        path = tmp_path / f"t{code}"
        path.write_bytes(idx_bytes(array, code))
        out = data.read_idx(path)
        assert out.dtype.isnative
        np.testing.assert_array_equal(out, array)


def test_fashion_missing_files_name_file_and_source(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_fashion_mnist(tmp_path, "test")
    assert "t10k-images-idx3-ubyte" in str(err.value) and "zalandoresearch/fashion-mnist" in str(err.value)
    write_fashion(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        data.load_fashion_mnist(tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist(tmp_path, "validation")


def test_fashion_wrong_magic_numbers(tmp_path):
    images, labels = write_fashion(tmp_path)
    # Labels where images belong (and vice versa): the magic numbers say so.
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(labels))
    with pytest.raises(ValueError, match=r"magic number 2049 \(0x00000801\), expected 2051 \(0x00000803\)"):
        data.load_fashion_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(images))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(images))
    with pytest.raises(ValueError, match=r"magic number 2051 \(0x00000803\), expected 2049"):
        data.load_fashion_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00")
    with pytest.raises(ValueError, match="file too short"):
        data.load_fashion_mnist(tmp_path)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x08\x01" + bytes(8))
    with pytest.raises(ValueError, match=r"bad IDX magic number .*0x12340801"):
        data.read_idx(bad)
    bad.write_bytes(b"\x00\x00\x07\x01" + bytes(8))
    with pytest.raises(ValueError, match="bad IDX magic number"):
        data.read_idx(bad)


def test_fashion_corrupt_contents(tmp_path):
    images, labels = write_fashion(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(images)[:-5])  # truncated
    with pytest.raises(ValueError, match=r"shape \(12, 28, 28\) .* holds 9403 data bytes"):
        data.load_fashion_mnist(tmp_path)
    path.write_bytes(idx_bytes(images[:, :27, :27]))
    with pytest.raises(ValueError, match=r"expected \[N, 28, 28\]"):
        data.load_fashion_mnist(tmp_path)
    path.write_bytes(idx_bytes(images[:11]))
    with pytest.raises(ValueError, match="11 images but .* 12 labels"):
        data.load_fashion_mnist(tmp_path)
    path.write_bytes(idx_bytes(images))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels + 10))
    with pytest.raises(ValueError, match="labels must lie in 0…9"):
        data.load_fashion_mnist(tmp_path)
    os.remove(path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images))[:-9])
    with pytest.raises(ValueError, match="corrupt gzip data"):
        data.load_fashion_mnist(tmp_path)


# --- scikit-learn digits -----------------------------------------------------------


def test_digits_scaled_and_split():
    from sklearn.datasets import load_digits

    reference = load_digits()
    x, y = data.load_digits()
    assert x.shape == (1797, 8, 8, 1) and x.dtype == jnp.float32 and y.dtype == jnp.int32
    np.testing.assert_allclose(x[..., 0] * 16, reference.images, atol=1e-5)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    np.testing.assert_array_equal(y, reference.target)
    (x_train, y_train), (x_test, y_test) = data.load_digits("train"), data.load_digits("test")
    assert len(x_train) == 1500 and len(x_test) == 297
    np.testing.assert_array_equal(np.concatenate([y_train, y_test]), y)
    x32, _ = data.load_digits("test", resize=32)
    assert x32.shape == (297, 32, 32, 1) and float(x32.max()) <= 1.0
    np.testing.assert_allclose(x32.mean(axis=(1, 2, 3)), x_test.mean(axis=(1, 2, 3)), atol=0.03)


def test_resize_validation():
    with pytest.raises(ValueError, match="size"):
        data.resize_images(np.zeros((1, 8, 8, 1)), 0)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        data.resize_images(np.zeros((8, 8)), 4)
