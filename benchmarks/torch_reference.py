"""The published dSprites VAE and its Adam step in PyTorch: the peer of ``python -m benchmarks.run``.

The same architecture as ``decompvae.networks.make_networks("dsprites", D)``:
encoder convolutions 32-32-64-64 (4×4, stride 2, padding 1, ReLU) → dense
128 → location and log-variance heads of D; decoder dense 128 → dense
4·4·64 → transposed convolutions 64→64, 64→64, 64→32, 32→1 (4×4, stride 2,
padding 1; ``DSPRITES_DECONV_CHANNELS``).
Loss: Bernoulli cross-entropy with logits summed over pixels plus the
Gaussian KL to N(0, I), averaged over the batch; Adam with AMSGrad, learning
rate 5e-4. PyTorch's own default initialisation (the timing does not depend
on it). Install the CPU build with ``pip install 'decompvae[bench]'``.

For sweeps of N models, :func:`make_loop` steps N such models one after
another (the PyTorch loop) and :func:`make_ensemble_step` steps all N at once
with ``torch.func`` ensembling: ``stack_module_state`` stacks their
parameters, ``functional_call`` + ``vmap(grad_and_value)`` computes every
member's gradient in one batched call (``randomness="different"``: each
member draws its own reparameterisation noise), and one AMSGrad optimiser
updates the stacked leaves (Adam is elementwise, so this equals N separate
optimisers with the same learning rate).

Usage (alone; ``benchmarks.bench`` interleaves it with the JAX step)::

    python benchmarks/torch_reference.py [--batch 64] [--repeats 10]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["DenseVAE", "VAE", "make_ensemble_step", "make_loop", "make_step", "num_threads", "torch_version"]


def torch_version() -> str:
    """The installed PyTorch version."""
    return torch.__version__


def num_threads() -> int:
    """Intra-op threads PyTorch uses."""
    return torch.get_num_threads()


class VAE(nn.Module):
    """The dSprites VAE: ``x [b, 1, 64, 64] -> (logits [b, 1, 64, 64], loc [b, D], log_var [b, D])``."""

    def __init__(self, latent_dim: int = 10):
        super().__init__()
        conv = lambda i, o: nn.Conv2d(i, o, 4, stride=2, padding=1)  # noqa: E731
        deconv = lambda i, o: nn.ConvTranspose2d(i, o, 4, stride=2, padding=1)  # noqa: E731
        self.encoder = nn.Sequential(
            conv(1, 32), nn.ReLU(), conv(32, 32), nn.ReLU(), conv(32, 64), nn.ReLU(), conv(64, 64), nn.ReLU(),
            nn.Flatten(), nn.Linear(4 * 4 * 64, 128),  # linear, as the published encoder
        )
        self.loc = nn.Linear(128, latent_dim)
        self.log_var = nn.Linear(128, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 128), nn.ReLU(), nn.Linear(128, 4 * 4 * 64), nn.ReLU(),
            nn.Unflatten(1, (64, 4, 4)),
            deconv(64, 64), nn.ReLU(), deconv(64, 64), nn.ReLU(), deconv(64, 32), nn.ReLU(), deconv(32, 1),
        )

    def forward(self, x: torch.Tensor):
        h = self.encoder(x)
        loc, log_var = self.loc(h), self.log_var(h)
        z = loc + torch.exp(0.5 * log_var) * torch.randn_like(loc)
        return self.decoder(z), loc, log_var


class DenseVAE(nn.Module):
    """The dense VAE of ``make_networks("mlp", D, hidden=…)``: ``x [b, 1, 64, 64]`` flattened.

    Encoder 4096 → hidden (ReLU) → location and log-variance heads of D;
    decoder D → reversed hidden (ReLU) → 4096 logits, reshaped to ``[b, 1, 64, 64]``.
    """

    def __init__(self, latent_dim: int = 10, hidden: tuple[int, ...] = (256, 256), pixels: int = 64 * 64):
        super().__init__()
        widths = [pixels, *hidden]
        self.encoder = nn.Sequential(nn.Flatten(), *_dense_relu(widths))
        self.loc = nn.Linear(widths[-1], latent_dim)
        self.log_var = nn.Linear(widths[-1], latent_dim)
        back = [latent_dim, *reversed(hidden)]
        self.decoder = nn.Sequential(*_dense_relu(back), nn.Linear(back[-1], pixels))

    def forward(self, x: torch.Tensor):
        h = self.encoder(x)
        loc, log_var = self.loc(h), self.log_var(h)
        z = loc + torch.exp(0.5 * log_var) * torch.randn_like(loc)
        return self.decoder(z).reshape(x.shape), loc, log_var


def _dense_relu(widths) -> list[nn.Module]:
    """``Linear(w_i, w_{i+1})`` + ReLU for each consecutive pair of ``widths``."""
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return layers


def make_step(
    x_nhwc: np.ndarray, *, latent_dim: int = 10, learning_rate: float = 5e-4, seed: int = 0, threads: int | None = None,
    hidden: tuple[int, ...] | None = None,
) -> Callable[[], float]:
    """A thunk taking one Adam (AMSGrad) step on the fixed batch ``x_nhwc`` and returning the loss.

    Args:
      x_nhwc: ``[b, 64, 64, 1]`` images in [0, 1] (the JAX layout; transposed here).
      latent_dim: D.
      learning_rate: Adam's step size.
      seed: PyTorch's seed for initialisation and the reparameterisation noise.
      threads: intra-op threads (default ``os.cpu_count()``), set at every call.
      hidden: None for the published convnet (:class:`VAE`); dense widths for
        :class:`DenseVAE` (e.g. ``(256, 256)``).

    Returns:
      ``step() -> float``, the loss before the update (synchronous on CPU).
    """
    threads = threads or os.cpu_count() or 1
    torch.manual_seed(seed)
    model = VAE(latent_dim) if hidden is None else DenseVAE(latent_dim, tuple(hidden), int(np.prod(x_nhwc.shape[1:])))
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, amsgrad=True)
    x = torch.from_numpy(np.array(x_nhwc, np.float32).transpose(0, 3, 1, 2).copy())
    bce = nn.BCEWithLogitsLoss(reduction="none")

    def step() -> float:
        torch.set_num_threads(threads)  # per call: steps with different thread counts can alternate
        optimizer.zero_grad(set_to_none=True)
        logits, loc, log_var = model(x)
        recon = bce(logits, x).sum(dim=(1, 2, 3))  # [b]
        kl = 0.5 * (torch.exp(log_var) + loc**2 - 1.0 - log_var).sum(dim=1)  # [b]
        loss = (recon + kl).mean()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def _loss(logits, loc, log_var, x):
    """The batch-mean negative ELBO (Bernoulli cross-entropy + Gaussian KL), as in :func:`make_step`."""
    recon = nn.functional.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    kl = 0.5 * (torch.exp(log_var) + loc**2 - 1.0 - log_var).sum(dim=-1)  # [b]
    return (recon.sum(dim=(-3, -2, -1)) + kl).mean()


def make_loop(x_nhwc: np.ndarray, n: int, *, latent_dim: int = 10, learning_rate: float = 5e-4, seed: int = 0,
              threads: int | None = None) -> Callable[[], list[float]]:
    """A thunk taking one step of each of ``n`` models in turn (seeds ``seed … seed + n − 1``); returns the losses."""
    steps = [make_step(x_nhwc, latent_dim=latent_dim, learning_rate=learning_rate, seed=seed + i, threads=threads)
             for i in range(n)]
    return lambda: [step() for step in steps]


def make_ensemble_step(x_nhwc: np.ndarray, n: int, *, latent_dim: int = 10, learning_rate: float = 5e-4,
                       seed: int = 0, threads: int | None = None) -> Callable[[], float]:
    """A thunk stepping ``n`` stacked models at once with ``torch.func`` (see the module docstring).

    Args:
      x_nhwc: ``[b, 64, 64, 1]`` images in [0, 1], shared by the members.
      n: number of models.
      latent_dim, learning_rate, seed, threads: as in :func:`make_step`.

    Returns:
      ``step() -> float``, the members' mean loss before the update.
    """
    threads = threads or os.cpu_count() or 1
    torch.manual_seed(seed)
    models = [VAE(latent_dim) for _ in range(n)]
    params, buffers = torch.func.stack_module_state(models)  # {name: [n, ...]}
    params = {k: v.detach() for k, v in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    x = torch.from_numpy(np.array(x_nhwc, np.float32).transpose(0, 3, 1, 2).copy())

    def member_loss(p, b, data):
        logits, loc, log_var = torch.func.functional_call(base, (p, b), (data,))
        return _loss(logits, loc, log_var, data)

    grads_and_losses = torch.func.vmap(torch.func.grad_and_value(member_loss), in_dims=(0, 0, None),
                                       randomness="different")
    optimizer = torch.optim.Adam(list(params.values()), lr=learning_rate, amsgrad=True)

    def step() -> float:
        torch.set_num_threads(threads)
        grads, losses = grads_and_losses(params, buffers, x)
        for name, p in params.items():
            p.grad = grads[name]
        optimizer.step()
        return float(losses.mean())

    return step


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    x = (np.random.default_rng(0).random((args.batch, 64, 64, 1)) < 0.1).astype(np.float32)
    step = make_step(x)
    step()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(f"torch {torch.__version__}, {os.cpu_count()} threads, batch {args.batch}: "
          f"median {1e3 * statistics.median(times):.1f} ms/step (min {1e3 * min(times):.1f}, max {1e3 * max(times):.1f})")


if __name__ == "__main__":
    main()
