"""Input validation that runs before tracing and is skipped on traced values.

Each check raises a ``ValueError`` that names the parameter and what is
allowed. Traced values (inside ``jit``/``vmap``/``grad``) cannot be inspected
and pass through unchecked.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Callable

import jax
import numpy as np


def is_concrete(value) -> bool:
    """True when ``value`` holds known numbers (not a tracer)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def check_dim(name: str, value) -> None:
    """``value`` must be a positive Python/NumPy integer (a static size)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


def check_positive(name: str, value) -> None:
    """Every element of ``value`` must be finite-or-inf and > 0."""
    if is_concrete(value):
        arr = np.asarray(value, dtype=np.float64)
        if np.any(np.isnan(arr)) or np.any(arr <= 0):
            raise ValueError(f"{name} must be > 0; got {_show(arr)}")


def check_in_range(name: str, value, low: float, high: float) -> None:
    """Every element of ``value`` must lie in the closed interval [low, high]."""
    if is_concrete(value):
        arr = np.asarray(value, dtype=np.float64)
        if np.any(np.isnan(arr)) or np.any(arr < low) or np.any(arr > high):
            raise ValueError(f"{name} must lie in [{low}, {high}]; got {_show(arr)}")


def check_finite_concrete(name: str, value) -> None:
    """Every element of ``value`` must be finite."""
    if is_concrete(value):
        arr = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite; got {_show(arr)}")


def check_choice(name: str, value, allowed) -> None:
    """``value`` must be one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}; got {value!r}")


def check_block_sizes(name: str, blocks) -> tuple[int, ...]:
    """``blocks`` must be a non-empty sequence of positive integers (static block sizes); returned as a tuple."""
    sizes = tuple(blocks) if isinstance(blocks, (list, tuple)) else None
    if not sizes or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in sizes):
        raise ValueError(f"{name} must be a non-empty list of positive integers (block sizes); got {blocks!r}")
    return tuple(int(k) for k in sizes)


def check_blocks(name: str, blocks, dim: int) -> tuple[int, ...]:
    """``blocks`` must be positive integers summing to ``dim`` (a partition of D into contiguous blocks)."""
    sizes = check_block_sizes(name, blocks)
    if sum(sizes) != dim:
        raise ValueError(f"{name} must sum to the latent dimension D = {dim}; got {list(sizes)} (sum {sum(sizes)})")
    return sizes


def _show(arr: np.ndarray) -> str:
    return repr(arr.item()) if arr.size == 1 else np.array2string(arr, threshold=8)


def renamed(module: str, old: str, new: Callable, registry: str) -> Callable:
    """``new`` under its previous name ``old``, warning (``DeprecationWarning``) that the name is deprecated.

    ``module`` and ``registry`` name where ``new`` lives and the registry whose key it is now named after.
    Arguments the previous release took by position and ``new`` takes by keyword only (its numbers) are
    passed on by their names, in ``new``'s order, so a call written for the previous release gives the
    same result.
    """
    parameters = inspect.signature(new).parameters
    names = list(parameters)
    positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters.values())

    @functools.wraps(new)
    def deprecated(*args, **kwargs):
        warnings.warn(f"{module}.{old} is deprecated; use {module}.{new.__name__} (the name of its {registry} key)",
                      DeprecationWarning, stacklevel=2)
        return new(*args[:positional], **dict(zip(names[positional:], args[positional:])), **kwargs)

    return deprecated


def former_attribute(old: str, new: str) -> property:
    """A read-only property ``old`` that warns (``DeprecationWarning``) and returns ``self.<new>``: an attribute
    under the name an earlier release gave it."""

    def get(self):
        warnings.warn(f"{type(self).__name__}.{old} is deprecated; use {type(self).__name__}.{new}",
                      DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    return property(get, doc=f"Deprecated: :attr:`{new}`.")


def former_keywords(where: str, given: dict, names: dict[str, str], today: dict) -> dict:
    """``today`` (``{name: value or None}``, the caller's keywords under today's names) with the keywords
    ``given`` under former names (``names``: ``{former: today}``) moved in, each with a DeprecationWarning.

    Raises:
      TypeError: a keyword that is neither, or a former name given beside today's.
    """
    today = dict(today)
    for former, value in given.items():
        if former not in names:
            raise TypeError(f"{where} got an unexpected keyword argument {former!r}")
        if today.get(names[former]) is not None:
            raise TypeError(f"{where}: give {names[former]}, not also its former name {former}")
        warnings.warn(f"{where}({former}=…) is deprecated; use {names[former]}=…", DeprecationWarning, stacklevel=3)
        today[names[former]] = value
    return today
