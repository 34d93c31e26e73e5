"""Device-side batching: keyed bijections, epoch permutations, jittable batches, the dSprites stream."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from decompvae import data

CHI2_P_MIN = 1e-3  # uniformity tests: fixed keys, so the outcome is deterministic


@pytest.mark.parametrize("n", [1, 2, 3, 5, 400, 1000, 4097, 65_537])
def test_feistel_is_a_bijection(key, n):
    image = jax.jit(data.feistel_permute, static_argnums=2)(key, jnp.arange(n), n)
    assert image.dtype == jnp.int32
    np.testing.assert_array_equal(np.sort(np.asarray(image)), np.arange(n))


def test_feistel_depends_on_the_key_and_is_uniform_enough(key):
    n = 100
    first = data.feistel_permute(key, jnp.arange(n), n)
    np.testing.assert_array_equal(first, data.feistel_permute(key, jnp.arange(n), n))
    assert not np.array_equal(first, data.feistel_permute(jax.random.key(1), jnp.arange(n), n))
    assert not np.array_equal(first, np.arange(n))
    # Where index 0 and index 57 land, over 5,000 keys: uniform on [0, n).
    keys = jax.random.split(key, 5000)
    landed = jax.vmap(lambda k: data.feistel_permute(k, jnp.array([0, 57]), n))(keys)
    for column in np.asarray(landed).T:
        counts = np.bincount(column, minlength=n)
        assert scipy.stats.chisquare(counts).pvalue > CHI2_P_MIN
    # Neighbouring indices are not carried together (no affine structure).
    gaps = np.asarray(landed[:, 1] - landed[:, 0]) % n
    assert scipy.stats.chisquare(np.bincount(gaps, minlength=n)[1:]).pvalue > CHI2_P_MIN


@pytest.mark.parametrize("shuffle", ["feistel", "permutation"])
def test_epochs_visit_each_example_once(key, shuffle):
    n, b = 103, 10
    indices_at = jax.jit(data.make_index_sampler(n, b, shuffle=shuffle))
    epochs = [np.concatenate([indices_at(key, e * 10 + s) for s in range(10)]) for e in range(3)]
    for order in epochs:
        assert len(np.unique(order)) == 100 and order.min() >= 0 and order.max() < n
    assert not np.array_equal(epochs[0], epochs[1])
    np.testing.assert_array_equal(indices_at(key, 27), data.make_index_sampler(n, b, shuffle=shuffle)(key, 27))
    if shuffle == "permutation":  # exactly jax.random.permutation of fold_in(key, epoch)
        np.testing.assert_array_equal(epochs[2], jax.random.permutation(jax.random.fold_in(key, 2), n)[:100])


def test_batcher_returns_the_indexed_rows(key):
    n = 50
    images = jnp.arange(n * 6, dtype=jnp.float32).reshape(n, 2, 3)
    labels = jnp.arange(n) * 10
    batcher = data.make_batcher({"x": images, "y": labels}, 8)
    assert batcher.steps_per_epoch == 6
    batch = jax.jit(batcher.batch_at)(key, 13, batcher.data)
    index = batcher.indices_at(key, 13)
    np.testing.assert_array_equal(batch["x"], images[index])
    np.testing.assert_array_equal(batch["y"], labels[index])
    assert batch["x"].shape == (8, 2, 3)


def test_batcher_inside_scan_has_no_host_round_trip(key):
    """A whole epoch in one lax.scan with a traced step equals a Python loop."""
    values = jnp.arange(40.0)
    batcher = data.make_batcher(values, 5)

    @jax.jit
    def epoch_sums(key, dataset):
        def body(total, step):
            batch = batcher.batch_at(key, step, dataset)
            return total + batch.sum(), batch

        return jax.lax.scan(body, 0.0, jnp.arange(8))

    total, batches = epoch_sums(key, batcher.data)
    assert float(total) == float(values.sum())  # one epoch covers everything once
    loop = np.stack([batcher.batch_at(key, s, batcher.data) for s in range(8)])
    np.testing.assert_array_equal(batches, loop)


def test_batcher_validation():
    with pytest.raises(ValueError, match="leading size"):
        data.make_batcher((jnp.zeros(10), jnp.zeros(9)), 2)
    with pytest.raises(ValueError, match="batch_size must be ≤"):
        data.make_batcher(jnp.zeros(10), 11)
    with pytest.raises(ValueError, match="batch_size"):
        data.make_batcher(jnp.zeros(10), 0)
    with pytest.raises(ValueError, match="shuffle"):
        data.make_batcher(jnp.zeros(10), 2, shuffle="sorted")
    with pytest.raises(ValueError, match="at least one array"):
        data.make_batcher({}, 2)
    batcher = data.make_batcher((jnp.zeros(10), jnp.zeros(10)), 2)
    with pytest.raises(ValueError, match="structure"):
        batcher.batch_at(jax.random.key(0), 0, jnp.zeros(10))
    with pytest.raises(ValueError, match="leading size 10"):
        batcher.batch_at(jax.random.key(0), 0, (jnp.zeros(12), jnp.zeros(12)))


def test_dsprites_stream(key):
    sample = jax.jit(data.make_dsprites_stream(32))
    images, factors = sample(key)
    assert images.shape == (32, 64, 64, 1) and images.dtype == jnp.float32
    assert factors.shape == (32, 5) and factors.dtype == jnp.int32
    np.testing.assert_array_equal(images, data.render_factors(factors))
    np.testing.assert_array_equal(factors, data.dsprites().sample_factors(key, 32))
    again, _ = sample(key)
    np.testing.assert_array_equal(images, again)
    other, _ = sample(jax.random.fold_in(key, 1))
    assert not np.array_equal(images, other)
    small, _ = data.make_dsprites_stream(4, dtype=jnp.uint8)(key)
    assert small.dtype == jnp.uint8 and set(np.unique(np.asarray(small))) <= {0, 1}
