"""The dense dSprites step beside its plain-JAX floor and PyTorch: ``python -m benchmarks.dense_step``.

The network every dSprites CPU experiment trains: ``make_networks("mlp", 10,
hidden=(256, 256))`` on 64×64×1 images (encoder 4096-256-256 → two heads of
D = 10, decoder 10-256-256-4096), Bernoulli likelihood, N(0, I) prior, one
posterior sample, AMSGrad at 5e-4, on one fixed dSprites batch. For each
batch size B one run times, interleaved round by round:

- ``floor grad``: the same arithmetic written as one plain JAX function
  (:func:`floor_loss`: matmuls, ReLU, the reparameterised sample, the
  closed-form Gaussian KL, x·l − softplus(l)) — no project code — under
  ``jax.value_and_grad`` (a training step needs the loss as well: under
  ``jax.grad`` alone XLA drops the forward softplus and its sum, which the
  objective's terms need);
- ``objective grad``: ``jax.grad`` of the project's
  :func:`decompvae.objective.make_objective` on the same network;
- ``floor step``: the floor's gradient and an ``optax.amsgrad`` update;
- ``project step``: :func:`decompvae.train.make_trainer`'s step (guards,
  diagnostics and the injected learning rate included);
  both steps as training runs them, ``--steps`` (10) to a ``lax.scan`` per
  call (``Trainer.run``), timed per step — a lone jitted step without
  donated buffers also copies every parameter and moment it keeps;
- ``project step bf16``: the same step with ``compute_dtype="bfloat16"`` (the matmuls multiply in
  bfloat16 and accumulate in float32; parameters and optimiser state stay float32), reported beside
  float32 as ``bf16 / f32``;
- ``torch step``: the same network in PyTorch
  (:class:`benchmarks.torch_reference.DenseVAE`, ``Adam(amsgrad=True)``),
  when torch is installed (``pip install -e '.[bench]'``), timed in its own
  rounds after the JAX ones (its OpenMP threads spin after each call and
  slow whatever runs next).

It prints one Markdown table (median and best ms per step, the ratios the
speed issue sets targets for, images/s and the share of the machine's
float32 GEMM peak) and, with ``--output DIR``, writes ``dense_step.json``
and ``dense_step.md`` there. FLOPs per image are counted from the layer
shapes: the forward pass's 2·Σ m·n multiply-adds, three times over for a
step (forward, and the two products of each layer's backward pass).

Usage::

    python -m benchmarks.dense_step [--batches 64 256 1024] [--repeats 10] [--steps 10] [--no-torch] [--output DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import statistics
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.bench import _load_torch_reference, network_init, sprites_batch
from benchmarks.bench_report import backends_line
from benchmarks.harness import Stepper, interleaved, machine_info, matmul_peak
from decompvae.networks import make_networks
from decompvae.objective import Hyperparams, make_objective
from decompvae.priors import make_prior
from decompvae.train import make_trainer

__all__ = ["HIDDEN", "LATENT_DIM", "flops_per_image", "floor_loss", "floor_params", "main", "run"]

HIDDEN = (256, 256)
LATENT_DIM = 10
IMAGE_SHAPE = (64, 64, 1)
LEARNING_RATE = 5e-4
BATCHES = (64, 256, 1024)
#: Steps per call of the two scanned programs (``Trainer.run``, as training runs them), timed per step.
SCAN_STEPS = 10
SCANNED = ("floor step", "project step", "project step bf16")


def flops_per_image(pixels: int = 4096, hidden: Sequence[int] = HIDDEN, latent_dim: int = LATENT_DIM) -> float:
    """FLOPs of one training step per image: 3 × 2·Σ (fan-in × fan-out) of the dense layers."""
    encoder = [pixels, *hidden]
    decoder = [latent_dim, *reversed(hidden), pixels]
    products = sum(a * b for a, b in zip(encoder[:-1], encoder[1:])) + 2 * encoder[-1] * latent_dim
    products += sum(a * b for a, b in zip(decoder[:-1], decoder[1:]))
    return 3 * 2.0 * products


def floor_params(flax_params: dict, hidden: Sequence[int] = HIDDEN) -> dict:
    """The project's Flax variables of the ``mlp`` networks as the floor's ``(W, c)`` lists."""
    enc, dec = flax_params["encoder"]["params"], flax_params["decoder"]["params"]
    layer = lambda p: (p["kernel"], p["bias"])  # noqa: E731
    n = len(hidden)
    return {
        "encoder": [layer(enc[f"dense{i}"]) for i in range(n)],
        "loc": layer(enc["loc"]),
        "log_var": layer(enc["raw"]),
        "decoder": [layer(dec[f"dense{i}"]) for i in range(n)] + [layer(dec["loc"])],
    }


def floor_loss(params: dict, key: jax.Array, x: jax.Array) -> jax.Array:
    """The batch-mean negative ELBO of the dense VAE in plain JAX (no project code).

    With h the encoder's last hidden layer, μ = h W_μ + c_μ, σ = exp(½(h W_v +
    c_v)) + 1e-6, z = μ + σ·ε (ε ~ N(0, I) drawn as the project's posterior
    draws it), l the decoder's logits:

        loss = mean_b [ −Σ_pixels (x·l − softplus(l)) + ½ Σ_d (σ² + μ² − 1) − Σ_d log σ ]

    Args:
      params: :func:`floor_params`.
      key: the objective's key (split as ``make_objective`` splits it).
      x: ``[b, 64, 64, 1]`` images in [0, 1].

    Returns:
      ``[]`` the loss.
    """
    b = x.shape[0]
    x = x.reshape(b, -1)
    h = x
    for w, c in params["encoder"]:
        h = jax.nn.relu(h @ w + c)
    loc = h @ params["loc"][0] + params["loc"][1]
    scale = jnp.exp(0.5 * (h @ params["log_var"][0] + params["log_var"][1])) + 1e-6  # the project's SCALE_FLOOR
    key_z, _ = jax.random.split(key)
    z = loc + scale * jax.random.normal(key_z, (1, *loc.shape))[0]
    *hidden_layers, (w_out, c_out) = params["decoder"]
    for w, c in hidden_layers:
        z = jax.nn.relu(z @ w + c)
    logits = z @ w_out + c_out
    recon = jnp.sum(x * logits - jax.nn.softplus(logits), axis=1)
    kl = 0.5 * jnp.sum(scale**2 + loc**2 - 1.0, axis=1) - jnp.sum(jnp.log(scale), axis=1)
    return jnp.mean(kl - recon)


def make_project(hidden: Sequence[int] = HIDDEN, latent_dim: int = LATENT_DIM, compute_dtype: str = "float32"):
    """``(objective, trainer, init_params)`` of the project on the dense network (batch = the fixed data);
    ``compute_dtype="bfloat16"``: the matmuls multiply in bfloat16 and accumulate in float32 (``model.compute_dtype``)."""
    encoder, decoder = make_networks("mlp", latent_dim, data_shape=IMAGE_SHAPE, hidden=tuple(hidden),
                                     compute_dtype=compute_dtype)
    objective = make_objective(encoder, decoder, likelihood="bernoulli", prior=make_prior("isotropic", latent_dim))

    init_params = network_init(encoder, decoder, IMAGE_SHAPE, latent_dim)
    trainer = make_trainer(objective, init_params, lambda key, step, data: data)
    return objective, trainer, init_params


def _floor_run(optimizer: optax.GradientTransformation, steps: int):
    """``((params, opt_state, key), x) -> (new, losses [steps])``: floor steps (gradient + AMSGrad) in a scan."""
    value_and_grad = jax.value_and_grad(floor_loss)

    def run(carry, x):
        def step(carry, _):
            params, opt_state, key = carry
            key, key_step = jax.random.split(key)
            loss, grads = value_and_grad(params, key_step, x)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, key), loss

        return jax.lax.scan(step, carry, None, length=steps)

    return jax.jit(run)


def _thunks(batch: int, torch_ref, steps: int) -> dict[str, Callable[[], Any]]:
    """The five timed functions at one batch size (the two steps: ``steps`` per call, as training runs them)."""
    x = sprites_batch(batch)
    objective, trainer, init_params = make_project()
    hyper = Hyperparams(prior={})
    key = jax.random.key(0)
    params = init_params(key, hyper)
    floor = floor_params(params)
    floor_grad = jax.jit(jax.value_and_grad(floor_loss))
    objective_grad = jax.jit(jax.grad(objective, argnums=1, has_aux=True))
    optimizer = optax.amsgrad(LEARNING_RATE)
    state = jax.jit(trainer.init)(key, hyper, LEARNING_RATE)
    _, low, _ = make_project(compute_dtype="bfloat16")
    thunks = {
        "floor grad": lambda: floor_grad(floor, key, x),
        "objective grad": lambda: objective_grad(key, params, hyper, x),
        "floor step": Stepper(_floor_run(optimizer, steps), (floor, optimizer.init(floor), key), x),
        "project step": Stepper(jax.jit(trainer.run, static_argnums=3), state, hyper, x, steps),
        "project step bf16": Stepper(jax.jit(low.run, static_argnums=3), jax.jit(low.init)(key, hyper, LEARNING_RATE),
                                     hyper, x, steps),
    }
    if torch_ref is not None:
        thunks["torch step"] = torch_ref.make_step(np.asarray(x), latent_dim=LATENT_DIM, hidden=HIDDEN,
                                                   learning_rate=LEARNING_RATE)
    return thunks


def run(batches: Sequence[int] = BATCHES, repeats: int = 10, torch: bool = True, peak_size: int = 2048,
        steps: int = SCAN_STEPS) -> dict:
    """Time the five functions at each batch size; return the report (ms per step, ratios, throughput)."""
    torch_ref, why = _load_torch_reference() if torch else (None, "skipped (--no-torch)")
    peak = matmul_peak(peak_size, max(3, repeats // 2))
    rows = []
    for batch in batches:
        thunks = _thunks(batch, torch_ref, steps)
        torch_step = thunks.pop("torch step", None)
        times = interleaved(thunks, repeats)
        if torch_step is not None:
            # Alone, after the JAX rounds: PyTorch's OpenMP threads spin after each call
            # and slowed whichever JAX program ran next when interleaved (medians +30–60 %).
            times.update(interleaved({"torch step": torch_step}, repeats))
        per = {name: steps if name in SCANNED else 1 for name in times}
        ms = {name: {"median_ms": 1e3 * statistics.median(t) / per[name], "min_ms": 1e3 * min(t) / per[name]}
              for name, t in times.items()}
        rows.append(_row(batch, ms, peak["best_gflops_per_s"]))
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "network": {"hidden": list(HIDDEN), "latent_dim": LATENT_DIM, "image_shape": list(IMAGE_SHAPE),
                    "flops_per_image": flops_per_image()},
        "gemm_peak": peak,
        "torch": None if torch_ref is None else torch_ref.torch_version(),
        "torch_missing": why,
        "repeats": repeats,
        "scan_steps": steps,
        "rows": rows,
    }


def _row(batch: int, ms: dict, peak_gflops: float) -> dict:
    """Ratios on the medians; throughput and share of the GEMM peak for the project's step."""
    med = {name: v["median_ms"] for name, v in ms.items()}
    step_s = med["project step"] / 1e3
    row = {
        "batch": batch,
        "ms": ms,
        "objective_over_floor": med["objective grad"] / med["floor grad"],
        "step_over_floor_step": med["project step"] / med["floor step"],
        "images_per_s": batch / step_s,
        "share_of_peak": batch * flops_per_image() / step_s / (peak_gflops * 1e9),
    }
    if "torch step" in med:
        row["step_over_torch"] = med["project step"] / med["torch step"]
    if "project step bf16" in med:
        row["bf16_over_f32"] = med["project step bf16"] / med["project step"]
    return row


def format_markdown(report: dict) -> str:
    """The table of one run, with its machine, date and peak."""
    low = any("bf16_over_f32" in row for row in report["rows"])  # reports before 2026-12-07 lack bfloat16
    names = ["floor grad", "objective grad", "floor step", "project step", *(["project step bf16"] if low else []),
             "torch step"]
    head = ("| B | " + " | ".join(f"{n} ms" for n in names) + " | objective / floor | step / floor step | "
            + ("bf16 / f32 | " if low else "") + "step / torch | images/s | share of GEMM peak |")
    lines = [head, "|" + "---|" * (len(names) + 6 + low)]
    for row in report["rows"]:
        cells = [f"{row['ms'][n]['median_ms']:.1f} ({row['ms'][n]['min_ms']:.1f})" if n in row["ms"] else "–"
                 for n in names]
        torch_ratio = f"{row['step_over_torch']:.2f}×" if "step_over_torch" in row else "–"
        bf16 = f"{row['bf16_over_f32']:.2f}× | " if low else ""
        lines.append(f"| {row['batch']} | " + " | ".join(cells) + f" | {row['objective_over_floor']:.2f}× | "
                     f"{row['step_over_floor_step']:.2f}× | {bf16}{torch_ratio} | {row['images_per_s']:,.0f} | "
                     f"{100 * row['share_of_peak']:.0f} % |")
    m, peak = report["machine"], report["gemm_peak"]
    return "\n".join([
        f"Dense dSprites step ({report['network']['flops_per_image'] / 1e6:.1f} MFLOP per image), "
        f"{report['date']}, {m['cpu_model']}, {m['cpu_count']} cores (load {_load(m)}), jax {m['versions']['jax']}, "
        f"torch {report['torch'] or 'not installed'}; GEMM peak {peak['best_gflops_per_s']:.0f} GFLOP/s "
        f"({peak['size']}², best). Median (best) of {report['repeats']} rounds (the JAX programs interleaved), steps scanned {report['scan_steps']} to a call.",
        "",
        *([backends_line(m["backends"]), ""] if m.get("backends") else []),
        *lines,
    ])


def _load(machine: dict) -> str:
    load = machine.get("load_average")
    return "?" if not load else f"{load[0]:.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--steps", type=int, default=SCAN_STEPS, help="steps per call of the scanned programs")
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch peer")
    parser.add_argument("--output", type=pathlib.Path, default=None, help="write dense_step.json and .md here")
    args = parser.parse_args(argv)
    report = run(args.batches, args.repeats, torch=not args.no_torch, steps=args.steps)
    text = format_markdown(report)
    print(text)
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "dense_step.json").write_text(json.dumps(report, indent=1, default=str))
        (args.output / "dense_step.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
