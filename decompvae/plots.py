"""Figures of trained members: reconstructions, latent traversals, 2-D latents.

Matplotlib with the non-interactive Agg backend; every function writes a PNG
and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from decompvae.sweep import member_label, take_member

__all__ = ["latent_scatter", "pyplot", "reconstructions", "run_figures", "traversals"]

MAX_MEMBERS = 8


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no screen needed)."""
    import matplotlib  # the backend must be chosen before pyplot is imported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _image(mean) -> np.ndarray:
    """A decoded mean as an image array in [0, 1]."""
    return np.clip(np.asarray(mean), 0.0, 1.0)


def _member(state, i):
    return take_member(state.params, i)


def reconstructions(setup, state, labels: list[str], path: Path, n_images: int = 8) -> Path:
    """Originals (top row) and each member's reconstruction of them (μ decoded)."""
    plt = pyplot()
    x = setup.data.eval_x[:n_images]
    encode, decode_mean = jax.jit(setup.encode), jax.jit(setup.decode_mean)
    n_members = min(len(labels), MAX_MEMBERS)
    fig, axes = plt.subplots(n_members + 1, n_images, figsize=(1.2 * n_images, 1.25 * (n_members + 1)), squeeze=False)
    rows = [np.asarray(x)]
    for i in range(n_members):
        params = _member(state, i)
        loc, _ = encode(params, x)
        rows.append(_image(decode_mean(params, loc)))
    for r, images in enumerate(rows):
        for c in range(n_images):
            ax = axes[r, c]
            ax.imshow(images[c, ..., 0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel("data" if r == 0 else f"m{r - 1}", rotation=0, ha="right", va="center")
    fig.suptitle("reconstructions (decoded encoder means); m<i> = member i")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def traversals(setup, state, labels: list[str], path: Path, member: int = 0, span: float = 2.5, steps: int = 9) -> Path:
    """Decode z = μ(x₀) + t·e_d for each latent dimension d and t ∈ [−span, span]."""
    plt = pyplot()
    params = _member(state, member)
    loc, _ = jax.jit(setup.encode)(params, setup.data.eval_x[:1])
    dim = loc.shape[-1]
    values = jnp.linspace(-span, span, steps)
    z = jnp.broadcast_to(loc, (dim, steps, dim))
    z = z + jnp.eye(dim)[:, None, :] * values[None, :, None]
    images = _image(jax.jit(setup.decode_mean)(params, z.reshape(-1, dim)))
    images = images.reshape(dim, steps, *images.shape[1:])
    fig, axes = plt.subplots(dim, steps, figsize=(1.0 * steps, 1.0 * dim), squeeze=False)
    for d in range(dim):
        for s in range(steps):
            axes[d, s].imshow(images[d, s, ..., 0], cmap="gray", vmin=0, vmax=1)
            axes[d, s].set_xticks([])
            axes[d, s].set_yticks([])
        axes[d, 0].set_ylabel(f"z{d}", rotation=0, ha="right", va="center")
    fig.suptitle(f"latent traversals, member {member}: {labels[member]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def latent_scatter(setup, state, labels: list[str], path: Path) -> Path:
    """Encoder means of held-out 2-D data, coloured by ground-truth label, per member."""
    plt = pyplot()
    x, y = setup.data.eval_x, setup.data.eval_labels
    encode = jax.jit(setup.encode)
    n = min(len(labels), MAX_MEMBERS)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for i in range(rows * cols):
        ax = axes.flat[i]
        if i >= n:
            ax.axis("off")
            continue
        loc, _ = encode(_member(state, i), x)
        loc = np.asarray(loc)
        ax.scatter(loc[:, 0], loc[:, 1], c=None if y is None else np.asarray(y), s=6, cmap="tab10")
        ax.set_title(labels[i], fontsize=7)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def run_figures(setup, state, hyper: Any, out: Path) -> list[Path]:
    """The end-of-run figures for the data's kind."""
    labels = [member_label(m) for m in setup.members]
    if len(setup.data.data_shape) == 3:
        return [
            reconstructions(setup, state, labels, out / "reconstructions.png"),
            traversals(setup, state, labels, out / "traversals.png"),
        ]
    if setup.data.data_shape == (2,) and setup.config.model.latent_dim == 2:
        return [latent_scatter(setup, state, labels, out / "latents.png")]
    return []
