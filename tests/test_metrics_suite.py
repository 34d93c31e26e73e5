"""The one evaluation: its keys, one trace for many members, its errors, the shared names of the experiments."""

import csv
from pathlib import Path

import jax
import numpy as np
import pytest
from scipy import stats

from decompvae.build import build
from decompvae.config import load_config
from decompvae.metrics.suite import MEASURES, EvalSizes, applicable_measures, gaussianise, make_evaluator
from decompvae.objective import Hyperparams

KEYS = {
    "terms": {"recon", "kl", "elbo"},
    "iwae": {"iwae_log_likelihood"},
    "overlap": {"overlap_mi", "entropy", "aggregate_kl", "overlap_mi_bound"},
    "hoyer": {"hoyer"},
    "factor_vae": {"factor_vae_dlib", "factor_vae_paper", "active_dims"},
    "factor_vae_dlib": {"factor_vae_dlib", "active_dims"},
    "mig": {"mig"},
    "mig_sampled": {"mig_sampled"},
    "dci": {"dci_disentanglement", "dci_completeness", "dci_informativeness_train", "dci_informativeness_test"},
    "dlib_suite": {"beta_vae", "modularity", "sap", "explicitness_train", "explicitness_test",
                   "dci_disentanglement", "dci_completeness", "dci_informativeness_train", "dci_informativeness_test"},
    "clustering": {"clustering_accuracy", "clustering_nmi"},
    "block_mig": {"block_mig", "block_alignment"},
    "irs": {"irs"},
    "unsupervised": {"gaussian_total_correlation", "gaussian_wasserstein_correlation",
                     "gaussian_wasserstein_correlation_norm", "mutual_info_score"},
}
TINY = EvalSizes.quick()._replace(eval_points=32, overlap_points=32, iwae_points=8, iwae_samples=10,
                                  variance_points=64, train_votes=8, eval_votes=4, points_per_vote=8, paper_votes=8,
                                  paper_pool=256, mig_points=64, test_points=32, dci_points=32)


@pytest.fixture(scope="module")
def dsprites():
    config = load_config(None, ["model.network=mlp", "model.hidden=[8]", "model.latent_dim=3", "data.eval_points=64",
                                "train.batch_size=8"])
    setup = build(config)
    params = setup.trainer.init(jax.random.key(0), Hyperparams(prior={}), 1e-3).params
    return setup, params


def test_keys_of_every_measure(dsprites):
    setup, params = dsprites
    assert applicable_measures(setup) == ("terms", "iwae", "overlap", "hoyer", "unsupervised", "factor_vae", "mig",
                                          "dlib_suite", "irs")
    row = make_evaluator(setup, TINY)(jax.random.key(1), params, Hyperparams(prior={}))
    expected = set().union(*(KEYS[m] for m in applicable_measures(setup)))
    assert set(row) == expected
    assert all(np.isfinite(v) for v in row.values())
    np.testing.assert_allclose(row["elbo"], row["recon"] - row["kl"], rtol=1e-5)
    np.testing.assert_allclose(row["overlap_mi_bound"], np.log(32))
    assert row["overlap_mi"] <= row["overlap_mi_bound"] + 1e-5


def test_the_curves_measures_are_the_same_numbers_as_the_full_ones(dsprites):
    """factor_vae_dlib and dci (the training curves') give what factor_vae and dlib_suite give with the same key."""
    setup, params = dsprites
    hyper, key = Hyperparams(prior={}), jax.random.key(1)
    full = make_evaluator(setup, TINY, ("factor_vae", "mig", "dlib_suite"))(key, params, hyper)
    part = make_evaluator(setup, TINY, ("factor_vae_dlib", "mig", "dci"))(key, params, hyper)
    assert set(part) == KEYS["factor_vae_dlib"] | KEYS["mig"] | KEYS["dci"]
    assert part == {k: full[k] for k in part}


@pytest.mark.slow
def test_mig_sampled_over_the_whole_dsprites_grid(dsprites):
    """Chen et al.'s MIG from decompvae evaluate's suite: every one of the 737,280 images encoded, S = 50 samples."""
    setup, params = dsprites
    evaluate = make_evaluator(setup, TINY._replace(mig_sampled_samples=50), ("mig_sampled",))
    first = evaluate(jax.random.key(1), params, Hyperparams(prior={}))
    assert set(first) == {"mig_sampled"} and 0.0 <= first["mig_sampled"] <= 1.0
    assert evaluate(jax.random.key(1), params, Hyperparams(prior={})) == first  # keyed: the same again


def test_one_trace_for_many_members(dsprites):
    setup, params = dsprites
    traces = []

    def counting(*args):
        traces.append(1)
        return setup.eval_objective(*args)

    evaluate = make_evaluator(setup._replace(eval_objective=counting), TINY, ("terms",))
    for beta in (1.0, 2.0, 4.0):
        evaluate(jax.random.key(0), params, Hyperparams(beta=beta, prior={}))
    assert len(traces) == 1


def test_measures_that_do_not_apply_are_refused(dsprites):
    setup, _ = dsprites
    with pytest.raises(ValueError, match="clustering.*mixture prior"):
        make_evaluator(setup, TINY, ("clustering",))
    with pytest.raises(ValueError, match="not one of"):
        make_evaluator(setup, TINY, ("accuracy",))
    pin = build(load_config(None, ["data.name=pinwheel", "model.network=mlp", "model.latent_dim=2",
                                   "model.likelihood=gaussian", "model.prior=pinwheel"]))
    assert "clustering" in applicable_measures(pin) and "factor_vae" not in applicable_measures(pin)
    from decompvae.metrics.suite import GROUND_TRUTH, MEASURE_SPECS

    needing = [name for name, spec in MEASURE_SPECS.items() if GROUND_TRUTH in spec.needs]
    assert {"factor_vae", "mig", "dci", "dlib_suite", "irs", "mig_sampled"} <= set(needing)
    for name in needing:  # the registry's needs, checked before anything is compiled
        with pytest.raises(ValueError, match=f"measure {name!r} needs ground-truth"):
            make_evaluator(pin, TINY, (name,))


def test_experiment_tables_use_the_suites_names():
    """Every metric column of a committed metrics.csv is a key of the suite (or a hyperparameter / bookkeeping).

    ``udr`` compares a network with the other seeds of its group (:func:`decompvae.metrics.udr.udr`), so it is scored
    beside the per-network suite, not by it.
    """
    suite = set().union(*KEYS.values(), {"overlap_mi_se", "factor_vae_dlib_gaussianised",
                                         "factor_vae_paper_gaussianised", "udr"})
    own = {"member", "beta", "alpha", "seed", "diverged_at", "gamma", "df", "prior", "prior_variance_ratio",
           "prior.df", "prior.gamma", "method", "symbol", "value", "variant", "images_seen"}
    found = 0
    for path in sorted((Path(__file__).parents[1] / "experiments" / "results").glob("*-cpu/metrics.csv")):
        if path.parent.name.startswith("theory"):
            continue  # a computed curve, not a table of trained members
        with path.open() as f:
            columns = set(next(csv.reader(f)))
        assert columns - own <= suite, (path, sorted(columns - own - suite))
        found += 1
    assert found >= 4
    assert set(MEASURES) == set(KEYS)


def test_gaussianise_is_the_quantile_map_of_the_student_t():
    codes = np.array([[-50.0, -2.0, 0.0, 0.5, 3.0, 80.0]])
    mapped = gaussianise(codes, df=3.0)
    middle = stats.norm.ppf(stats.t.cdf(codes[0, 1:5], 3.0))
    np.testing.assert_allclose(mapped[0, 1:5], middle, rtol=1e-10)
    assert np.all(np.diff(mapped[0]) > 0)  # far tails keep their order
    np.testing.assert_allclose(gaussianise(codes * 2.0, df=3.0, scale=2.0), mapped)


@pytest.fixture(scope="module")
def hierarchy():
    config = load_config(None, ["data.name=hierarchical_toy", "data.eval_points=400", "model.network=mlp",
                                "model.hidden=[8]", "model.latent_dim=4", "model.likelihood=gaussian",
                                "model.prior=hierarchical", "model.prior_options.parents=2", "train.batch_size=8"])
    setup = build(config)
    params = setup.trainer.init(jax.random.key(0), Hyperparams(prior={}), 1e-3).params
    return setup, params


def test_block_mig_measure_scores_the_priors_blocks(hierarchy):
    setup, params = hierarchy
    assert "block_mig" in applicable_measures(setup) and "mig" not in applicable_measures(setup)
    row = make_evaluator(setup, TINY._replace(eval_points=400), ("block_mig",))(jax.random.key(1), params,
                                                                                Hyperparams(prior={}))
    assert set(row) == KEYS["block_mig"] and 0.0 <= row["block_mig"] <= 1.0
    assert -1.0 <= row["block_alignment"] <= 1.0


def test_block_alignment_is_the_diagonal_minus_the_rest():
    from decompvae.metrics.suite import _block_mig

    rng = np.random.default_rng(0)
    factors = rng.integers(0, 8, size=(5000, 4))
    codes = factors + 0.01 * rng.standard_normal(factors.shape)
    groups = ((0, 1), (2, 3))
    aligned = _block_mig(codes, factors, (2, 2), groups)
    swapped = _block_mig(codes[:, [2, 3, 0, 1]], factors, (2, 2), groups)
    assert aligned["block_mig"] > 0.9 and swapped["block_mig"] > 0.9  # the MIG does not care which block
    assert aligned["block_alignment"] > 0.9 and swapped["block_alignment"] < -0.9
    np.testing.assert_allclose(aligned["block_alignment"], -swapped["block_alignment"])


def test_block_mig_needs_groups_and_blocks(dsprites):
    setup, _ = dsprites
    with pytest.raises(ValueError, match="block_mig.*factor groups"):
        make_evaluator(setup, TINY, ("block_mig",), latent_blocks=(1, 2))
    iso_config = load_config(None, ["data.name=hierarchical_toy", "model.network=mlp", "model.hidden=[8]",
                                    "model.latent_dim=4", "model.likelihood=gaussian"])
    iso = build(iso_config)
    assert "block_mig" not in applicable_measures(iso)
    with pytest.raises(ValueError, match="latent blocks"):
        make_evaluator(iso, TINY, ("block_mig",))
    make_evaluator(iso, TINY, ("block_mig",), latent_blocks=(2, 2))  # given blocks: accepted
