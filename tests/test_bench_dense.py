"""Tests of ``benchmarks/dense_step.py``: the floor is the project's arithmetic, and a tiny run reports it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import dense_step
from decompvae.objective import Hyperparams


@pytest.fixture(scope="module")
def project():
    objective, trainer, init_params = dense_step.make_project()
    params = init_params(jax.random.key(0), None)
    return objective, params, dense_step.sprites_batch(16)


def test_flops_per_image_from_the_layer_shapes():
    # 4096·256 + 256·256 + 2·256·10 (encoder) + 10·256 + 256·256 + 256·4096 (decoder) multiply-adds, ×2 ×3
    products = 4096 * 256 + 256 * 256 + 2 * 256 * 10 + 10 * 256 + 256 * 256 + 256 * 4096
    assert dense_step.flops_per_image() == 6.0 * products == 13_415_424.0


def test_floor_equals_the_project_objective(project):
    """The floor is the same function: the same loss and gradients for the same parameters and key."""
    objective, params, x = project
    key = jax.random.key(7)
    floor = dense_step.floor_params(params)
    loss, _ = objective(key, params, Hyperparams(prior={}), x)
    np.testing.assert_allclose(dense_step.floor_loss(floor, key, x), loss, rtol=1e-6)
    grads, _ = jax.grad(objective, argnums=1, has_aux=True)(key, params, Hyperparams(prior={}), x)
    floor_grads = jax.grad(dense_step.floor_loss)(floor, key, x)
    for ours, theirs in zip(jax.tree.leaves(dense_step.floor_params(grads)), jax.tree.leaves(floor_grads)):
        scale = float(jnp.max(jnp.abs(theirs)))
        np.testing.assert_allclose(ours, theirs, atol=1e-5 * scale, rtol=0)


def test_floor_depends_on_the_key(project):
    _, params, x = project
    floor = dense_step.floor_params(params)
    assert dense_step.floor_loss(floor, jax.random.key(1), x) != dense_step.floor_loss(floor, jax.random.key(2), x)


@pytest.mark.slow
def test_tiny_run_reports_every_timing_and_ratio(tmp_path):
    assert dense_step.main(["--batches", "8", "--repeats", "2", "--steps", "2", "--output", str(tmp_path)]) == 0
    text = (tmp_path / "dense_step.md").read_text()
    assert "| 8 |" in text and "GEMM peak" in text
    report = dense_step.run((8,), repeats=2, torch=False, steps=2)
    (row,) = report["rows"]
    assert set(row["ms"]) == {"floor grad", "objective grad", "floor step", "project step", "project step bf16"}
    assert row["bf16_over_f32"] > 0 and "bf16 / f32" in text
    med = {k: v["median_ms"] for k, v in row["ms"].items()}
    assert row["objective_over_floor"] == pytest.approx(med["objective grad"] / med["floor grad"])
    assert row["images_per_s"] == pytest.approx(8 / (med["project step"] / 1e3))
    assert 0 < row["share_of_peak"] < 1.5
