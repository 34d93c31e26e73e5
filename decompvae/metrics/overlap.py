"""Overlap of the encodings: I_q(x; z), encoder entropy and KL(q(z) ‖ p(z)).

For a finite data set {x_n} the aggregate posterior is the mixture
q(z) = (1/N) Σ_n q(z|x_n), and the exact identity (SPEC §3)

    E_n KL(q(z|x_n) ‖ p(z)) = I_q(x; z) + KL(q(z) ‖ p(z))

splits the β-VAE's KL into the *overlap* term I_q(x; z) = E_n KL(q(z|x_n) ‖
q(z)) (low I ⇔ high overlap) and the *structure* term KL(q(z) ‖ p(z)).

Estimates use z_nk ~ q(z|x_n) and score each sample under the mixture of all
N encoders (chunked: memory O(chunk·N), not O(N²)). With all N points they are
unbiased Monte-Carlo estimates for the empirical aggregate; on a subset of a
larger data set the mixture is the minibatch mixture, whose I is at most
log N (it underestimates the full-data I when I is near log N) and whose
KL(q‖p) is biased accordingly. Since every term is evaluated on the same
samples, the identity holds exactly for the estimates too.

Reference: Mathieu et al. (2019) §3 and App. A; Hoffman & Johnson (2016),
"ELBO surgery".
"""

from __future__ import annotations

from typing import NamedTuple

import distrax
import jax
import jax.numpy as jnp

from decompvae._checks import check_dim

Array = jax.Array

__all__ = ["OverlapInfo", "aggregate_log_prob", "overlap"]


class OverlapInfo(NamedTuple):
    """Overlap estimates (scalars, in nats).

    Attributes:
      mutual_information: I_q(x; z) = E_n KL(q(z|x_n) ‖ q(z)).
      entropy: E_n H[q(z|x_n)], the mean encoder entropy (closed form where
        distrax has it, else Monte-Carlo).
      aggregate_kl: KL(q(z) ‖ p(z)).
      mean_kl: E_n KL(q(z|x_n) ‖ p(z)) = mutual_information + aggregate_kl.
    """

    mutual_information: Array
    entropy: Array
    aggregate_kl: Array
    mean_kl: Array


def aggregate_log_prob(posterior: distrax.Distribution, z: Array, *, chunk_size: int = 512) -> Array:
    """log q(z) = logsumexp_n log q(z|x_n) − log N for each row of ``z``.

    Args:
      posterior: q(z|x_n), batch shape ``[N]``, event ``(D,)``.
      z: ``[M, D]``.
      chunk_size: rows of ``z`` scored at once (memory O(chunk_size·N)).

    Returns:
      ``[M]`` log-densities of the N-point mixture.
    """
    check_dim("chunk_size", chunk_size)
    num = posterior.batch_shape[0]
    m = z.shape[0]
    pad = (-m) % chunk_size
    chunks = jnp.pad(z, ((0, pad), (0, 0))).reshape(-1, chunk_size, z.shape[-1])

    def score(chunk: Array) -> Array:
        return jax.nn.logsumexp(posterior.log_prob(chunk[:, None, :]), axis=1)  # [chunk]

    log_q = jax.lax.map(score, chunks).reshape(-1)[:m]
    return log_q - jnp.log(num)


def overlap(
    key: Array,
    posterior: distrax.Distribution,
    prior: distrax.Distribution,
    *,
    num_samples: int = 1,
    chunk_size: int = 512,
) -> OverlapInfo:
    """Monte-Carlo overlap estimates for a data set's encoders.

    Args:
      key: PRNG key.
      posterior: q(z|x_n) for the whole evaluation set, batch shape ``[N]``.
      prior: p(z).
      num_samples: K samples per point.
      chunk_size: see :func:`aggregate_log_prob`.

    Returns:
      :class:`OverlapInfo`.
    """
    check_dim("num_samples", num_samples)
    z = posterior.sample(seed=key, sample_shape=(num_samples,))  # [K, N, D]
    log_cond = posterior.log_prob(z)  # [K, N]
    log_prior = prior.log_prob(z)  # [K, N]
    log_agg = aggregate_log_prob(posterior, z.reshape(-1, z.shape[-1]), chunk_size=chunk_size).reshape(log_cond.shape)
    try:
        entropy = jnp.mean(posterior.entropy())
    except NotImplementedError:
        entropy = -jnp.mean(log_cond)
    return OverlapInfo(
        mutual_information=jnp.mean(log_cond - log_agg),
        entropy=entropy,
        aggregate_kl=jnp.mean(log_agg - log_prior),
        mean_kl=jnp.mean(log_cond - log_prior),
    )
