"""Chen et al.'s MIG: entropies of q(z_j) estimated from samples of q(z|x) over a whole finite data set.

The Mutual Information Gap as Chen et al. (2018, §5, "Isolating Sources of
Disentanglement in VAEs") compute it for their published scores, which is
not disentanglement_lib's histogram MIG (:func:`decompvae.metrics.mig`).
Every image x_n of the grid (N = Π_k |v_k| images, in index order) is
encoded, and one sample z_n ~ q(z|x_n) drawn. Then, per latent j,

    H(z_j)       ≈ −(1/S) Σ_{s∈S} log [ (1/N) Σ_n q(z_sj | x_n) ],

over S of the N samples (all of them when S ≥ N), and for each factor k
and each of its values v the same estimate restricted to the images with
v_k = v (mixture and samples from that subset),

    H(z_j | v_k) = (1/|v_k|) Σ_v H(z_j | v_k = v).

With I(z_j; v_k) = H(z_j) − H(z_j | v_k) sorted over j in decreasing order
and clipped at 0,

    MIG = mean_k [ I_(1)(k) − I_(2)(k) ] / log |v_k|,

the entropy of a uniform factor normalising each gap. Chen et al. score
dSprites on scale, orientation, x and y: shape is left out (and the colour
factor, of one value, has no entropy). Their code subsamples S = 10,000
samples per estimate; the mixtures always run over the whole (sub)set,
which makes the metric N·S·D log-densities per estimate: a GPU job at the
published sizes (about 5·10¹¹ on dSprites), minutes on a CPU with
S = 1,000.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from decompvae._checks import check_dim
from decompvae.posteriors import marginal_log_prob

__all__ = ["CHEN_DSPRITES_FACTORS", "marginal_entropies", "mig_sampled"]

#: The dSprites factors Chen et al. score (shape and the one-valued colour left out).
CHEN_DSPRITES_FACTORS = ("scale", "orientation", "posX", "posY")


def marginal_entropies(key, posterior_fn: Callable, loc, raw, samples, *, num_samples: int = 10_000,
                       chunk_size: int = 16) -> jax.Array:
    """``[D]``: H(z_j) ≈ −mean_s logsumexp_n [log q(z_sj | x_n) − log N] over S of the samples.

    Args:
      key: picks the S samples (a random subset when S < N, as Chen et al.'s ``randperm``).
      posterior_fn: ``(loc, raw) -> q(z|x)``, factorised over the D latents.
      loc, raw: ``[N, D]`` encoder outputs of the (sub)set.
      samples: ``[N, D]``, z_n ~ q(z|x_n).
      num_samples: S.
      chunk_size: samples scored together against all N encoders (memory N·chunk·D).
    """
    check_dim("num_samples", num_samples)
    n = loc.shape[0]
    chosen = samples if num_samples >= n else samples[jax.random.permutation(key, n)[:num_samples]]
    m = chosen.shape[0]
    pad = (-m) % chunk_size
    chunks = jnp.pad(chosen, ((0, pad), (0, 0))).reshape(-1, chunk_size, chosen.shape[-1])
    q = posterior_fn(loc[:, None, :], raw[:, None, :])  # batch [N, 1]: broadcasts against a chunk

    def entropy_terms(z):  # [c, D] -> [c, D]: −log q̂(z_cj)
        log_q = marginal_log_prob(q, z[None, :, :])  # [N, c, D]
        return -(jax.nn.logsumexp(log_q, axis=0) - jnp.log(n))

    terms = jax.lax.map(entropy_terms, chunks).reshape(-1, chosen.shape[-1])[:m]
    return jnp.mean(terms, axis=0)


def mig_sampled(key, posterior_fn: Callable, loc, raw, factor_sizes: Sequence[int], factors: Sequence[int], *,
                num_samples: int = 10_000, chunk_size: int = 16, samples=None) -> dict:
    """Chen et al.'s MIG of encoder outputs over a whole finite grid.

    Args:
      key: PRNG key (the samples z_n ~ q(z|x_n) and each estimate's subset).
      posterior_fn: ``(loc, raw) -> q(z|x)``.
      loc, raw: ``[N, D]``, one row per image in the grid's index order (C order over ``factor_sizes``).
      factor_sizes: the grid's factor sizes, Π = N.
      factors: indices of the factors scored (each of size ≥ 2).
      num_samples: S of each entropy estimate (Chen et al.: 10,000).
      chunk_size: samples scored together.
      samples: ``[N, D]`` z_n ~ q(z|x_n) to use (default: drawn with ``key``).

    Returns:
      ``{"score", "mutual_info" [K, D] (sorted per factor, clipped at 0, in nats),
      "marginal_entropies" [D], "conditional_entropies" [K, D]}`` (NumPy).

    Raises:
      ValueError: N ≠ Π factor_sizes, or a scored factor of size < 2.
    """
    sizes = tuple(int(s) for s in factor_sizes)
    n, dim = loc.shape
    if n != int(np.prod(sizes)):
        raise ValueError(f"loc has {n} rows but the grid {sizes} has {int(np.prod(sizes))} images")
    for k in factors:
        if sizes[k] < 2:
            raise ValueError(f"factor {k} has {sizes[k]} value(s): its entropy log |v_k| is 0; leave it out")
    key_z, key_h = jax.random.split(key)
    samples = posterior_fn(loc, raw).sample(seed=key_z) if samples is None else samples
    entropy = jax.jit(lambda k, l, r, z: marginal_entropies(k, posterior_fn, l, r, z, num_samples=num_samples,
                                                            chunk_size=chunk_size))
    grid = lambda a: a.reshape(sizes + (dim,))  # noqa: E731
    keys = iter(jax.random.split(key_h, 1 + sum(sizes[k] for k in factors)))
    h_z = np.asarray(entropy(next(keys), loc, raw, samples), np.float64)
    conditional = np.zeros((len(factors), dim))
    for row, k in enumerate(factors):
        for value in range(sizes[k]):
            part = lambda a: jnp.take(grid(a), value, axis=k).reshape(-1, dim)  # noqa: E731
            conditional[row] += np.asarray(entropy(next(keys), part(loc), part(raw), part(samples))) / sizes[k]
    info = np.clip(-np.sort(-(h_z[None, :] - conditional), axis=1), 0.0, None)
    normed = info / np.log(np.asarray([sizes[k] for k in factors], np.float64))[:, None]
    return {"score": float(np.mean(normed[:, 0] - normed[:, 1])), "mutual_info": info,
            "marginal_entropies": h_z, "conditional_entropies": conditional}
