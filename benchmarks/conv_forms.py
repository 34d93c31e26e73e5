"""The ``"matmul"`` formulation's forms, chosen by hand, against its own choice: ``python -m benchmarks.conv_forms``.

``decompvae.networks.layers`` picks, per layer, the form of its matmul convolution (``"gather"`` or ``"s2d"``)
and of its matmul transposed convolution (``"scatter"`` or ``"block"``) that materialises fewer floats. This
compiles the published convnet's ``Trainer.run`` (:data:`STEPS` steps a call, batch 64, built through the library's
public path) once per variant of :data:`VARIANTS`, each forcing one form on every layer of a kind while it is
traced (:func:`forced_forms`), and times the variants in interleaved rounds (:func:`benchmarks.harness
.interleaved_clocks`, shuffled order) in one process: ms per step, and the ratio to the automatic choice.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys

from benchmarks.harness import interleaved_clocks, machine_info
from benchmarks.renderer_share import RECIPES, compiled_run, recipe_setup
from decompvae.networks import layers

STEPS = 20
#: ``{label: (form of every convolution, form of every transposed convolution)}``; None keeps the automatic one.
VARIANTS = {
    "automatic": (None, None),
    "transposed: scatter": (None, "scatter"),
    "transposed: block": (None, "block"),
    "convolutions: gather": ("gather", None),
    "convolutions: s2d": ("s2d", None),
}


@contextlib.contextmanager
def forced_forms(conv: str | None, transposed: str | None):
    """While open, every matmul convolution traced takes form ``conv`` and every matmul transposed convolution
    ``transposed`` (None: the layer's automatic choice). A transposed convolution in ``"block"`` form is a
    stride-1 convolution, which ``conv`` then also forces."""
    saved = layers._conv2d_matmul, layers._conv_transpose2d_matmul

    def conv2d(*args, form=None, **kw):
        return saved[0](*args, form=conv or form, **kw)

    def conv_transpose2d(*args, form=None, **kw):
        return saved[1](*args, form=transposed or form, **kw)

    layers._conv2d_matmul, layers._conv_transpose2d_matmul = conv2d, conv_transpose2d
    try:
        yield
    finally:
        layers._conv2d_matmul, layers._conv_transpose2d_matmul = saved


def program(conv: str | None, transposed: str | None):
    """A thunk calling the convnet's compiled ``Trainer.run`` of :data:`STEPS` steps, traced with those forms."""
    setup = recipe_setup(RECIPES["published convnet"], 64)
    with forced_forms(conv, transposed):
        return compiled_run(setup, STEPS).call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    clocks = interleaved_clocks({name: program(*forms) for name, forms in VARIANTS.items()}, args.repeats,
                                order_seed=0)
    machine = machine_info()
    base = statistics.median(clocks["automatic"].wall)
    print(f"published convnet, batch 64, `Trainer.run` of {STEPS} steps a call, {machine['date']}, "
          f"{machine['cpu_model']}, {machine['cpu_count']} cores (load average at start {machine['load_average']}); "
          f"medians of {args.repeats} interleaved rounds.\n\n| forms | ms per step (range) | ÷ automatic |\n|---|---|---|")
    for name, c in clocks.items():
        ms = [1e3 * t / STEPS for t in c.wall]
        print(f"| {name} | {statistics.median(ms):.1f} ({min(ms):.1f}–{max(ms):.1f}) | "
              f"{statistics.median(c.wall) / base:.3f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
