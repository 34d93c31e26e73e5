"""Time the array-level metric suite on dSprites-sized synthetic codes.

Codes ``[N, 10]``: five noisy, partly mixed copies of the dSprites factors
(shape 3, scale 6, orientation 40, posX 32, posY 32; uniform classes), four
noise dimensions and one collapsed (constant) dimension. Train N = 10,000 and
test 5,000 points, disentanglement_lib's sizes.

Usage:
  python benchmarks/metrics_suite.py                 # whole suite, one job
  python benchmarks/metrics_suite.py --n-jobs 5      # DCI/SAP fits in parallel
  python benchmarks/metrics_suite.py --skip-dci      # everything but DCI (fast)
  python benchmarks/metrics_suite.py --sampled       # + FactorVAE / β-VAE scores

It also times disentanglement_lib's way of building the mutual-information
matrix (D·K calls of ``sklearn.metrics.mutual_info_score``) against the
vectorised ``mutual_information_matrix`` and checks they agree.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from benchmarks.harness import cpu_model

SIZES = (3, 6, 40, 32, 32)


def make_data(seed: int, num: int, dims: int = 10):
    """Factors ``[num, 5]`` and codes ``[num, dims]`` (dims ≥ 6)."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, num) for s in SIZES], axis=1)
    scaled = factors / (np.array(SIZES) - 1.0)  # [num, 5] in [0, 1]
    mixing = np.eye(5) + 0.2 * np.random.default_rng(123).normal(size=(5, 5))  # same map for train and test
    signal = scaled @ mixing + 0.05 * rng.normal(size=(num, 5))
    noise = rng.normal(size=(num, dims - 6))
    collapsed = np.zeros((num, 1))
    return factors, np.concatenate([signal, noise, collapsed], axis=1)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


class ToyDSprites:
    """dSprites-sized factors whose 'observation' is the factor classes (for --sampled)."""

    factor_sizes = SIZES

    def sample_factors(self, key, n):
        import jax
        import jax.numpy as jnp

        return jax.random.randint(key, (n, len(SIZES)), 0, jnp.asarray(SIZES))

    def images(self, factors):
        return np.asarray(factors, np.float32)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-train", type=int, default=10000)
    parser.add_argument("--num-test", type=int, default=5000)
    parser.add_argument("--dims", type=int, default=10)
    parser.add_argument("--n-jobs", type=int, default=None, help="joblib workers for DCI and SAP")
    parser.add_argument("--skip-dci", action="store_true")
    parser.add_argument("--sampled", action="store_true", help="also time factor_vae_score and beta_vae_score")
    parser.add_argument("--json", type=str, default=None, help="write the timings here")
    return parser


def _array_suite(args, run) -> None:
    """Every array-level metric on the synthetic codes, each through ``run(name, thunk)``."""
    import decompvae.metrics as metrics
    from decompvae.priors import pinwheel

    factors_train, codes_train = make_data(0, args.num_train, args.dims)
    factors_test, codes_test = make_data(1, args.num_test, args.dims)
    split = (codes_train, factors_train, codes_test, factors_test)
    run("mig", lambda: metrics.mig(codes_train, factors_train))
    run("modularity", lambda: metrics.modularity(codes_train, factors_train))
    run("explicitness", lambda: metrics.explicitness(*split))
    run("sap", lambda: metrics.sap(*split, n_jobs=args.n_jobs))
    if not args.skip_dci:
        run("dci", lambda: metrics.dci(*split, n_jobs=args.n_jobs))
    run("hoyer_sparsity", lambda: metrics.hoyer_sparsity(codes_train))
    run("irs", lambda: metrics.irs(codes_train, metrics.histogram_discretize(factors_train, num_bins=20)))
    run("unsupervised_scores", lambda: metrics.unsupervised_scores(codes_train))
    three = np.stack([codes_train, codes_train[:, ::-1], make_data(2, args.num_train, args.dims)[1]])
    kl = np.ones((3, args.dims))
    kl[:, -1] = 0.0  # the collapsed (constant) dimension is inactive, as its KL would say
    run("udr (3 models, lasso)", lambda: metrics.udr(three, kl))
    run("udr (3 models, spearman)", lambda: metrics.udr(three, kl, correlation="spearman"))
    prior = pinwheel()
    run("clustering_scores", lambda: metrics.clustering_scores(codes_train[:, :2], factors_train[:, 0], prior=prior))


def _mi_matrix(args) -> dict[str, float]:
    """disentanglement_lib's MI matrix (D·K sklearn calls on the histogram bins) against the vectorised one."""
    from sklearn.metrics import mutual_info_score

    import decompvae.metrics as metrics

    factors_train, codes_train = make_data(0, args.num_train, args.dims)
    binned = metrics.histogram_discretize(codes_train, num_bins=20)

    def loop_mi():
        return np.array([[mutual_info_score(factors_train[:, k], binned[:, d]) for k in range(len(SIZES))]
                         for d in range(args.dims)])

    reference, loop_seconds = timed(loop_mi)
    vectorised, vector_seconds = timed(lambda: metrics.mutual_information_matrix(codes_train, factors_train))
    agreement = float(np.max(np.abs(reference - vectorised)))
    print(f"MI matrix: sklearn loop {loop_seconds:.3f} s, vectorised {vector_seconds:.3f} s "
          f"(incl. binning), max |difference| {agreement:.1e}")
    return {"mi_loop_seconds": loop_seconds, "mi_vectorised_seconds": vector_seconds,
            "mi_max_abs_difference": agreement}


def _sampled(args, run) -> None:
    """The sampled scores (FactorVAE's and β-VAE's) of a linear representation of a toy dSprites."""
    import jax

    import decompvae.metrics as metrics

    linear = np.concatenate([np.eye(5), np.zeros((5, args.dims - 5))], axis=1).astype(np.float32)
    representation = lambda x: x @ linear  # noqa: E731
    key = jax.random.key(0)
    run("factor_vae_score (dl)", lambda: metrics.factor_vae_score(key, representation, ToyDSprites()))
    run("beta_vae_score", lambda: metrics.beta_vae_score(key, representation, ToyDSprites()))


def main(argv=None) -> None:
    args = _parser().parse_args(argv)
    results, seconds = {}, {}

    def run(name, fn):
        results[name], seconds[name] = timed(fn)
        print(f"{name:28s} {seconds[name]:9.3f} s   {results[name]}", flush=True)

    print(f"CPU: {cpu_model()} ({platform.machine()}), N = {args.num_train} train / {args.num_test} test, "
          f"D = {args.dims}, factors {SIZES}, n_jobs = {args.n_jobs}")
    _array_suite(args, run)
    suite_total = sum(seconds.values())
    print(f"{'array-level suite total':28s} {suite_total:9.3f} s")
    mi = _mi_matrix(args)
    if args.sampled:
        _sampled(args, run)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"cpu": cpu_model(), "seconds": seconds, "suite_total_seconds": suite_total, **mi,
                       "results": dict(results)}, handle, indent=2,
                      default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))  # arrays among results


if __name__ == "__main__":
    main()
