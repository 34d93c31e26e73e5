"""Data: procedural dSprites, pinwheel, loaders for real files, batching.

- ``dsprites()``: the procedural dSprites renderer behind the ground-truth
  interface metrics use (``factor_sizes``, ``sample_factors``, ``images``,
  ``iter_grid``); ``dsprites(path)`` / ``load_dsprites(path)``: the official
  file behind the same interface.
- ``ProceduralSpritePairs()``: two sprites per image (:mod:`decompvae.data.grouped`), the
  same interface plus ``factor_groups`` (sprite A's and B's factors) for
  measures of independent subspaces.
- ``load_fashion_mnist``, ``load_digits``: image data sets in [0, 1].
- ``make_pinwheel``: the 2-D pinwheel data (Mathieu et al., 2019, clustering experiment).
- ``DATASETS`` / ``load_training_data``: the data sets a run can name, each
  loaded into a :class:`TrainingData` (batch function, evaluation points).
- ``make_batcher``, ``make_dsprites_stream``: jittable minibatches by
  (key, step) for training loops without host round-trips.
"""

from decompvae.data.batching import (
    Batcher,
    feistel_permute,
    make_batcher,
    make_dsprites_stream,
    make_index_sampler,
)
from decompvae.data.ground_truth import (
    GroundTruthData,
    factors_to_index,
    index_to_factors,
    sample_uniform_factors,
)
from decompvae.data.grouped import (
    PAIR_FACTOR_GROUPS,
    PAIR_FACTOR_NAMES,
    PAIR_FACTOR_SIZES,
    PAIR_GROUP_NAMES,
    ProceduralSpritePairs,
    make_pair_stream,
    render_pair_factors,
    render_sprite_factors,
)
from decompvae.data.loaders import (
    DSpritesFile,
    dsprites,
    load_digits,
    load_dsprites,
    load_fashion_mnist,
    read_idx,
    resize_images,
)
from decompvae.data.pinwheel import Pinwheel, make_pinwheel, pinwheel_from_noise, sample_pinwheel
from decompvae.data.sprites import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    ProceduralDSprites,
    factor_classes,
    factor_grid,
    factor_values,
    latents_classes,
    latents_values,
    render,
    render_factors,
)
from decompvae.data.sources import DATASETS, DatasetSpec, TrainingData, load_training_data

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "TrainingData",
    "load_training_data",
    "Batcher",
    "DSpritesFile",
    "FACTOR_NAMES",
    "FACTOR_SIZES",
    "GroundTruthData",
    "PAIR_FACTOR_GROUPS",
    "PAIR_FACTOR_NAMES",
    "PAIR_FACTOR_SIZES",
    "PAIR_GROUP_NAMES",
    "ProceduralSpritePairs",
    "make_pair_stream",
    "render_pair_factors",
    "render_sprite_factors",
    "Pinwheel",
    "ProceduralDSprites",
    "dsprites",
    "factor_classes",
    "factor_grid",
    "factor_values",
    "factors_to_index",
    "feistel_permute",
    "index_to_factors",
    "latents_classes",
    "latents_values",
    "load_digits",
    "load_dsprites",
    "load_fashion_mnist",
    "make_batcher",
    "make_dsprites_stream",
    "make_index_sampler",
    "make_pinwheel",
    "pinwheel_from_noise",
    "read_idx",
    "render",
    "render_factors",
    "resize_images",
    "sample_pinwheel",
    "sample_uniform_factors",
]
