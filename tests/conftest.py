"""Test configuration shared by the whole suite.

Four simulated CPU devices are created before JAX is imported so that the
sharding tests can run anywhere; everything else runs on device 0. The tests
named in ``slow_tests.txt`` (measured: the longest ones of a full run) are
marked ``slow`` here, beside those marked in their own files.
"""

import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

SLOW_TESTS = Path(__file__).with_name("slow_tests.txt")


def slow_test_ids() -> set[str]:
    """The node ids listed in ``slow_tests.txt`` (comments and blank lines skipped)."""
    lines = (line.strip() for line in SLOW_TESTS.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config, items):
    slow = slow_test_ids()
    for item in items:  # an entry names a whole test function: every parametrization
        if item.nodeid.split("[")[0] in slow:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def key():
    """A fresh PRNG key for each test."""
    return jax.random.key(0)


@pytest.fixture
def x64():
    """Run the test body with float64 enabled (exactness tests)."""
    with jax.enable_x64(True):
        yield
