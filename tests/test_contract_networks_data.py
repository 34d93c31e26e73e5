"""The contracts of :data:`decompvae.networks.NETWORKS` and :data:`decompvae.data.DATASETS`.

Networks: built on their example shape, the encoder maps ``[b, *shape]`` to ``(loc, raw)`` each ``[b, D]`` and
the decoder ``[b, D]`` back to ``[b, *shape]`` (shapes by ``jax.eval_shape``: nothing is compiled), and
``accepts`` agrees with the builder: a shape it refuses, the builder refuses too. Data sets: the shape the
registry declares is the shape of the points the loader serves (the published grids and dSprites variants
are loaded in tests/test_datasets_published.py, against the same declared shapes), and every pairing of data set and network a config accepts builds.
"""

import jax
import jax.numpy as jnp
import pytest

from decompvae import data, networks
from decompvae.config import load_config

DIM = 3
NETWORK_NAMES = sorted(networks.NETWORKS)
#: The published grids and dSprites variants are loaded (from fixtures) in tests/test_datasets_published.py, whose
#: REGISTERED shapes are checked against the declared ones there; these are the others.
PUBLISHED = ("shapes3d", "mpi3d", "cars3d", "smallnorb", "color_dsprites", "noisy_dsprites", "scream_dsprites")
LOADABLE = sorted(name for name, spec in data.DATASETS.items() if not spec.needs_path and name not in PUBLISHED)


def _shapes(name: str, shape: tuple[int, ...]):
    encoder, decoder = networks.make_networks(name, DIM, data_shape=shape)
    key, x, z = jax.random.key(0), jnp.zeros((2, *shape)), jnp.zeros((2, DIM))
    loc, raw = jax.eval_shape(lambda k, x: encoder.apply(encoder.init(k, x), x), key, x)
    out = jax.eval_shape(lambda k, z: decoder.apply(decoder.init(k, z), z), key, z)
    return loc.shape, raw.shape, out.shape


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_every_network_maps_its_example_shape_both_ways(name):
    spec = networks.NETWORKS[name]
    assert spec.accepts(spec.example_shape)
    assert _shapes(name, spec.example_shape) == ((2, DIM), (2, DIM), (2, *spec.example_shape))


@pytest.mark.parametrize("name", NETWORK_NAMES)
def test_a_refused_shape_is_refused_by_the_builder_too(name):
    spec = networks.NETWORKS[name]
    for shape in [(2,), (16, 16, 1), (64, 64, 3), (32, 32, 3)]:
        if not spec.accepts(shape):
            with pytest.raises(ValueError):
                networks.make_networks(name, DIM, data_shape=shape)


@pytest.mark.parametrize("name", LOADABLE)
def test_every_loadable_data_set_serves_its_declared_shape(name):
    spec = data.DATASETS[name]
    training = data.load_training_data(name, jax.random.key(0), batch_size=4, eval_points=8)
    assert training.data_shape == spec.shape(None)
    batch = jax.jit(training.batch)(jax.random.key(1), jnp.int32(0), training.data)
    assert batch.shape == (4, *spec.shape(None)) and training.eval_x.shape[1:] == spec.shape(None)


def test_declared_shapes_follow_image_size():
    assert data.DATASETS["digits"].shape(32) == (32, 32, 1)
    training = data.load_training_data("digits", jax.random.key(0), batch_size=4, eval_points=8, image_size=32)
    assert training.data_shape == (32, 32, 1)


@pytest.mark.parametrize("network", NETWORK_NAMES)
def test_a_config_pairs_data_and_network_by_the_declared_shapes(network, tmp_path):
    for name, spec in data.DATASETS.items():
        overrides = [f"data.name={name}", f"model.network={network}", f"output_dir={tmp_path}"]
        overrides += ["data.image_size=32"] if name in ("digits", "fashion_mnist") else []
        overrides += ["data.path=/nowhere"] if spec.needs_path else []
        shape = spec.shape(32 if name in ("digits", "fashion_mnist") else None)
        if networks.NETWORKS[network].accepts(shape):
            assert load_config(None, overrides).model.network == network
            assert _shapes(network, shape)[2] == (2, *shape)
        else:
            with pytest.raises(ValueError, match=f"model.network={network!r} expects"):
                load_config(None, overrides)
