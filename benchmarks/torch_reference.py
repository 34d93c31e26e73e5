"""The published dSprites VAE and its Adam step in PyTorch: the peer of ``python -m benchmarks.run``.

The same architecture as ``decompvae.networks.make_networks("dsprites", D)``:
encoder convolutions 32-32-64-64 (4×4, stride 2, padding 1, ReLU) → dense
128 → location and log-variance heads of D; decoder dense 128 → dense
4·4·64 → transposed convolutions 64-32-32-1 (4×4, stride 2, padding 1).
Loss: Bernoulli cross-entropy with logits summed over pixels plus the
Gaussian KL to N(0, I), averaged over the batch; Adam with AMSGrad, learning
rate 5e-4. PyTorch's own default initialisation (the timing does not depend
on it). Install the CPU build with ``pip install 'decompvae[bench]'``.

Usage (alone; ``benchmarks.bench`` interleaves it with the JAX step)::

    python benchmarks/torch_reference.py [--batch 64] [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["VAE", "make_step", "num_threads", "torch_version"]


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
            nn.Flatten(), nn.Linear(4 * 4 * 64, 128), nn.ReLU(),
        )
        self.loc = nn.Linear(128, latent_dim)
        self.log_var = nn.Linear(128, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 128), nn.ReLU(), nn.Linear(128, 4 * 4 * 64), nn.ReLU(),
            nn.Unflatten(1, (64, 4, 4)),
            deconv(64, 64), nn.ReLU(), deconv(64, 32), nn.ReLU(), deconv(32, 32), nn.ReLU(), deconv(32, 1),
        )

    def forward(self, x: torch.Tensor):
        h = self.encoder(x)
        loc, log_var = self.loc(h), self.log_var(h)
        z = loc + torch.exp(0.5 * log_var) * torch.randn_like(loc)
        return self.decoder(z), loc, log_var


def make_step(
    x_nhwc: np.ndarray, *, latent_dim: int = 10, learning_rate: float = 5e-4, seed: int = 0, threads: int | None = None
) -> Callable[[], float]:
    """A thunk taking one Adam (AMSGrad) step on the fixed batch ``x_nhwc`` and returning the loss.

    Args:
      x_nhwc: ``[b, 64, 64, 1]`` images in [0, 1] (the JAX layout; transposed here).
      latent_dim: D.
      learning_rate: Adam's step size.
      seed: PyTorch's seed for initialisation and the reparameterisation noise.
      threads: intra-op threads (default ``os.cpu_count()``), set at every call.

    Returns:
      ``step() -> float``, the loss before the update (synchronous on CPU).
    """
    threads = threads or os.cpu_count() or 1
    torch.manual_seed(seed)
    model = VAE(latent_dim)
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
