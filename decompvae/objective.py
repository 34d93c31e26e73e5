"""The decomposition objective as one pure loss function (Mathieu et al., 2019, Eq. 2).

    L_{α,β}(x) = E_{q(z|x)}[log p(x|z)] − β·KL(q(z|x) ‖ p(z)) − α·D(q(z), p(z))

Training minimises

    loss = mean_b[ −recon_b + β·KL_b ] + α·D          (one D per minibatch)

or, with several regularisers (``regulariser={name: kind, …}`` and
``Hyperparams.alpha = {name: α_k, …}``),

    loss = mean_b[ −recon_b + β·KL_b ] + Σ_k α_k·D_k

which expresses β-TCVAE, DIP-VAE, AnnealedVAE, FactorVAE and InfoVAE as
settings of the one objective (:data:`decompvae.methods.METHODS`).

Structure (networks, likelihood, prior family, posterior family, regulariser,
number of samples K) is closed over by :func:`make_objective`; numbers (β, α,
prior parameters) arrive in a :class:`Hyperparams` pytree, so
``jax.vmap(objective, in_axes=(None, None, 0, None))`` sweeps them in one
compiled program and ``jax.grad(objective, argnums=1, has_aux=True)`` trains.

Networks with BatchNorm (the ``"fashion"`` networks) carry running statistics
in a ``"batch_stats"`` collection beside ``"params"`` in ``params["encoder"]``
/ ``params["decoder"]``. ``make_objective(..., train=True)`` applies them in
training mode (batch statistics, ``mutable=["batch_stats"]``) and returns the
updated statistics in ``terms.state_updates``, which the trainer writes back
into the state; with ``train=False`` (evaluation) they use the running
averages. Networks without ``batch_stats`` are unaffected by ``train``.

References: Mathieu, Rainforth, Siddharth & Teh (ICML 2019), Eq. (2) (the
objective) and Eq. (5) of App. A; Burda et al. (2016) for the IWAE bound.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp

from decompvae._checks import check_choice, check_dim, former_attribute, former_keywords
from decompvae.divergences import Regulariser, RegulariserInputs
from decompvae.regularisers import SINGLE, Regularisers, make_regularisers, traced_numbers, weighted_sum
from decompvae.likelihoods import make_likelihood
from decompvae.posteriors import make_posterior

Array = jax.Array
LogLikelihood = Callable[[Array], Array]  # z [b, D] -> log p(x|z) [b]

__all__ = [
    "Hyperparams",
    "Model",
    "ObjectiveTerms",
    "decomposition_terms",
    "iwae_bound",
    "kl_term",
    "make_iwae",
    "make_model",
    "make_objective",
    "reduce_terms",
]


class _HyperparamsFields(NamedTuple):
    beta: Any = 1.0
    alpha: Any = 0.0
    prior: dict | None = None
    regulariser_params: dict | None = None
    step: Any = None


class Hyperparams(_HyperparamsFields):
    """The traced numbers of the objective (a pytree: vmap over any leaf).

    Attributes:
      beta: β ≥ 0, the weight of KL(q(z|x) ‖ p(z)) (overlap control).
      alpha: ``{name: α_k}``, α_k ≥ 0 the weight of D_k(q(z), p(z))
        (structure), with exactly the regularisers' names; a number is the
        scalar form's α (one regulariser, named ``"divergence"``: the paper's D), read as
        ``{"divergence": α}`` (:func:`decompvae.regularisers.alpha_by_name`).
      prior: the prior's numeric parameters as keywords of the prior
        constructor, e.g. ``{"df": 5.0}`` for a Student-t or
        ``{"gamma": 0.8}`` for the sparse prior; None for the defaults.
      regulariser_params: traced parameters of regularisers that have them
        (:attr:`decompvae.divergences.Regulariser.traced`), e.g.
        ``{"capacity": {"c_max": 25.0}}``; for a single regulariser also
        flat, ``{"c_max": 25.0}``, read as ``{"divergence": {"c_max": 25.0}}``
        (:func:`decompvae.regularisers.params_by_name`); None for their defaults.
      step: ``[]`` the training step, for step-dependent regularisers
        (AnnealedVAE's capacity); the trainer sets it, None elsewhere.

    ``divergence_params``, the earlier name of ``regulariser_params``, is still read, with a DeprecationWarning.
    """

    __slots__ = ()

    def __new__(cls, beta=1.0, alpha=0.0, prior=None, regulariser_params=None, step=None, **former):
        if former:
            regulariser_params = former_keywords("Hyperparams", former, {"divergence_params": "regulariser_params"},
                                                 {"regulariser_params": regulariser_params})["regulariser_params"]
        return super().__new__(cls, beta, alpha, prior, regulariser_params, step)

    divergence_params = former_attribute("divergence_params", "regulariser_params")


class ObjectiveTerms(NamedTuple):
    """Unreduced terms of the objective; reduced only by :func:`reduce_terms`.

    Attributes:
      recon: ``[b]`` (1/K) Σ_k log p(x|z_k), z_k ~ q(z|x) reparameterised.
      kl: ``[b]`` KL(q(z|x) ‖ p(z)), closed form where distrax has it, else
        (1/K) Σ_k [log q(z_k|x) − log p(z_k)] on the same samples.
      regulariser: ``{name: []}`` each D_k(q(z), p(z)) estimated once on the
        batch; the scalar form's one D is named ``"divergence"``
        (:data:`~decompvae.regularisers.SINGLE`), 0 without a regulariser.
      state_updates: the networks' new non-trainable variables from a
        training-mode pass (``make_objective(..., train=True)``), e.g.
        ``{"encoder": {"batch_stats": …}, "decoder": {"batch_stats": …}}``;
        ``{}`` when no network has ``batch_stats`` or in evaluation mode. Not a
        term of the loss: the trainer writes it into ``params``.
      adversary_loss: ``{name: []}`` the losses of the regularisers'
        adversaries (FactorVAE's discriminator) on this batch, computed on z
        behind ``stop_gradient``; None without adversaries. Not a term of the
        loss: the trainer minimises it over the adversaries' variables.
    """

    recon: Array
    kl: Array
    regulariser: Any
    state_updates: dict = {}  # a shared default, never mutated
    adversary_loss: Any = None

    divergence = former_attribute("divergence", "regulariser")


def kl_term(posterior: distrax.Distribution, prior: distrax.Distribution, z: Array, *, method: str = "auto") -> Array:
    """KL(q(z|x) ‖ p(z)) per example.

    Args:
      posterior: batch shape ``[b]``, event ``(D,)``.
      prior: event ``(D,)``.
      z: ``[K, b, D]`` samples from ``posterior`` (used by the Monte-Carlo
        estimate).
      method: ``"auto"`` (closed form if registered in distrax, else
        Monte-Carlo), ``"closed"`` (error if unavailable) or ``"mc"``.

    Returns:
      ``[b]`` KL values.
    """
    check_choice("kl", method, ("auto", "closed", "mc"))
    if method != "mc":
        try:
            return posterior.kl_divergence(prior)
        except NotImplementedError:
            if method == "closed":
                raise ValueError(
                    f"kl='closed' but distrax has no closed-form KL between "
                    f"{type(posterior).__name__} and {type(prior).__name__}; use kl='auto' or 'mc'"
                ) from None
    return jnp.mean(posterior.log_prob(z) - prior.log_prob(z), axis=0)


def decomposition_terms(
    key: Array,
    posterior: distrax.Distribution,
    log_likelihood: LogLikelihood,
    prior: distrax.Distribution,
    *,
    regulariser: Any = None,
    num_samples: int = 1,
    kl: str = "auto",
    hyper: Hyperparams | None = None,
    adversary: Mapping | None = None,
) -> ObjectiveTerms:
    """The objective's terms for one minibatch, from distributions.

    The lowest-level form of the objective: everything is an argument, so the
    paper's Theorems 1 and 2 can be checked with hand-built encoders (e.g. a full
    covariance ``MultivariateNormalTri``) and decoders.

    Args:
      key: PRNG key; split into the posterior-sample and regulariser keys.
      posterior: q(z|x), batch shape ``[b]``, event ``(D,)``, reparameterised.
      log_likelihood: ``z [b, D] -> log p(x|z) [b]`` for the batch's x.
      prior: p(z), event ``(D,)``.
      regulariser: ``(key, y [b, D], posterior, prior) -> []``, a
        ``Regulariser``, ``{name: either}`` (see :func:`decompvae.regularisers.make_regularisers`),
        or None.
      num_samples: K ≥ 1 posterior samples per point (averaged, not summed).
      kl: see :func:`kl_term`.
      hyper: supplies ``step`` and ``regulariser_params`` to the regularisers
        that read them (None: neither).
      adversary: ``{name: variables}`` of the regularisers' adversaries.

    Returns:
      :class:`ObjectiveTerms`.
    """
    terms, _ = _terms_and_aux(
        key, posterior, lambda z: (log_likelihood(z), {}), prior,
        regulariser=make_regularisers(regulariser), num_samples=num_samples, kl=kl, hyper=hyper, adversary=adversary,
    )
    return terms


def _estimate(key, estimator: Regulariser, inputs: RegulariserInputs, adversary, name: str):
    """``(D_k, adversary loss or None)`` for one regulariser; ``adversary`` its variables or None."""
    if inputs.params and not estimator.traced:
        raise ValueError(f"regulariser {name!r} reads no traced parameters; got regulariser_params {sorted(inputs.params)}")
    unknown = set(inputs.params) - set(estimator.traced)
    if unknown:
        raise ValueError(f"regulariser_params {sorted(unknown)} are not parameters of regulariser {name!r} "
                         f"(it reads {list(estimator.traced)})")
    if estimator.adversary is None:
        return estimator.estimate(key, inputs), None
    if adversary is None:
        raise ValueError(
            f"regulariser {name!r} trains an adversary: pass its variables as params['adversary'][{name!r}] "
            "(the trainer does; to evaluate, merge state.adversary.params)"
        )
    key, key_adversary = jax.random.split(key)
    value = estimator.estimate(key, inputs._replace(adversary=jax.lax.stop_gradient(adversary)))  # the VAE's view
    loss = estimator.adversary.loss(key_adversary, adversary, jax.lax.stop_gradient(inputs.y))  # the adversary's view
    return value, loss


def _regulariser_terms(key, regularisers: Regularisers, inputs: RegulariserInputs, hyper, adversary):
    """``(regulariser, adversary_loss)``: ``{name: []}`` and ``{name: []}`` (None without adversaries).

    The scalar form's one regulariser gets ``key`` itself; the dict form splits it, one key per name in
    sorted order.
    """
    params = traced_numbers(regularisers, getattr(hyper, "regulariser_params", None))
    inputs = inputs._replace(step=getattr(hyper, "step", None))
    names = sorted(regularisers.named)
    keys = [key] if regularisers.single else jax.random.split(key, len(names))
    adversary = adversary or {}
    values, losses = {}, {}
    for name, key_k in zip(names, keys):
        inputs_k = inputs._replace(params=params[name])
        values[name], loss = _estimate(key_k, regularisers.named[name], inputs_k, adversary.get(name), name)
        if loss is not None:
            losses[name] = loss
    return values, losses or None


def _mean_log_likelihood(log_likelihood_and_aux, z: Array) -> tuple[Array, Any]:
    """``((1/K) Σ_k log p(x|z_k) [b], aux averaged over k)`` for ``z [K, b, D]``.

    K = 1 decodes ``z[0]`` directly: no sample axis over the decoder's
    ``[b, …]`` outputs and their gradients (the same numbers as the vmapped
    form, measured 0.3–0.6× its time for a dense decoder of 4,096 pixels).
    """
    if z.shape[0] == 1:
        return log_likelihood_and_aux(z[0])
    log_lik, aux = jax.vmap(log_likelihood_and_aux)(z)  # [K, b], leaves [K, ...]
    return jnp.mean(log_lik, axis=0), jax.tree.map(lambda a: jnp.mean(a, axis=0), aux)


def _terms_and_aux(
    key, posterior, log_likelihood_and_aux, prior, *, regulariser, num_samples, kl, hyper=None, adversary=None
):
    """:func:`decomposition_terms` for ``log_likelihood_and_aux: z [b, D] -> ([b], aux)``.

    Returns ``(terms, aux)`` with ``aux`` averaged over the K samples (its
    value itself when K = 1): the decoder's updated BatchNorm statistics.
    """
    check_dim("num_samples", num_samples)
    key_z, key_d = jax.random.split(key)
    z = posterior.sample(seed=key_z, sample_shape=(num_samples,))  # [K, b, D]
    recon, aux = _mean_log_likelihood(log_likelihood_and_aux, z)  # [b]
    kl_values = kl_term(posterior, prior, z, method=kl)  # [b]
    if not regulariser.named:  # the scalar form without a regulariser: D = 0
        div, adversary_loss = {SINGLE: jnp.zeros((), recon.dtype)}, None
    else:
        inputs = RegulariserInputs(y=z[0], posterior=posterior, prior=prior, kl=kl_values)
        div, adversary_loss = _regulariser_terms(key_d, regulariser, inputs, hyper, adversary)
    return ObjectiveTerms(recon=recon, kl=kl_values, regulariser=div, adversary_loss=adversary_loss), aux


def reduce_terms(terms: ObjectiveTerms, beta, alpha) -> Array:
    """loss = mean_b[−recon_b + β·KL_b] + α·D (or + Σ_k α_k·D_k), the one reduction (a scalar)."""
    return jnp.mean(-terms.recon + beta * terms.kl) + weighted_sum(terms.regulariser, alpha)


class Model(NamedTuple):
    """A VAE's distributions for one batch: what the objective consumes.

    Attributes:
      posterior: q(z|x), batch ``[b]``.
      log_likelihood: ``z [b, D] -> log p(x|z) [b]``.
      prior: p(z).
      state_updates: the encoder's new ``batch_stats`` from a training-mode
        pass, ``{"encoder": {"batch_stats": …}}``, else ``{}``.
      log_likelihood_and_updates: ``z [b, D] -> (log p(x|z) [b], updates)``
        with the decoder's new statistics ``{"decoder": {"batch_stats": …}}``
        (``{}`` without them) from the decoder pass that gave the values.
    """

    posterior: distrax.Distribution
    log_likelihood: LogLikelihood
    prior: distrax.Distribution
    state_updates: dict = {}  # a shared default, never mutated
    log_likelihood_and_updates: Callable[[Array], tuple[Array, dict]] | None = None


#: Collections of non-trainable network variables that a training-mode pass updates.
STATE_COLLECTIONS = ("batch_stats",)


def _apply(module: nn.Module, variables: dict, inputs: Array, train: bool, name: str) -> tuple[Any, dict]:
    """``module.apply`` in training mode where the variables hold running statistics.

    Returns ``(output, updates)``: ``updates = {name: {"batch_stats": …}}`` from
    a training-mode pass, ``{}`` otherwise. Modules without ``batch_stats``
    (which take no ``train`` argument) are applied exactly as before; with
    ``batch_stats`` and ``train=False`` the module's default (evaluation mode,
    running averages) applies.
    """
    mutable = [c for c in STATE_COLLECTIONS if c in variables]
    if not (train and mutable):
        return module.apply(variables, inputs), {}
    out, updates = module.apply(variables, inputs, train=True, mutable=mutable)
    return out, {name: dict(updates)}


def make_model(
    encoder: nn.Module,
    decoder: nn.Module,
    *,
    likelihood: str | Callable,
    prior: Callable[..., distrax.Distribution],
    posterior: str = "gaussian",
    train: bool = False,
) -> Callable[[dict, Hyperparams, Array], Model]:
    """Bind networks, likelihood, prior and posterior family into distributions.

    Args:
      encoder: Flax module, ``x [b, ...] -> (loc [b, D], raw [b, D])``.
      decoder: Flax module, ``z [b, D] -> output`` (logits, a mean, or
        ``(loc, scale)``) for the likelihood.
      likelihood: a name for :func:`decompvae.likelihoods.make_likelihood`
        or a function ``(x, output) -> [b]``.
      prior: ``prior_fn(**numeric_params) -> distrax.Distribution``, e.g.
        :func:`decompvae.priors.make_prior` ``("student_t", D)``.
      posterior: a family of :mod:`decompvae.posteriors` (``"gaussian"``: raw =
        log-variance; ``"gaussian_softplus"``; ``"laplace"``: raw = log-scale).
      train: static. Networks whose variables hold ``batch_stats`` are applied
        in training mode (batch statistics) and their updated statistics
        returned in ``Model.state_updates`` / ``log_likelihood_and_updates``;
        False (evaluation) uses the running averages. No effect on networks
        without ``batch_stats``.

    Returns:
      ``model(params, hyper, x) -> Model``. ``params`` holds the variables
      ``params["encoder"]``, ``params["decoder"]`` and optionally learnable
      prior parameters ``params["prior"]`` (which take precedence over
      ``hyper.prior``).
    """
    log_lik_fn = make_likelihood(likelihood) if isinstance(likelihood, str) else likelihood
    posterior_fn = make_posterior(posterior)

    def model(params: dict, hyper: Hyperparams, x: Array) -> Model:
        (loc, raw), enc_updates = _apply(encoder, params["encoder"], x, train, "encoder")
        q = posterior_fn(loc, raw)
        p = prior(**{**(hyper.prior or {}), **params.get("prior", {})})
        if q.event_shape != p.event_shape:
            raise ValueError(
                f"latent dimension mismatch: the encoder gives q(z|x) with event shape {q.event_shape} "
                f"but the prior has event shape {p.event_shape}"
            )

        def log_likelihood_and_updates(z: Array) -> tuple[Array, dict]:
            out, dec_updates = _apply(decoder, params["decoder"], z, train, "decoder")
            return log_lik_fn(x, out), dec_updates

        def log_likelihood(z: Array) -> Array:
            return log_likelihood_and_updates(z)[0]

        return Model(q, log_likelihood, p, enc_updates, log_likelihood_and_updates)

    return model


def make_objective(
    encoder: nn.Module,
    decoder: nn.Module,
    *,
    likelihood: str | Callable,
    prior: Callable[..., distrax.Distribution],
    posterior: str = "gaussian",
    regulariser: Any = None,
    regulariser_options: Mapping | None = None,
    num_samples: int = 1,
    kl: str = "auto",
    train: bool = False,
    **former,
) -> Callable[[Array, dict, Hyperparams, Array], tuple[Array, ObjectiveTerms]]:
    """The decomposition objective with its structure closed over.

    Args:
      encoder, decoder, likelihood, prior, posterior: see :func:`make_model`.
      regulariser: None, a kind of :data:`decompvae.regularisers.KINDS`
        (``"mmd"``, ``"inclusive_kl"``, ``"total_correlation"``, …) or an
        estimator; or several: ``{name: kind or estimator}`` or a list of
        kinds, weighted by ``hyper.alpha = {name: α_k}`` (see :func:`decompvae.regularisers.make_regularisers`).
        One with an adversary (``"factor_vae"``) reads its variables from ``params["adversary"][name]``
        (:func:`decompvae.train.make_trainer` puts them there).
      regulariser_options: static options of a named regulariser; for several,
        ``{name: options}``.
      num_samples: K posterior samples per point.
      kl: ``"auto"``, ``"closed"`` or ``"mc"`` (see :func:`kl_term`).
      train: static; True for the objective a trainer differentiates: networks
        with BatchNorm normalise with the batch's statistics and
        ``terms.state_updates`` holds their updated running averages (the
        encoder's pass on x and the decoder's pass on the samples z that gave
        ``recon``; with K > 1 samples the decoder normalises each sample's
        batch separately and the K updates are averaged). False (evaluation)
        uses the running averages and returns ``state_updates = {}``.
      former: ``divergence`` / ``divergence_options``, earlier names read with a DeprecationWarning.

    Returns:
      ``objective(key, params, hyper, x) -> (loss, terms)``: pure, jittable,
      differentiable in ``params`` (``has_aux=True``) and vmappable over
      ``hyper``. ``x`` is ``[b, ...]``.
    """
    check_dim("num_samples", num_samples)
    check_choice("kl", kl, ("auto", "closed", "mc"))
    given = former_keywords("make_objective", former,
                            {"divergence": "regulariser", "divergence_options": "regulariser_options"},
                            {"regulariser": regulariser, "regulariser_options": regulariser_options})
    regularisers = make_regularisers(given["regulariser"], given["regulariser_options"])
    model = make_model(encoder, decoder, likelihood=likelihood, prior=prior, posterior=posterior, train=train)

    def objective(key: Array, params: dict, hyper: Hyperparams, x: Array) -> tuple[Array, ObjectiveTerms]:
        m = model(params, hyper, x)
        terms, dec_updates = _terms_and_aux(
            key, m.posterior, m.log_likelihood_and_updates, m.prior,
            regulariser=regularisers, num_samples=num_samples, kl=kl, hyper=hyper, adversary=params.get("adversary"),
        )
        terms = terms._replace(state_updates={**m.state_updates, **dec_updates})
        return reduce_terms(terms, hyper.beta, hyper.alpha), terms

    return objective


def iwae_bound(
    key: Array,
    posterior: distrax.Distribution,
    log_likelihood: LogLikelihood,
    prior: distrax.Distribution,
    *,
    num_samples: int = 1000,
    chunk_size: int = 100,
) -> Array:
    """Importance-weighted bound log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x).

    A lower bound on log p(x) that tightens as K grows (Burda et al. 2016);
    K = 1 is the ELBO. Computed in chunks of ``chunk_size`` samples with a
    running logsumexp, so memory is O(chunk_size·b) whatever K.

    Args:
      key: PRNG key.
      posterior: q(z|x), batch ``[b]``.
      log_likelihood: ``z [b, D] -> [b]``.
      prior: p(z).
      num_samples: K ≥ 1.
      chunk_size: samples per chunk; K must be a multiple of it (or smaller,
        in which case one chunk of K is used).

    Returns:
      ``[b]`` bounds, one per example.
    """
    check_dim("num_samples", num_samples)
    check_dim("chunk_size", chunk_size)
    chunk = min(chunk_size, num_samples)
    if num_samples % chunk:
        raise ValueError(f"num_samples ({num_samples}) must be a multiple of chunk_size ({chunk})")

    def chunk_log_weights(chunk_key: Array) -> Array:
        z = posterior.sample(seed=chunk_key, sample_shape=(chunk,))  # [c, b, D]
        log_w = jax.vmap(log_likelihood)(z) + prior.log_prob(z) - posterior.log_prob(z)  # [c, b]
        return jax.nn.logsumexp(log_w, axis=0)  # [b]

    keys = jax.random.split(key, num_samples // chunk)
    per_chunk = jax.lax.map(chunk_log_weights, keys)  # [n_chunks, b]
    return jax.nn.logsumexp(per_chunk, axis=0) - jnp.log(num_samples)


def make_iwae(
    encoder: nn.Module,
    decoder: nn.Module,
    *,
    likelihood: str | Callable,
    prior: Callable[..., distrax.Distribution],
    posterior: str = "gaussian",
    num_samples: int = 1000,
    chunk_size: int = 100,
) -> Callable[[Array, dict, Hyperparams, Array], Array]:
    """``iwae(key, params, hyper, x) -> [b]`` log-likelihood bounds (K = 1000 default)."""
    model = make_model(encoder, decoder, likelihood=likelihood, prior=prior, posterior=posterior)

    def iwae(key: Array, params: dict, hyper: Hyperparams, x: Array) -> Array:
        m = model(params, hyper, x)
        return iwae_bound(
            key, m.posterior, m.log_likelihood, m.prior, num_samples=num_samples, chunk_size=chunk_size
        )

    return iwae
