"""Test configuration shared by the whole suite.

Four simulated CPU devices are created before JAX is imported so that the
sharding tests can run anywhere; everything else runs on device 0.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def key():
    """A fresh PRNG key for each test."""
    return jax.random.key(0)


@pytest.fixture
def x64():
    """Run the test body with float64 enabled (exactness tests)."""
    with jax.enable_x64(True):
        yield
