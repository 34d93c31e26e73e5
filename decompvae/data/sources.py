"""The data sets a run can name, each loaded into one :class:`TrainingData`.

:data:`DATASETS` maps a name (``data.name`` of a config) to a loader and
whether it needs ``data.path``; :func:`load_training_data` looks the name up.
Nothing downloads: the procedural dSprites renderer, the sprite pairs,
pinwheel and the bundled digits need no files; ``dsprites_file`` and
``fashion_mnist`` read local files.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from decompvae._checks import check_choice
from decompvae.data import dsprites_variants, published
from decompvae.data.batching import make_batcher, make_dsprites_stream
from decompvae.data.grouped import ProceduralSpritePairs, make_pair_stream
from decompvae.data.hierarchical import discretise, hierarchical_toy
from decompvae.data.loaders import load_digits, load_dsprites, load_fashion_mnist
from decompvae.data.pinwheel import make_pinwheel
from decompvae.data.sprites import ProceduralDSprites

Array = jax.Array

__all__ = [
    "DATASETS", "DatasetSpec", "TrainingData", "load_training_data", "stored_training_data", "variant_training_data",
]

#: Training points whose PCA gives the anisotropic prior's variances.
PCA_POINTS = 2000
#: Classes per latent coordinate of ``hierarchical_toy``'s evaluation labels (equal-count bins).
TOY_FACTOR_BINS = 8


class TrainingData(NamedTuple):
    """What a run trains and evaluates on.

    Attributes:
      data: device-held training set passed to ``batch`` (None for a stream).
      batch: ``(key, step, data) -> x [b, ...]``, pure (a step's batch is a
        function of its key and step).
      data_shape: shape of one point.
      eval_x: held-out points ``[n, ...]``.
      eval_labels: their factor classes ``[n, K]`` or class labels ``[n]``, or None.
      ground_truth: a ground-truth data set (``factor_sizes``,
        ``sample_factors``, ``images``, ``iter_grid``) for the
        disentanglement metrics, or None.
      pca_source: training points for the PCA prior variances.
      factor_groups: for data whose ``eval_labels`` are factors in groups
        without a ground-truth object (``hierarchical_toy``), the factor
        indices per group; else None (a ground-truth object carries its own).
    """

    data: Any
    batch: Callable[[Array, Array, Any], Array]
    data_shape: tuple[int, ...]
    eval_x: Array
    eval_labels: Array | None
    ground_truth: Any
    pca_source: Array
    factor_groups: tuple[tuple[int, ...], ...] | None = None


class DatasetSpec(NamedTuple):
    """A registered data set.

    Attributes:
      load: ``load(key, *, batch_size, eval_points, path, image_size) -> TrainingData``.
      shape: ``shape(image_size) -> (H, W, C)`` or ``(d,)``: the shape of one point for ``data.image_size``
        (None: the native size), known before loading, so a config pairs the data with a network
        (:class:`decompvae.networks.NetworkSpec`) without reading a file.
      needs_path: whether ``data.path`` is required.
    """

    load: Callable[..., TrainingData]
    shape: Callable[[int | None], tuple[int, ...]]
    needs_path: bool = False


def _fixed(shape: tuple[int, ...]) -> Callable[[int | None], tuple[int, ...]]:
    return lambda image_size: shape


def _square(native: int, channels: int) -> Callable[[int | None], tuple[int, ...]]:
    return lambda image_size: (image_size or native, image_size or native, channels)


def _data_keys(key: Array) -> tuple[Array, Array, Array]:
    """The keys of the evaluation points, the PCA rows and generated data (one split for every data set)."""
    return tuple(jax.random.split(key, 3))


def _procedural_dsprites(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    key_eval, key_pca, _ = _data_keys(key)
    dataset = ProceduralDSprites()
    stream = make_dsprites_stream(batch_size)
    batch = lambda key, step, data: stream(jax.random.fold_in(key, step))[0]  # noqa: E731
    factors = dataset.sample_factors(key_eval, eval_points)
    pca = dataset.images(dataset.sample_factors(key_pca, PCA_POINTS))
    return TrainingData(None, batch, (64, 64, 1), dataset.images(factors), factors, dataset, pca)


def _procedural_pairs(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    key_eval, key_pca, _ = _data_keys(key)
    dataset = ProceduralSpritePairs()
    stream = make_pair_stream(batch_size)
    batch = lambda key, step, data: stream(jax.random.fold_in(key, step))[0]  # noqa: E731
    factors = dataset.sample_factors(key_eval, eval_points)
    pca = dataset.images(dataset.sample_factors(key_pca, PCA_POINTS))
    return TrainingData(None, batch, (64, 64, 1), dataset.images(factors), factors, dataset, pca)


def _dsprites_file(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    key_eval, key_pca, _ = _data_keys(key)
    dataset = load_dsprites(path)
    batcher = make_batcher(dataset.imgs, batch_size)
    batch = lambda key, step, data: batcher.batch_at(key, step, data)[..., None].astype(jnp.float32)  # noqa: E731
    factors = dataset.sample_factors(key_eval, eval_points)
    rows = np.asarray(jax.random.choice(key_pca, dataset.num_images, (PCA_POINTS,), replace=False))
    pca = dataset.imgs[np.sort(rows)][..., None].astype(np.float32)
    return TrainingData(batcher.data, batch, (64, 64, 1), dataset.images(factors), factors, dataset, pca)


def _pinwheel(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    pin = make_pinwheel(_data_keys(key)[2], max(eval_points // 4, 100))
    batcher = make_batcher(pin.x_train, batch_size)
    return TrainingData(batcher.data, batcher.batch_at, (2,), pin.x_test, pin.y_test, None, pin.x_train)


def _hierarchical_toy(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    key_eval, key_pca, _ = _data_keys(key)
    toy = hierarchical_toy()
    batch = lambda key, step, data: toy.sample(jax.random.fold_in(key, step), batch_size)[0]  # noqa: E731
    x_eval, u_eval = toy.sample(key_eval, eval_points)
    labels = jnp.asarray(discretise(u_eval, TOY_FACTOR_BINS))
    x_pca = toy.sample(key_pca, PCA_POINTS)[0]
    return TrainingData(None, batch, (x_eval.shape[1],), x_eval, labels, None, x_pca, toy.factor_groups)


def _images(train, test, batch_size: int, eval_points: int) -> TrainingData:
    (x_train, _), (x_test, y_test) = train, test
    if batch_size > x_train.shape[0]:
        raise ValueError(f"train.batch_size ({batch_size}) exceeds the {x_train.shape[0]} training images")
    batcher = make_batcher(x_train, batch_size)
    n = min(eval_points, x_test.shape[0])
    return TrainingData(batcher.data, batcher.batch_at, tuple(x_train.shape[1:]), x_test[:n], y_test[:n], None, x_train)


def _digits(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    split = lambda name: load_digits(name, resize=image_size)  # noqa: E731
    return _images(split("train"), split("test"), batch_size, eval_points)


def _fashion_mnist(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    split = lambda name: load_fashion_mnist(path, name, resize=image_size)  # noqa: E731
    return _images(split("train"), split("test"), batch_size, eval_points)


def stored_training_data(dataset: published.StoredGrid, key: Array, *, batch_size: int,
                         eval_points: int) -> TrainingData:
    """A :class:`TrainingData` of a stored grid: uint8 on device, float32 per batch.

    The uint8 images go to the default device once (``make_batcher``) and the
    returned ground-truth object indexes that copy, so no second copy of the
    data set is kept. Each batch is gathered and converted to float32 in
    [0, 1] inside the training program. ``key`` draws the evaluation factors
    and the PCA rows (split as every registered data set splits it).
    """
    n = dataset.num_images
    if batch_size > n:
        raise ValueError(f"train.batch_size ({batch_size}) exceeds the {n} images of {dataset.path!r}")
    key_eval, key_pca, _ = jax.random.split(key, 3)
    batcher = make_batcher(dataset.imgs, batch_size)
    dataset = dataset.with_images(batcher.data)
    batch_at = batcher.batch_at

    def batch(key, step, data):
        return batch_at(key, step, data).astype(jnp.float32) / 255.0  # [b, H, W, C]

    factors = dataset.sample_factors(key_eval, eval_points)
    rows = np.asarray(jax.random.choice(key_pca, n, (min(PCA_POINTS, n),), replace=False))
    pca = jnp.asarray(dataset.imgs[np.sort(rows)]).astype(jnp.float32) / 255.0
    return TrainingData(batcher.data, batch, dataset.image_shape, dataset.images(factors), factors, dataset, pca)


def variant_training_data(dataset: dsprites_variants.DSpritesVariant, key: Array, *, batch_size: int,
                          eval_points: int) -> TrainingData:
    """A :class:`TrainingData` streaming a dSprites variant (no stored images)."""
    key_eval, key_pca, _ = jax.random.split(key, 3)
    stream = dsprites_variants.make_variant_stream(dataset, batch_size)
    batch = lambda key, step, data: stream(jax.random.fold_in(key, step))[0]  # noqa: E731
    factors = dataset.sample_factors(key_eval, eval_points)
    pca = dataset.images(dataset.sample_factors(key_pca, PCA_POINTS))
    return TrainingData(None, batch, dataset.image_shape, dataset.images(factors), factors, dataset, pca)


def _native_size(name: str, image_size: int | None) -> None:
    """The published grids and the variants come in 64×64 only (``data.image_size`` unset or 64)."""
    if image_size not in (None, published.IMAGE_SIZE):
        size = published.IMAGE_SIZE
        raise ValueError(f"data.image_size={image_size} is not supported for data.name={name!r}: its images are "
                         f"{size}×{size}; leave data.image_size unset")


def _shapes3d(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    _native_size("shapes3d", image_size)
    return stored_training_data(published.load_shapes3d(path), key, batch_size=batch_size, eval_points=eval_points)


def _mpi3d(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    """The published sizes, or those of the file's ``factor_sizes``."""
    _native_size("mpi3d", image_size)
    return stored_training_data(published.load_mpi3d(path), key, batch_size=batch_size, eval_points=eval_points)


def _cars3d(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    grid = published.load_cars3d(path, size=image_size or published.IMAGE_SIZE)
    return stored_training_data(grid, key, batch_size=batch_size, eval_points=eval_points)


def _smallnorb(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
    grid = published.load_smallnorb(path, size=image_size or published.IMAGE_SIZE)
    return stored_training_data(grid, key, batch_size=batch_size, eval_points=eval_points)


def _dsprites_variant(name: str, make: Callable[[Any], Any]) -> Callable[..., TrainingData]:
    """The loader of one dSprites variant; ``make(path)`` builds it (only scream reads ``data.path``)."""

    def load(key, *, batch_size, eval_points, path, image_size) -> TrainingData:
        _native_size(name, image_size)
        return variant_training_data(make(path), key, batch_size=batch_size, eval_points=eval_points)

    return load


#: ``data.name`` → its loader. ``dsprites`` renders procedurally (no download),
#: ``dsprites_pair`` renders two sprites per image with grouped factors
#: (:mod:`decompvae.data.grouped`, ``ground_truth.factor_groups``),
#: ``dsprites_file`` reads the official ``.npz`` at ``data.path``,
#: ``fashion_mnist`` the IDX files in the directory ``data.path``, ``digits``
#: is scikit-learn's bundled 8×8 digits, ``pinwheel`` the paper's 2-D clustering data and
#: ``hierarchical_toy`` 16-D points from a parent → child latent model
#: (:mod:`decompvae.data.hierarchical`; labels: the latents cut into classes).
#: ``shapes3d`` (``3dshapes.h5``), ``mpi3d`` (an ``mpi3d_*.npz``), ``cars3d`` (a
#: folder of ``.mat`` files) and ``smallnorb`` (a folder of the binary matrix
#: files) read the file or folder at ``data.path`` (:mod:`decompvae.data.published`);
#: ``color_dsprites``, ``noisy_dsprites`` and ``scream_dsprites`` render
#: disentanglement_lib's variants (:mod:`decompvae.data.dsprites_variants`;
#: scream's background image is the optional ``data.path``).
_SPRITES = _fixed((64, 64, 1))
_COLOUR_64 = _fixed((published.IMAGE_SIZE, published.IMAGE_SIZE, 3))

DATASETS: dict[str, DatasetSpec] = {
    "dsprites": DatasetSpec(_procedural_dsprites, _SPRITES),
    "dsprites_file": DatasetSpec(_dsprites_file, _SPRITES, needs_path=True),
    "dsprites_pair": DatasetSpec(_procedural_pairs, _SPRITES),
    "digits": DatasetSpec(_digits, _square(8, 1)),
    "fashion_mnist": DatasetSpec(_fashion_mnist, _square(28, 1), needs_path=True),
    "pinwheel": DatasetSpec(_pinwheel, _fixed((2,))),
    "hierarchical_toy": DatasetSpec(_hierarchical_toy, _fixed((16,))),
    # The published disentanglement data sets (decompvae.data.published) and
    # disentanglement_lib's dSprites variants (decompvae.data.dsprites_variants).
    "shapes3d": DatasetSpec(_shapes3d, _COLOUR_64, needs_path=True),
    "mpi3d": DatasetSpec(_mpi3d, _COLOUR_64, needs_path=True),
    "cars3d": DatasetSpec(_cars3d, _square(published.IMAGE_SIZE, 3), needs_path=True),
    "smallnorb": DatasetSpec(_smallnorb, _square(published.IMAGE_SIZE, 1), needs_path=True),
    "color_dsprites": DatasetSpec(_dsprites_variant("color_dsprites", lambda path: dsprites_variants.color_dsprites()),
                                  _COLOUR_64),
    "noisy_dsprites": DatasetSpec(_dsprites_variant("noisy_dsprites", lambda path: dsprites_variants.noisy_dsprites()),
                                  _COLOUR_64),
    "scream_dsprites": DatasetSpec(_dsprites_variant("scream_dsprites", dsprites_variants.scream_dsprites), _COLOUR_64),
}


def load_training_data(
    name: str, key: Array, *, batch_size: int, eval_points: int, path: str | None = None,
    image_size: int | None = None,
) -> TrainingData:
    """Load the data set ``name`` of :data:`DATASETS` (``key`` draws evaluation points and PCA rows)."""
    check_choice("data.name", name, tuple(DATASETS))
    return DATASETS[name].load(key, batch_size=batch_size, eval_points=eval_points, path=path, image_size=image_size)
