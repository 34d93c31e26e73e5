"""Training: a pure step ``(state, hyper) -> (state, info)`` built by a factory.

Everything a run carries between steps lives in :class:`TrainState`: the
step count, the parameters (learnable prior parameters included, under
``params["prior"]``), the optimiser state (whose learning rate is injected as
state, so a sweep can vmap over it), the run's base key, and the divergence
flag. The step key is ``fold_in(key, step)`` and the batch is a pure function
of ``(key, step)``, so a run resumed from a checkpoint reproduces the
uninterrupted run exactly.

A member whose loss or gradients become non-finite is *frozen*: its
parameters (BatchNorm statistics included) and optimiser state stop changing
and ``diverged_at`` records the step (−1 while healthy). In a sweep the other
members carry on.

BatchNorm running statistics are carried in the state, never hidden: they sit
in ``params["encoder"]["batch_stats"]`` / ``params["decoder"]["batch_stats"]``
beside the trainable ``"params"``. The step partitions ``params`` with
:func:`split_state`: the gradient and the optimiser (whose state therefore
holds no moments for them) see only the trainable part, so the optimiser
cannot move the statistics; after the update they are replaced by the
objective's ``terms.state_updates`` (the training-mode pass that gave the
loss; build the objective with ``make_objective(..., train=True)``). Without
``batch_stats`` the partition is the identity and nothing changes.

A trainer may train *adversaries* beside the VAE (FactorVAE's discriminator,
:mod:`decompvae.discriminator`): their variables and optimiser states live in
``TrainState.adversary``, the objective reads the variables from
``params["adversary"]``, and one pass gives both updates: the gradient of
``loss + Σ adversary_loss`` with respect to (VAE, adversaries), where the
objective puts the adversaries behind ``stop_gradient`` in ``loss`` and z
behind ``stop_gradient`` in ``adversary_loss`` — so the VAE's gradient is
that of the objective with the adversaries held fixed, and each adversary's
that of its own loss. Without adversaries ``TrainState.adversary`` is None and
the checkpoint layout is the five fields of before.

The step also writes the step count into ``hyper.step`` (a
:class:`~decompvae.objective.Hyperparams`), for step-dependent regularisers
(AnnealedVAE's capacity schedule).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

from decompvae._checks import former_attribute
from decompvae.divergences import Adversary
from decompvae.objective import STATE_COLLECTIONS, Hyperparams, ObjectiveTerms

Array = jax.Array
Objective = Callable[[Array, Any, Hyperparams, Array], tuple[Array, ObjectiveTerms]]
BatchFn = Callable[[Array, Array, Any], Array]  # (key, step, data) -> x [b, ...]
InitParams = Callable[[Array, Any], dict]  # (key, hyper) -> params

#: Folded into a member's key for its adversaries' initial variables (the VAE's keys are unchanged).
ADVERSARY_STREAM = 0x61647673

__all__ = [
    "AdversaryState",
    "model_params",
    "StepInfo",
    "TrainState",
    "Trainer",
    "make_optimizer",
    "make_trainer",
    "merge_state",
    "split_state",
]


class AdversaryState(NamedTuple):
    """The adversaries' part of a :class:`TrainState`.

    Attributes:
      params: ``{name: variables}``, passed to the objective as ``params["adversary"]``.
      opt_state: ``{name: optax state}`` of each adversary's own optimiser.
    """

    params: dict
    opt_state: dict


def model_params(state) -> dict:
    """The parameters the objective takes: ``state.params`` with the adversaries' under ``"adversary"``.

    Works on one member's state or a stacked one (any leading axes).
    """
    if getattr(state, "adversary", None) is None:
        return state.params
    return {**state.params, "adversary": state.adversary.params}


class _TrainStateFields(NamedTuple):
    step: Array
    params: Any
    opt_state: Any
    key: Array
    diverged_at: Array
    adversary: AdversaryState | None = None


class TrainState(_TrainStateFields):
    """What a run carries from step to step (a pytree; stackable for sweeps).

    Attributes:
      step: ``[]`` int32, steps taken (frozen members keep counting).
      params: ``{"encoder", "decoder"[, "prior"]}`` Flax variables (with
        ``"batch_stats"`` beside ``"params"`` for networks with BatchNorm).
      opt_state: optax state of :func:`make_optimizer` (holds the learning
        rate) for the trainable part of ``params`` (:func:`split_state`).
      key: the run's base PRNG key as raw ``uint32`` key data
        (``jax.random.key_data``), so that states are plain arrays that
        NumPy, Orbax and host-side slicing handle.
      diverged_at: ``[]`` int32, the step at which the loss or gradients first
        became non-finite, or −1.
      adversary: :class:`AdversaryState` of a trainer with adversaries, else None.
    """

    __slots__ = ()

    def _asdict(self) -> dict:
        """The fields by name, without ``adversary`` when it is None (the checkpoint layout of a plain trainer)."""
        fields = super()._asdict()
        if self.adversary is None:
            del fields["adversary"]
        return fields


class StepInfo(NamedTuple):
    """Diagnostics of one step (not carried). Scalars; ``[n]`` after a scan."""

    loss: Array
    recon: Array  # mean_b recon_b
    kl: Array  # mean_b KL_b
    regulariser: Any  # {name: []}, the scalar form's one D named "divergence"
    finite: Array  # bool: this step's loss and gradients were finite
    adversary_loss: Any = None  # {name: []} the adversaries' losses, None without adversaries

    divergence = former_attribute("divergence", "regulariser")


def make_optimizer(*, amsgrad: bool = True) -> optax.GradientTransformation:
    """Adam (AMSGrad by default, as the paper) with an injected learning rate.

    The learning rate is part of the optimiser *state*, so it is a traced
    number that a sweep vmaps over: ``optimizer.init(params)`` after
    ``optimizer = make_optimizer()`` is called as ``init(params,
    learning_rate)`` through :class:`Trainer`.
    """
    base = optax.amsgrad if amsgrad else optax.adam
    return optax.inject_hyperparams(base)(learning_rate=0.0)


class Trainer(NamedTuple):
    """The pure functions of a training run (structure closed over).

    Attributes:
      init: ``(key, hyper, learning_rate) -> TrainState``; ``key`` a typed
        key or its raw data.
      step: ``(state, hyper, data) -> (state, StepInfo)``, one optimiser step.
      run: ``(state, hyper, data, num_steps) -> (state, StepInfo
        [num_steps])``, a ``lax.scan`` of ``step`` (``num_steps`` static).

    ``data`` is the device-held data set (any pytree, or None for a
    procedural stream), passed as an argument rather than closed over so
    that jit does not embed it in the program as a constant.
    """

    init: Callable[[Array, Hyperparams, Any], TrainState]
    step: Callable[[TrainState, Hyperparams, Any], tuple[TrainState, StepInfo]]
    run: Callable[[TrainState, Hyperparams, Any, int], tuple[TrainState, StepInfo]]


def _all_finite(tree) -> Array:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        return jnp.asarray(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def split_state(params: Any) -> tuple[Any, dict]:
    """``(trainable, state)``: the non-trainable collections (``batch_stats``) taken out of ``params``.

    Args:
      params: ``{"encoder": variables, "decoder": variables[, "prior": …]}``.

    Returns:
      ``state = {name: {"batch_stats": …}}`` for every entry holding one, and
      ``trainable``, ``params`` without them; ``(params, {})`` itself (the
      same object) when there is none.
    """
    if not isinstance(params, dict):
        return params, {}
    state = {
        name: {c: v[c] for c in STATE_COLLECTIONS if c in v}
        for name, v in params.items()
        if isinstance(v, dict) and any(c in v for c in STATE_COLLECTIONS)
    }
    if not state:
        return params, {}
    trainable = {
        name: {c: w for c, w in v.items() if c not in STATE_COLLECTIONS} if name in state else v
        for name, v in params.items()
    }
    return trainable, state


def merge_state(trainable: Any, state: dict) -> Any:
    """The inverse of :func:`split_state`."""
    if not state:
        return trainable
    return {name: {**v, **state[name]} if name in state else v for name, v in trainable.items()}


def _new_state(state: dict, terms: Any) -> dict:
    """The statistics of ``state`` replaced by ``terms.state_updates``; ValueError if any is missing."""
    if not state:
        return state
    updates = getattr(terms, "state_updates", None) or {}
    missing = [f"{name}.{c}" for name, cols in state.items() for c in cols if c not in updates.get(name, {})]
    if missing:
        raise ValueError(
            f"params hold running statistics ({', '.join(missing)}) but the objective returned no update "
            "for them in terms.state_updates: build it with make_objective(..., train=True)"
        )
    return {name: {c: updates[name][c] for c in cols} for name, cols in state.items()}


def _at_step(hyper: Any, step: Array) -> Any:
    """``hyper`` with ``step`` set (Hyperparams only; other pytrees pass unchanged)."""
    return hyper._replace(step=step) if isinstance(hyper, Hyperparams) else hyper


def _init_adversaries(adversaries: Mapping[str, Adversary], key: Array) -> AdversaryState | None:
    """The adversaries' variables and optimiser states, from the member's key (a stream of its own)."""
    names = sorted(adversaries)
    if not names:
        return None
    keys = dict(zip(names, jax.random.split(jax.random.fold_in(key, ADVERSARY_STREAM), len(names))))
    params = {n: adversaries[n].init(keys[n]) for n in names}
    return AdversaryState(params=params, opt_state={n: adversaries[n].optimizer.init(params[n]) for n in names})


def _update_adversaries(adversaries: Mapping[str, Adversary], adversary: AdversaryState, grads: dict) -> AdversaryState:
    """One step of each adversary's own optimiser on its own gradient."""
    params, opt_state = {}, {}
    for n in sorted(adversaries):
        updates, opt_state[n] = adversaries[n].optimizer.update(grads[n], adversary.opt_state[n], adversary.params[n])
        params[n] = optax.apply_updates(adversary.params[n], updates)
    return AdversaryState(params=params, opt_state=opt_state)


def _updater(optimizer, adversaries: Mapping[str, Adversary], trainable, stats: dict, grads, adversary_grads):
    """``update(state) -> (params, opt_state, adversary)``: one step of every optimiser on this step's gradients.

    ``stats`` (the new running statistics) are merged into the new parameters.
    """

    def update(state: TrainState):
        updates, opt_state = optimizer.update(grads, state.opt_state, trainable)
        params = merge_state(optax.apply_updates(trainable, updates), stats)
        adversary = _update_adversaries(adversaries, state.adversary, adversary_grads) if adversaries else None
        return params, opt_state, adversary

    return update


def _next_state(state: TrainState, finite: Array, update: Callable) -> TrainState:
    """The state after a step: ``update(state) -> (params, opt_state, adversary)`` applied only to a healthy member.

    A ``lax.cond``, so an unbatched step reads and writes each parameter and
    moment once (no select over old and new values); under ``vmap`` (a
    sweep's members) it becomes that select, per member.
    """
    healthy = finite & (state.diverged_at < 0)
    keep = lambda state: (state.params, state.opt_state, state.adversary)  # noqa: E731
    params, opt_state, adversary = jax.lax.cond(healthy, update, keep, state)
    return TrainState(
        step=state.step + 1,
        params=params,
        opt_state=opt_state,
        key=state.key,
        diverged_at=jnp.where((state.diverged_at < 0) & ~finite, state.step, state.diverged_at),
        adversary=adversary,
    )


def _make_gradients(objective: Objective, names: list[str]) -> Callable:
    """``(key, trainable, stats, adversary_params, hyper, x) -> (grads, adversary_grads, loss, terms)``.

    The loss is differentiated w.r.t. the trainable parameters only (the BatchNorm statistics ``stats``
    are merged back in for the forward pass); with adversaries (``names``), also each adversary's loss
    w.r.t. its own variables, in the same pass (the objective's ``stop_gradient``s keep the two apart).
    """

    def partitioned(key, trainable, state, hyper, x):
        return objective(key, merge_state(trainable, state), hyper, x)

    def adversarial(key, trainable, state, adversary_params, hyper, x):
        loss, terms = objective(key, {**merge_state(trainable, state), "adversary": adversary_params}, hyper, x)
        losses = terms.adversary_loss or {}
        if set(losses) != set(names):
            got = sorted(losses)
            raise ValueError(f"the trainer has adversaries {names} but the objective returned losses for {got}")
        return loss + sum(losses[n] for n in names), (loss, terms)

    grad_fn = jax.value_and_grad(partitioned, argnums=1, has_aux=True)
    adversarial_grad_fn = jax.grad(adversarial, argnums=(1, 3), has_aux=True)

    def gradients(key, trainable, stats, adversary_params, hyper, x):
        if names:
            (grads, adversary_grads), (loss, terms) = adversarial_grad_fn(
                key, trainable, stats, adversary_params, hyper, x)
            return grads, adversary_grads, loss, terms
        (loss, terms), grads = grad_fn(key, trainable, stats, hyper, x)
        return grads, None, loss, terms

    return gradients


def _make_init(init_params: InitParams, optimizer: optax.GradientTransformation,
               adversaries: Mapping[str, Adversary]) -> Callable[[Array, Hyperparams, Any], TrainState]:
    """``init(key, hyper, learning_rate) -> TrainState`` (the key may be raw key data, as a sweep stacks it)."""

    def init(key: Array, hyper: Hyperparams, learning_rate) -> TrainState:
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)  # raw key data, as stacked by a sweep
        key_params, key_run = jax.random.split(key)
        params = init_params(key_params, hyper)
        opt_state = optimizer.init(split_state(params)[0])
        opt_state.hyperparams["learning_rate"] = jnp.asarray(learning_rate, jnp.float32)
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=opt_state,
            key=jax.random.key_data(key_run),
            diverged_at=jnp.full((), -1, jnp.int32),
            adversary=_init_adversaries(adversaries, key),
        )

    return init


def make_trainer(
    objective: Objective,
    init_params: InitParams,
    batch: BatchFn,
    *,
    amsgrad: bool = True,
    adversaries: Mapping[str, Adversary] | None = None,
) -> Trainer:
    """Build ``init``/``step``/``run`` for one model; vmap them for a sweep.

    Args:
      objective: ``(key, params, hyper, x) -> (loss, terms)``, e.g. from
        :func:`decompvae.objective.make_objective` (with ``train=True`` for
        networks with BatchNorm: ``terms.state_updates`` must then hold their
        new statistics).
      init_params: ``(key, hyper) -> params``, initial network (and learnable
        prior) parameters.
      batch: ``(key, step, data) -> x``, a pure batch function (e.g.
        ``Batcher.batch_at`` of :mod:`decompvae.data`, or a procedural
        stream that ignores ``data``).
      amsgrad: AMSGrad (paper) or plain Adam.
      adversaries: ``{name: Adversary}`` of the objective's regularisers that
        train one (:func:`decompvae.regularisers.adversaries`); their variables
        go to the objective as ``params["adversary"]`` and its
        ``terms.adversary_loss[name]`` trains them with their own optimisers.

    Returns:
      A :class:`Trainer`.
    """
    optimizer = make_optimizer(amsgrad=amsgrad)
    adversaries = dict(adversaries or {})
    names = sorted(adversaries)
    gradients = _make_gradients(objective, names)
    init = _make_init(init_params, optimizer, adversaries)

    def step(state: TrainState, hyper: Hyperparams, data: Any) -> tuple[TrainState, StepInfo]:
        key_data, key_model = jax.random.split(jax.random.wrap_key_data(state.key))
        x = batch(key_data, state.step, data)
        hyper = _at_step(hyper, state.step)
        trainable, stats = split_state(state.params)
        key = jax.random.fold_in(key_model, state.step)
        adversary_params = state.adversary.params if names else None
        grads, adversary_grads, loss, terms = gradients(key, trainable, stats, adversary_params, hyper, x)
        stats = _new_state(stats, terms)  # the running statistics of the pass that gave the loss
        finite = jnp.isfinite(loss) & _all_finite(grads) & _all_finite(stats) & _all_finite(adversary_grads)
        new_state = _next_state(state, finite, _updater(optimizer, adversaries, trainable, stats, grads, adversary_grads))
        info = StepInfo(
            loss=loss, recon=jnp.mean(terms.recon), kl=jnp.mean(terms.kl), regulariser=terms.regulariser, finite=finite,
            adversary_loss=terms.adversary_loss if names else None,
        )
        return new_state, info

    def run(state: TrainState, hyper: Hyperparams, data: Any, num_steps: int) -> tuple[TrainState, StepInfo]:
        return jax.lax.scan(lambda s, _: step(s, hyper, data), state, None, length=num_steps)

    return Trainer(init=init, step=step, run=run)
