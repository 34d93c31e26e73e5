"""Sprite pairs: two sprites per image, factors in two groups, through the ground-truth interface."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from decompvae import config, data
from decompvae.data import sprites

SIZES = (3, 2, 4, 4, 4, 3, 2, 4, 4, 4)
N_IMAGES = 147_456
SPRITE_GRID = np.array(list(itertools.product(*map(range, SIZES[:5]))), np.int32)  # [384, 5]
P_VALUE = 1e-3  # chi-square uniformity tests reject below this
ROWS = 256  # one batch size throughout, so each renderer compiles once


@jax.jit
def _render(shape, scale, angle, pos_x, pos_y):
    return sprites.render(shape, scale, angle, pos_x, pos_y)


def oracle_sprite(factors, side):
    """One sprite per row from the documented geometry, drawn by the dSprites renderer."""
    factors = np.asarray(factors)
    centre_x = 10.375 + 3.75 * factors[:, 3] + 32 * side
    centre_y = 11.75 + 13.5 * factors[:, 4]
    to_pos = lambda c: (c - sprites.POSITION_MARGIN) / sprites.POSITION_SPAN  # noqa: E731
    scale = np.array([0.5, 0.75])[factors[:, 1]]
    angle = factors[:, 2] * np.pi / 8
    return np.asarray(_render(factors[:, 0], scale, angle, to_pos(centre_x), to_pos(centre_y)))[..., 0]


def test_interface_sizes_and_groups(key):
    ds = data.ProceduralSpritePairs()
    assert isinstance(ds, data.GroundTruthData)
    assert ds.factor_sizes == SIZES and ds.num_images == N_IMAGES == np.prod(SIZES) and ds.is_full_grid
    assert ds.factor_groups == ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9)) and ds.group_names == ("sprite_a", "sprite_b")
    assert sorted(k for g in ds.factor_groups for k in g) == list(range(len(SIZES)))  # a partition
    for group, prefix in zip(ds.factor_groups, ("a_", "b_")):
        assert [ds.factor_names[k] for k in group] == [prefix + n for n in sprites.FACTOR_NAMES]
    factors = ds.sample_factors(key, ROWS)
    assert factors.shape == (ROWS, 10) and factors.dtype == jnp.int32
    images = ds.images(factors)
    assert images.shape == (ROWS, 64, 64, 1) and images.dtype == jnp.float32
    assert set(np.unique(np.asarray(images))) == {0.0, 1.0}


def test_images_are_the_union_of_the_two_sprites(key):
    factors = np.asarray(data.ProceduralSpritePairs().sample_factors(key, ROWS))
    left, right = oracle_sprite(factors[:, :5], 0), oracle_sprite(factors[:, 5:], 1)
    images = np.asarray(data.ProceduralSpritePairs().images(factors))[..., 0]
    np.testing.assert_array_equal(images, np.maximum(left, right))
    single = jax.jit(data.render_sprite_factors, static_argnames="side")(factors[:, :5], side=0)
    np.testing.assert_array_equal(np.asarray(single)[..., 0], left)
    assert not left[:, :, 32:].any() and not right[:, :, :32].any()  # disjoint halves: no overlap
    assert left.sum(axis=(1, 2)).min() > 0 and right.sum(axis=(1, 2)).min() > 0


def test_sprites_stay_inside_their_half_and_all_images_differ():
    """Every sprite keeps all its pixels: an integer shift to the image centre draws the same count."""
    a = oracle_sprite(SPRITE_GRID, 0)
    np.testing.assert_array_equal(oracle_sprite(SPRITE_GRID, 1), np.roll(a, 32, axis=2))  # B: A shifted by 32
    shift_x = 16
    shift_y = np.round(32 - (11.75 + 13.5 * SPRITE_GRID[:, 4]))  # integer shifts: the same rasterisation
    centred = np.asarray(_render(
        SPRITE_GRID[:, 0], np.array([0.5, 0.75])[SPRITE_GRID[:, 1]], SPRITE_GRID[:, 2] * np.pi / 8,
        (10.375 + 3.75 * SPRITE_GRID[:, 3] + shift_x - sprites.POSITION_MARGIN) / sprites.POSITION_SPAN,
        (11.75 + 13.5 * SPRITE_GRID[:, 4] + shift_y - sprites.POSITION_MARGIN) / sprites.POSITION_SPAN,
    ))[..., 0]
    np.testing.assert_array_equal(a.sum(axis=(1, 2)), centred.sum(axis=(1, 2)))
    assert len(np.unique(a.reshape(len(a), -1), axis=0)) == len(SPRITE_GRID)  # 384 distinct sprites
    assert a[:, :, 0].any() and a[:, :, 31].any()  # positions span the half


def test_every_factor_step_changes_its_sprite_only(key):
    base = np.asarray(data.ProceduralSpritePairs().sample_factors(key, ROWS))[:64]
    rows = []
    for factor, size in enumerate(SIZES):
        steps = np.repeat(base[:, None], size, axis=1)
        steps[:, :, factor] = np.arange(size)
        rows.append(steps.reshape(-1, 10))
    images = np.asarray(data.ProceduralSpritePairs().images(np.concatenate(rows)))[..., 0]  # one render call
    start = 0
    for factor, size in enumerate(SIZES):
        block = images[start : start + 64 * size].reshape(64, size, 64, 64)
        start += 64 * size
        diff = block[:, 1:] != block[:, :-1]  # [64, size-1, 64, 64]
        mine, other = (slice(0, 32), slice(32, 64)) if factor < 5 else (slice(32, 64), slice(0, 32))
        assert np.all(diff[..., mine].any(axis=(-2, -1))), factor
        assert not diff[..., other].any(), factor


def test_index_round_trip_and_order():
    ds = data.ProceduralSpritePairs()
    index = jnp.arange(N_IMAGES)
    factors = ds.index_to_factors(index)
    np.testing.assert_array_equal(ds.factors_to_index(factors), index)
    np.testing.assert_array_equal(factors, np.stack(np.unravel_index(np.arange(N_IMAGES), SIZES), 1))
    np.testing.assert_array_equal(factors[1], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1])  # B's posY fastest
    np.testing.assert_array_equal(factors[-1], np.array(SIZES) - 1)


def test_iter_grid_covers_the_grid_in_index_order():
    ds = data.ProceduralSpritePairs()
    seen, batches = 0, 0
    for factors, images in ds.iter_grid(batch_size=50_000):  # the last batch is shorter
        np.testing.assert_array_equal(ds.factors_to_index(factors), seen + np.arange(len(factors)))
        if batches == 2:
            np.testing.assert_array_equal(images[-ROWS:], ds.images(factors[-ROWS:]))
        seen, batches = seen + len(factors), batches + 1
    assert seen == N_IMAGES and batches == 3
    with pytest.raises(ValueError, match="batch_size"):
        next(ds.iter_grid(batch_size=0))


def test_sample_factors_uniform_and_deterministic(key):
    ds = data.ProceduralSpritePairs()
    factors = np.asarray(ds.sample_factors(key, 38_400))
    np.testing.assert_array_equal(factors, ds.sample_factors(key, 38_400))
    for f, size in enumerate(SIZES):
        counts = np.bincount(factors[:, f], minlength=size)
        assert len(counts) == size and stats.chisquare(counts).pvalue > P_VALUE, f
    for group in ds.factor_groups:  # each group's joint class: 384 classes, 100 expected each
        joint = np.ravel_multi_index(tuple(factors[:, list(group)].T), SIZES[:5])
        assert stats.chisquare(np.bincount(joint, minlength=384)).pvalue > P_VALUE
    table = np.histogram2d(factors[:, 0], factors[:, 5], bins=(3, 3))[0]  # A's shape ⟂ B's shape
    assert stats.chi2_contingency(table).pvalue > P_VALUE


def test_jit_and_dtypes(key):
    ds = data.ProceduralSpritePairs()
    factors = ds.sample_factors(key, ROWS)
    eager = ds.images(factors)
    jitted = jax.jit(lambda k: ds.images(ds.sample_factors(k, ROWS)))(key)
    np.testing.assert_array_equal(eager, jitted)
    as_uint8 = np.asarray(jax.jit(data.render_pair_factors, static_argnames="dtype")(factors, dtype=jnp.uint8))
    assert as_uint8.dtype == np.uint8
    np.testing.assert_array_equal(as_uint8.astype(np.float32), eager)
    with pytest.raises(ValueError, match="side"):
        data.render_sprite_factors(SPRITE_GRID, side=2)


def test_registered_training_data(key):
    assert "dsprites_pair" in data.DATASETS
    assert config.DataConfig(name="dsprites_pair").name == "dsprites_pair"
    loaded = data.load_training_data("dsprites_pair", key, batch_size=ROWS, eval_points=ROWS)
    truth = loaded.ground_truth
    assert isinstance(truth, data.ProceduralSpritePairs) and loaded.data is None
    assert loaded.data_shape == (64, 64, 1) and loaded.eval_labels.shape == (ROWS, 10)
    np.testing.assert_array_equal(loaded.eval_x, truth.images(loaded.eval_labels))
    assert loaded.pca_source.shape == (2000, 64, 64, 1)
    batch = jax.jit(loaded.batch)
    first, again, second = (batch(key, jnp.int32(step), None) for step in (0, 0, 1))
    assert first.shape == (ROWS, 64, 64, 1) and first.dtype == jnp.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)
    # A step's batch: the images of uniform factors drawn with fold_in(key, step) (make_pair_stream).
    np.testing.assert_array_equal(first, truth.images(truth.sample_factors(jax.random.fold_in(key, 0), ROWS)))
