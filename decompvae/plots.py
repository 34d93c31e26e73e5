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

__all__ = ["latent_scatter", "reconstructions", "run_figures", "traversals"]

MAX_MEMBERS = 8


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_image(built, output) -> np.ndarray:
    """The decoder's mean image from its output (logits, a mean or (loc, scale))."""
    if isinstance(output, tuple):
        output = output[0]
    if built.config.model.likelihood == "bernoulli":
        output = jax.nn.sigmoid(output)
    return np.clip(np.asarray(output), 0.0, 1.0)


def _member(state, i):
    return jax.tree.map(lambda a: a[i], state.params)


def reconstructions(built, state, labels: list[str], path: Path, n_images: int = 8) -> Path:
    """Originals (top row) and each member's reconstruction of them (μ decoded)."""
    plt = _pyplot()
    x = built.bundle.eval_x[:n_images]
    n_members = min(len(labels), MAX_MEMBERS)
    fig, axes = plt.subplots(n_members + 1, n_images, figsize=(1.2 * n_images, 1.25 * (n_members + 1)), squeeze=False)
    rows = [np.asarray(x)]
    for i in range(n_members):
        params = _member(state, i)
        loc, _ = jax.jit(built.encoder.apply)(params["encoder"], x)
        rows.append(_mean_image(built, jax.jit(built.decoder.apply)(params["decoder"], loc)))
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


def traversals(built, state, labels: list[str], path: Path, member: int = 0, span: float = 2.5, steps: int = 9) -> Path:
    """Decode z = μ(x₀) + t·e_d for each latent dimension d and t ∈ [−span, span]."""
    plt = _pyplot()
    params = _member(state, member)
    loc, _ = jax.jit(built.encoder.apply)(params["encoder"], built.bundle.eval_x[:1])
    dim = loc.shape[-1]
    values = jnp.linspace(-span, span, steps)
    z = jnp.broadcast_to(loc, (dim, steps, dim))
    z = z + jnp.eye(dim)[:, None, :] * values[None, :, None]
    images = _mean_image(built, jax.jit(built.decoder.apply)(params["decoder"], z.reshape(-1, dim)))
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


def latent_scatter(built, state, labels: list[str], path: Path) -> Path:
    """Encoder means of held-out 2-D data, coloured by ground-truth label, per member."""
    plt = _pyplot()
    x, y = built.bundle.eval_x, built.bundle.eval_labels
    n = min(len(labels), MAX_MEMBERS)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
    for i in range(rows * cols):
        ax = axes.flat[i]
        if i >= n:
            ax.axis("off")
            continue
        loc, _ = jax.jit(built.encoder.apply)(_member(state, i)["encoder"], x)
        loc = np.asarray(loc)
        ax.scatter(loc[:, 0], loc[:, 1], c=None if y is None else np.asarray(y), s=6, cmap="tab10")
        ax.set_title(labels[i], fontsize=7)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def run_figures(built, state, hyper: Any, out: Path) -> list[Path]:
    """The end-of-run figures for the data's kind."""
    from decompvae.sweep import member_label

    labels = [member_label(m) for m in built.members]
    if len(built.bundle.data_shape) == 3:
        return [
            reconstructions(built, state, labels, out / "reconstructions.png"),
            traversals(built, state, labels, out / "traversals.png"),
        ]
    if built.bundle.data_shape == (2,) and built.config.model.latent_dim == 2:
        return [latent_scatter(built, state, labels, out / "latents.png")]
    return []
