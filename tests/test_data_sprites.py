"""Procedural dSprites: geometry, factor conventions and the ground-truth interface."""

import itertools

import jax
import matplotlib.image
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae import data
from decompvae.data import __main__ as data_cli
from decompvae.data import sprites

N_IMAGES = 737_280
SIZES = (3, 6, 40, 32, 32)
ANGLES = np.linspace(0.0, 2 * np.pi, 40)
AREA_RTOL = 0.03  # mean pixel count over the 40 orientations vs the analytic area
SQUARE_AREA = (2 * sprites.SQUARE_HALF_SIDE) ** 2
ELLIPSE_AREA = np.pi * sprites.ELLIPSE_SEMI_AXES[0] * sprites.ELLIPSE_SEMI_AXES[1]
HEART_AREA = 3.6595 * sprites.HEART_UNIT**2  # area of (x²+y²−1)³ ≤ x²y³ is ≈ 3.6595


def render_np(factors, dtype=jnp.uint8):
    return np.asarray(data.render_factors(jnp.asarray(factors, jnp.int32), dtype=dtype))[..., 0]


def render_centred(shape, scale, angles, offset=(0.0, 0.0)):
    """Sprites centred at pixel coordinate (32 + dx, 32 + dy): a symmetric grid when offset = 0."""
    n = len(angles)
    pos = [(32.0 + o - sprites.POSITION_MARGIN) / sprites.POSITION_SPAN for o in offset]
    out = data.render(
        jnp.full(n, shape), jnp.full(n, scale), jnp.asarray(angles), jnp.full(n, pos[0]), jnp.full(n, pos[1])
    )
    return np.asarray(out)[..., 0]


def all_sprites(pos_x, pos_y):
    """Factor classes of the 720 (shape, scale, orientation) sprites at one position."""
    grid = np.array(list(itertools.product(range(3), range(6), range(40))), np.int32)
    return np.concatenate([grid, np.full((720, 1), pos_x), np.full((720, 1), pos_y)], axis=1)


def centroid(images):
    """(column, row) centroid of pixel centres ``[n, 2]``."""
    rows, cols = np.mgrid[:64, :64] + 0.5
    mass = images.sum(axis=(1, 2))
    return np.stack([(images * cols).sum((1, 2)) / mass, (images * rows).sum((1, 2)) / mass], axis=1)


# --- the ground-truth interface -------------------------------------------------


def test_interface_and_sizes(key):
    ds = data.dsprites()
    assert isinstance(ds, data.GroundTruthData)
    assert ds.factor_sizes == SIZES
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.num_images == N_IMAGES and ds.is_full_grid
    factors = ds.sample_factors(key, 500)
    assert factors.shape == (500, 5) and factors.dtype == jnp.int32
    assert np.all(np.asarray(factors) >= 0) and np.all(np.asarray(factors) < np.array(SIZES))
    assert all(len(np.unique(np.asarray(factors)[:, f])) == min(s, 500) for f, s in enumerate(SIZES) if s < 40)
    images = ds.images(factors)
    assert images.shape == (500, 64, 64, 1) and images.dtype == jnp.float32
    assert set(np.unique(np.asarray(images))) == {0.0, 1.0}


def test_same_key_same_batch_and_jit(key):
    ds = data.dsprites()
    f1, f2 = ds.sample_factors(key, 64), ds.sample_factors(key, 64)
    np.testing.assert_array_equal(f1, f2)
    assert not np.array_equal(f1, ds.sample_factors(jax.random.key(1), 64))
    eager = ds.images(f1)
    jitted = jax.jit(lambda k: ds.images(ds.sample_factors(k, 64)))(key)
    np.testing.assert_array_equal(eager, jitted)
    np.testing.assert_array_equal(eager[..., 0], render_np(f1, jnp.float32))


def test_same_pixels_with_x64(key, x64):
    factors = np.asarray(jax.random.randint(key, (64, 5), 0, jnp.array(SIZES)))
    with_x64 = np.asarray(data.render_factors(factors))
    with jax.enable_x64(False):
        without = np.asarray(data.render_factors(factors))
    np.testing.assert_array_equal(with_x64, without)


def test_images_binary_in_both_dtypes(key):
    factors = data.dsprites().sample_factors(key, 256)
    as_float = np.asarray(data.render_factors(factors))
    as_uint8 = np.asarray(data.render_factors(factors, dtype=jnp.uint8))
    assert as_uint8.dtype == np.uint8 and set(np.unique(as_uint8)) == {0, 1}
    np.testing.assert_array_equal(as_float, as_uint8.astype(np.float32))


def test_index_factor_round_trip_and_order():
    index = jnp.arange(N_IMAGES)
    factors = data.index_to_factors(index, SIZES)
    assert factors.dtype == jnp.int32
    np.testing.assert_array_equal(data.factors_to_index(factors, SIZES), index)
    np.testing.assert_array_equal(factors[1], [0, 0, 0, 0, 1])  # posY fastest
    np.testing.assert_array_equal(factors[32], [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(factors[32 * 32 * 40 * 6], [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(factors[-1], [2, 5, 39, 31, 31])
    # Same order as NumPy's C-order multi-index.
    np.testing.assert_array_equal(factors, np.stack(np.unravel_index(np.arange(N_IMAGES), SIZES), 1))


def test_official_latent_conventions():
    factors = np.array([[0, 0, 0, 0, 0], [2, 5, 39, 31, 31], [1, 3, 10, 7, 30]])
    classes = data.latents_classes(factors)
    values = data.latents_values(factors)
    assert classes.dtype == np.int64 and values.dtype == np.float64 and classes.shape == (3, 6)
    np.testing.assert_array_equal(classes[:, 0], 0)
    np.testing.assert_array_equal(classes[:, 1:], factors)
    np.testing.assert_allclose(values[0], [1, 1, 0.5, 0, 0, 0])
    np.testing.assert_allclose(values[1], [1, 3, 1, 2 * np.pi, 1, 1])
    np.testing.assert_allclose(values[2], [1, 2, 0.8, 10 * 2 * np.pi / 39, 7 / 31, 30 / 31])
    np.testing.assert_allclose(data.factor_values(factors), values[:, 1:], rtol=1e-6)
    # values -> classes, the other way, on the whole grid
    grid = data.index_to_factors(jnp.arange(N_IMAGES)[::97], SIZES)
    np.testing.assert_array_equal(data.factor_classes(data.factor_values(grid)), grid)
    np.testing.assert_array_equal(data.factor_classes(values[:, 1:] + 0.004), factors)
    np.testing.assert_array_equal(sprites.factors_from_latents_classes(classes), factors)


# --- geometry ---------------------------------------------------------------------


@pytest.mark.parametrize("factor", range(5))
def test_every_factor_step_changes_the_image(key, factor):
    """Every adjacent class step of every factor changes the image (200 random bases)."""
    base = np.asarray(data.dsprites().sample_factors(key, 200))
    size = SIZES[factor]
    steps = np.repeat(base[:, None], size, axis=1)
    steps[:, :, factor] = np.arange(size)
    images = render_np(steps.reshape(-1, 5)).reshape(200, size, 64 * 64)
    changed = np.any(images[:, 1:] != images[:, :-1], axis=-1)  # [200, size-1]
    if factor == 2:  # orientation 0 and 2π are the same angle
        assert np.all(changed)
        np.testing.assert_array_equal(images[:, 0], images[:, -1])
    else:
        assert np.all(changed)


@pytest.mark.parametrize("axis", [0, 1])
def test_position_steps_move_centroid_one_way(key, axis):
    """posX moves the centroid right and posY down, by ≈ 36.8/31 px per step."""
    base = np.asarray(data.dsprites().sample_factors(key, 60))
    steps = np.repeat(base[:, None], 32, axis=1)
    steps[:, :, 3 + axis] = np.arange(32)
    images = render_np(steps.reshape(-1, 5)).reshape(60 * 32, 64, 64)
    c = centroid(images).reshape(60, 32, 2)
    moved, fixed = c[..., axis], c[..., 1 - axis]
    assert np.all(np.diff(moved, axis=1) > 0)
    np.testing.assert_allclose(moved[:, -1] - moved[:, 0], sprites.POSITION_SPAN, atol=0.5)
    assert np.all(np.ptp(fixed, axis=1) < 0.5)


def test_centroid_of_symmetric_shapes_is_the_position():
    combos = itertools.product((0, 1), (0, 5), (0, 7), ((0, 0), (13, 31), (31, 4)))
    factors = np.array([[s, c, o, x, y] for s, c, o, (x, y) in combos])
    expected = sprites.POSITION_MARGIN + sprites.POSITION_SPAN * factors[:, 3:] / 31
    np.testing.assert_allclose(centroid(render_np(factors)), expected, atol=0.35)


def test_area_grows_with_scale_and_matches_geometry():
    grid = all_sprites(15, 16).reshape(3, 6, 40, 5)
    area = render_np(grid.reshape(-1, 5)).sum(axis=(1, 2)).reshape(3, 6, 40)
    assert np.all(np.diff(area, axis=1) > 0)
    scale2 = np.linspace(0.5, 1, 6)[:, None] ** 2
    for shape, analytic in enumerate((SQUARE_AREA, ELLIPSE_AREA, HEART_AREA)):
        np.testing.assert_allclose(area[shape].mean(axis=1), analytic * scale2[:, 0], rtol=AREA_RTOL)
    np.testing.assert_allclose(area[:, -1].mean(axis=1) / area[:, 0].mean(axis=1), 4.0, rtol=AREA_RTOL)


def test_official_look_sizes():
    """Scale-1 square ≈ 19 px wide; the ellipse lies flat at orientation 0."""
    images = render_np([[0, 5, 0, 15, 15], [1, 5, 0, 15, 15], [2, 5, 0, 15, 15]])
    rows, cols = images.any(axis=2), images.any(axis=1)
    width, height = cols.sum(axis=1), rows.sum(axis=1)
    assert width[0] in (19, 20) and height[0] in (19, 20)
    assert width[1] in (25, 26, 27) and height[1] in (12, 13, 14)
    assert 19 <= width[2] <= 22 and 18 <= height[2] <= 22


def test_rotation_symmetries_of_the_grid():
    """Centred sprites: square invariant under 90°, ellipse under 180°, θ ↔ 2π−θ mirrors."""
    for scale in np.linspace(0.5, 1, 6):
        square, ellipse, heart = (render_centred(s, scale, ANGLES) for s in range(3))
        np.testing.assert_array_equal(square, np.rot90(square, 1, axes=(1, 2)))
        np.testing.assert_array_equal(ellipse, np.rot90(ellipse, 2, axes=(1, 2)))
        for images in (square, ellipse, heart):  # orientation 39 − k is the mirror of k
            np.testing.assert_array_equal(images[::-1], images[:, :, ::-1])
        # The symmetries are specific: the ellipse is not 90°-, the heart not 180°-invariant.
        assert np.any(ellipse != np.rot90(ellipse, 1, axes=(1, 2)))
        assert np.any(heart != np.rot90(heart, 2, axes=(1, 2)))
    # Off-grid angles follow the geometry too.
    np.testing.assert_array_equal(render_centred(0, 0.8, ANGLES + np.pi / 2), render_centred(0, 0.8, ANGLES))
    np.testing.assert_array_equal(render_centred(1, 0.8, ANGLES + np.pi), render_centred(1, 0.8, ANGLES))


def test_rotation_is_counter_clockwise_as_displayed():
    ellipse = render_centred(1, 1.0, [np.pi / 4])[0]
    rows, cols = np.nonzero(ellipse)
    up, right = -(rows - rows.mean()), cols - cols.mean()
    assert np.mean(up * right) > 10.0  # long axis from bottom-left to top-right


def test_heart_points_down():
    heart = render_centred(2, 1.0, [0.0])[0]
    rows = np.nonzero(heart.any(axis=1))[0]
    bottom, top = heart[rows[-1]], heart[rows[0]]
    assert np.all(np.abs(np.nonzero(bottom)[0] + 0.5 - 32) <= 1.5)  # the tip, on the axis
    assert not top[31] and not top[32] and top[:31].any() and top[33:].any()  # two lobes on top
    c = centroid(heart[None])[0]
    assert c[1] < 32 - 1.0  # mass above the centre
    upside_down = render_centred(2, 1.0, [np.pi])[0]
    np.testing.assert_array_equal(upside_down, heart[::-1, ::-1])


def test_sprites_stay_inside_the_image():
    """No sprite point is farther than the position margin from its centre (16 sub-pixel phases)."""
    farthest = 0.0
    for dx, dy in itertools.product((0.0, 0.25, 0.5, 0.75), repeat=2):
        for shape in range(3):
            images = render_centred(shape, 1.0, ANGLES, offset=(dx, dy)).any(axis=0)
            rows, cols = np.nonzero(images)
            farthest = max(farthest, np.abs(cols + 0.5 - 32 - dx).max(), np.abs(rows + 0.5 - 32 - dy).max())
    assert sprites.POSITION_SPAN / 2 + farthest <= 32.0  # centre 13.6…50.4 keeps it inside
    assert farthest > sprites.POSITION_MARGIN - 0.5  # and the margin is not wasted
    corners = render_np(all_sprites(0, 0))
    assert corners[:, 0, :].any() and corners[:, :, 0].any()  # positions span the image


def test_iter_grid_order():
    ds = data.dsprites()
    (f0, x0), (f1, x1) = itertools.islice(ds.iter_grid(batch_size=256), 2)
    np.testing.assert_array_equal(f0, data.index_to_factors(jnp.arange(256), SIZES))
    np.testing.assert_array_equal(f1, data.index_to_factors(jnp.arange(256, 512), SIZES))
    np.testing.assert_array_equal(x1, ds.images(f1))
    with pytest.raises(ValueError, match="batch_size"):
        next(ds.iter_grid(batch_size=0))


@pytest.mark.slow
def test_iter_grid_covers_everything_once():
    seen, count = 0, 0
    for factors, images in data.dsprites().iter_grid(batch_size=100_000):  # last batch shorter
        np.testing.assert_array_equal(data.factors_to_index(factors, SIZES), seen + np.arange(len(factors)))
        seen += len(factors)
        count += int(images.sum() > 0)
    assert seen == N_IMAGES and count == 8


def test_grid_png(tmp_path):
    path = tmp_path / "grid.png"
    tiled = sprites.save_grid(path, jax.random.key(0))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = matplotlib.image.imread(path)
    assert saved.shape[:2] == tiled.shape == (8 * 66 - 2, 10 * 66 - 2)
    np.testing.assert_allclose(saved[..., 0], tiled, atol=1 / 255)
    data_cli.main(["--grid", str(tmp_path / "cli.png")])
    assert (tmp_path / "cli.png").stat().st_size > 0
