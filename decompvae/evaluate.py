"""``decompvae evaluate RUN_DIR``: the metrics that apply to a trained run.

Rebuilds the run from its ``config.json``, restores the newest checkpoint and
computes, for every member (or those selected):

* all data: held-out ELBO terms, the IWAE log-likelihood bound, overlap
  (I_q(x; z), mean encoder entropy, KL(q(z) ‖ p(z))) and normalised Hoyer
  sparsity of the encoder means;
* ground-truth data (dSprites): FactorVAE score (both protocols), β-VAE
  score, discrete MIG, DCI, SAP, modularity and explicitness;
* mixture priors (pinwheel): clustering accuracy and NMI against the arms.

Writes ``metrics.json`` (one object per member) and prints a table.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from decompvae import metrics
from decompvae.checkpoint import Checkpointer
from decompvae.config import Config
from decompvae.objective import make_iwae, make_model
from decompvae.sweep import init_members, make_sweep, member_label, stack_members

__all__ = ["EvalSizes", "evaluate_member", "evaluate_run", "load_run", "main"]


class EvalSizes:
    """Sample sizes: disentanglement_lib's defaults, or small ones (``quick``)."""

    def __init__(self, quick: bool = False):
        self.iwae_points = 64 if quick else 500
        self.iwae_samples = 50 if quick else 1000
        self.overlap_points = 200 if quick else 2000
        self.train_points = 300 if quick else 10_000
        self.test_points = 150 if quick else 5_000
        self.dci_points = 200 if quick else 2_000  # GBT is the suite's cost (see metrics docs)
        self.votes = 100 if quick else None  # None: each protocol's default
        self.points_per_vote = 16 if quick else None
        self.paper_pool = 2_000 if quick else None


def load_run(run_dir: str | Path):
    """``(built, state, hyper, step)`` of a run directory's newest checkpoint."""
    from decompvae import runner

    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: is {run_dir} the output_dir of a decompvae run?")
    config = Config.from_dict(json.loads(config_path.read_text()))
    built = runner.build(config)
    hyper, learning_rates, keys = stack_members(built.members, built.fixed_prior)
    target = init_members(make_sweep(built.trainer), keys, hyper, learning_rates)
    with Checkpointer(run_dir / "checkpoints") as checkpointer:  # a reader: never moves or deletes anything
        found = checkpointer.restore_latest(target)  # a damaged newest one falls back to the previous, with a warning
    if found is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir / 'checkpoints'}: train the run first")
    step, state = found
    return built, jax.device_get(state), jax.device_get(hyper), step


def _encoder_means(built, params):
    apply = jax.jit(lambda x: built.encoder.apply(params["encoder"], x)[0])
    return lambda images: apply(jnp.asarray(images, jnp.float32))


def evaluate_member(key, built, params, hyper, sizes: EvalSizes) -> dict[str, Any]:
    """All applicable metrics of one member; a flat dict of floats."""
    cfg = built.config
    key_iwae, key_overlap, key_fv, key_fv2, key_bv, key_tr, key_te = jax.random.split(key, 7)
    result: dict[str, Any] = {}
    x = built.bundle.eval_x
    _, terms = jax.jit(built.eval_objective)(key_iwae, params, hyper, x[: sizes.iwae_points])
    result["elbo"] = float(jnp.mean(terms.recon - terms.kl))
    result["recon"] = float(jnp.mean(terms.recon))
    iwae = make_iwae(
        built.encoder,
        built.decoder,
        likelihood=built.likelihood,
        prior=built.prior_fn,
        posterior=cfg.model.posterior,
        num_samples=sizes.iwae_samples,
        chunk_size=min(100, sizes.iwae_samples),
    )
    result["iwae_log_likelihood"] = float(jnp.mean(jax.jit(iwae)(key_iwae, params, hyper, x[: sizes.iwae_points])))
    model = make_model(
        built.encoder, built.decoder, likelihood=built.likelihood, prior=built.prior_fn, posterior=cfg.model.posterior
    )
    dist = model(params, hyper, x[: sizes.overlap_points])
    info = metrics.overlap(key_overlap, dist.posterior, dist.prior)
    result.update({f"overlap_{k}": float(v) for k, v in info._asdict().items()})
    encode = _encoder_means(built, params)
    codes = np.asarray(encode(x))
    result["hoyer_sparsity"] = metrics.hoyer_sparsity(codes)
    dataset = built.bundle.ground_truth
    if dataset is not None:
        votes = {} if sizes.votes is None else {
            "num_train_votes": sizes.votes, "num_eval_votes": sizes.votes // 2, "points_per_vote": sizes.points_per_vote
        }
        fv = metrics.factor_vae_score(key_fv, encode, dataset, num_variance_points=sizes.train_points, **votes)
        result["factor_vae_dlib"] = fv["score"]
        paper_kw = {} if sizes.votes is None else {"num_train_votes": sizes.votes, "num_pool_points": sizes.paper_pool}
        result["factor_vae_paper"] = metrics.factor_vae_score(key_fv2, encode, dataset, protocol="paper", **paper_kw)["score"]
        result["num_active_dims"] = fv["num_active_dims"]
        bv_kw = {} if sizes.votes is None else {
            "num_train": sizes.votes, "num_eval": sizes.votes // 2, "points_per_vote": sizes.points_per_vote
        }
        result["beta_vae"] = metrics.beta_vae_score(key_bv, encode, dataset, **bv_kw)["score"]
        c_tr, f_tr = metrics.sample_codes_and_factors(key_tr, encode, dataset, sizes.train_points)
        c_te, f_te = metrics.sample_codes_and_factors(key_te, encode, dataset, sizes.test_points)
        c_tr, f_tr, c_te, f_te = map(np.asarray, (c_tr, f_tr, c_te, f_te))
        result["mig"] = metrics.mig(c_tr, f_tr)
        result["modularity"] = metrics.modularity(c_tr, f_tr)
        result.update(metrics.explicitness(c_tr, f_tr, c_te, f_te))
        result["sap"] = metrics.sap(c_tr, f_tr, c_te, f_te)
        n = sizes.dci_points
        dci = metrics.dci(c_tr[:n], f_tr[:n], c_te[: n // 2], f_te[: n // 2], n_jobs=-1)
        result.update({f"dci_{k}": v for k, v in dci.items()})
    if cfg.model.prior == "pinwheel" and built.bundle.eval_labels is not None:
        result.update(
            {f"clustering_{k}": v for k, v in metrics.clustering_scores(codes, np.asarray(built.bundle.eval_labels), prior=dist.prior).items()}
        )
    return {k: (float(v) if isinstance(v, (float, int, np.floating, np.integer)) else v) for k, v in result.items()}


def evaluate_run(run_dir, members: list[int] | None = None, *, quick: bool = False, echo=print) -> list[dict]:
    """Metrics for the selected members of a run (default all)."""
    built, state, hyper, step = load_run(run_dir)
    n = len(built.members)
    selected = list(range(n)) if not members else members
    for i in selected:
        if not 0 <= i < n:
            raise ValueError(f"--member {i} is out of range: the run has members 0…{n - 1}")
    sizes = EvalSizes(quick)
    rows = []
    for i in selected:
        start = time.perf_counter()
        params = jax.tree.map(lambda a: a[i], state.params)
        h = jax.tree.map(lambda a: a[i], hyper)
        row = {"member": i, "label": member_label(built.members[i]), "step": int(step),
               "diverged_at": int(state.diverged_at[i])}
        row.update(evaluate_member(jax.random.key(i), built, params, h, sizes))
        row["seconds"] = round(time.perf_counter() - start, 2)
        echo(f"member {i} ({row['label']}): {row['seconds']} s")
        rows.append(row)
    return rows


def format_metrics(rows: list[dict]) -> str:
    """A table with one column per member."""
    keys = [k for k in rows[0] if k not in ("member", "label")]
    width = max(len(k) for k in keys)
    header = "metric".ljust(width) + "  " + "  ".join(f"m{r['member']:<9}" for r in rows)
    lines = [header, "-" * len(header)]
    for k in keys:
        cells = [f"{r[k]:<10.4g}" if isinstance(r[k], float) else f"{r[k]!s:<10}" for r in rows]
        lines.append(k.ljust(width) + "  " + "  ".join(cells))
    return "\n".join(lines)


def main(args) -> int:
    rows = evaluate_run(args.run_dir, args.member, quick=args.quick)
    output = Path(args.output) if args.output else Path(args.run_dir) / "metrics.json"
    output.write_text(json.dumps(rows, indent=2) + "\n")
    print(format_metrics(rows))
    print(f"written to {output}")
    return 0
