"""The regularisers' earlier name, "divergence", still reads: config keys, keywords, attributes, exports and the
columns of run directories written before the rename, each with a DeprecationWarning and the same numbers."""

import csv
import json
import warnings

import jax
import numpy as np
import pytest

import decompvae as dv
from decompvae import outputs, regularisers
from decompvae.config import Config, current_form
from decompvae.objective import Hyperparams, make_objective
from decompvae.report import read_run

#: A pinwheel config with two regularisers, its traced numbers and a sweep over one of them, in today's keys.
TODAY = {
    "data": {"name": "pinwheel"},
    "model": {"network": "mlp", "latent_dim": 2, "likelihood": "gaussian",
              "regulariser": {"mmd": "mmd", "cap": "capacity"}, "regulariser_options": {"cap": {"num_steps": 10}},
              "regulariser_params": {"cap": {"c_max": 5.0}}},
    "train": {"alpha": {"mmd": 1.0, "cap": 2.0}},
    "sweep": {"regulariser_params": {"cap.c_max": [5.0, 7.0]}},
}
FORMER = {**TODAY,
          "model": {**{k: v for k, v in TODAY["model"].items() if not k.startswith("regulariser")},
                    "divergence": TODAY["model"]["regulariser"],
                    "divergence_options": TODAY["model"]["regulariser_options"],
                    "divergence_params": TODAY["model"]["regulariser_params"]},
          "sweep": {"divergence_params": TODAY["sweep"]["regulariser_params"]}}


def test_former_config_keys_read_as_todays_with_a_warning_naming_each():
    with pytest.warns(DeprecationWarning) as caught:
        former = Config.from_dict(FORMER)
    said = " ".join(str(w.message) for w in caught)
    for key in ("model.divergence ", "model.divergence_options", "model.divergence_params", "sweep.divergence_params"):
        assert key in said, key
    assert "use model.regulariser" in said and "use sweep.regulariser_params" in said
    assert former.to_dict() == Config.from_dict(TODAY).to_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert current_form(FORMER) == Config.from_dict(TODAY).to_dict()  # a stored fingerprint: silently


def test_a_former_key_beside_todays_is_refused_naming_both():
    both = {**TODAY, "model": {**TODAY["model"], "divergence": "mmd"}}
    with pytest.raises(ValueError, match="model.divergence is the former name of model.regulariser"):
        Config.from_dict(both)


def _objective(**regulariser):
    encoder, decoder = dv.make_networks("mlp", 2, data_shape=(2,), hidden=(8,))
    objective = make_objective(encoder, decoder, likelihood="gaussian", prior=dv.make_prior("isotropic", 2),
                               **regulariser)
    x = jax.random.normal(jax.random.key(0), (16, 2))
    params = {"encoder": encoder.init(jax.random.key(1), x), "decoder": decoder.init(jax.random.key(2), x)}
    return objective, params, x


def test_former_keywords_and_attributes_give_the_same_numbers():
    today, params, x = _objective(regulariser={"cap": "capacity"}, regulariser_options={"cap": {"num_steps": 10}})
    with pytest.warns(DeprecationWarning) as caught:
        former, _, _ = _objective(divergence={"cap": "capacity"}, divergence_options={"cap": {"num_steps": 10}})
    assert {str(w.message) for w in caught} == {"make_objective(divergence=…) is deprecated; use regulariser=…",
                                                "make_objective(divergence_options=…) is deprecated; use "
                                                "regulariser_options=…"}
    hyper = Hyperparams(alpha={"cap": 3.0}, regulariser_params={"cap": {"c_max": 4.0}}, step=5)
    with pytest.warns(DeprecationWarning, match="use regulariser_params"):
        former_hyper = Hyperparams(alpha={"cap": 3.0}, divergence_params={"cap": {"c_max": 4.0}}, step=5)
    assert former_hyper == hyper and type(former_hyper) is Hyperparams
    loss, terms = today(jax.random.key(3), params, hyper, x)
    former_loss, former_terms = former(jax.random.key(3), params, former_hyper, x)
    assert float(loss) == float(former_loss) and float(terms.regulariser["cap"]) > 0
    with pytest.warns(DeprecationWarning, match="ObjectiveTerms.divergence is deprecated"):
        assert former_terms.divergence is former_terms.regulariser
    with pytest.warns(DeprecationWarning, match="Hyperparams.divergence_params is deprecated"):
        assert hyper.divergence_params == {"cap": {"c_max": 4.0}}
    # Hyperparams stays a pytree whose leaves vmap: a tree map rebuilds it positionally.
    doubled = jax.tree.map(lambda v: 2 * v, hyper)
    assert type(doubled) is Hyperparams and doubled.regulariser_params == {"cap": {"c_max": 8.0}}


def test_a_former_keyword_beside_todays_or_an_unknown_one_is_refused():
    with pytest.raises(TypeError, match="give regulariser, not also its former name divergence"):
        _objective(regulariser="mmd", divergence="mmd")
    with pytest.raises(TypeError, match="unexpected keyword argument 'divergnce'"):
        _objective(divergnce="mmd")
    with pytest.raises(TypeError, match="give regulariser_params, not also"):
        Hyperparams(regulariser_params={}, divergence_params={})


def test_former_exports_warn_and_are_todays():
    with pytest.warns(DeprecationWarning, match="use decompvae.REGULARISERS"):
        assert dv.DIVERGENCES is dv.REGULARISERS
    with pytest.warns(DeprecationWarning, match="use decompvae.make_regulariser"):
        assert dv.make_divergence is dv.make_regulariser
    with pytest.warns(DeprecationWarning, match="use make_regulariser"):
        former = regularisers.make_divergence("mmd", kernel="rbf")
    y = jax.random.normal(jax.random.key(0), (32, 2))
    prior = dv.make_prior("isotropic", 2)()
    today = regularisers.make_regulariser("mmd", kernel="rbf")
    assert float(former(jax.random.key(1), y, None, prior)) == float(today(jax.random.key(1), y, None, prior))
    with pytest.raises(AttributeError, match="no attribute 'DIVERGENCE'"):
        dv.DIVERGENCE  # noqa: B018


def test_a_run_directory_with_former_columns_reads_under_todays(tmp_path):
    """log.jsonl, summary.csv, members.csv and estimates.json as releases before the rename wrote them."""
    (tmp_path / "config.json").write_text(json.dumps(FORMER))
    rows = [{"step": 10, "member": 0, "loss": 1.0, "recon": -1.0, "kl": 0.5, "divergence.mmd": 0.25,
             "divergence.cap": 0.5, "diverged_at": -1}]
    (tmp_path / "log.jsonl").write_text(outputs.jsonl(rows))
    (tmp_path / "estimates.json").write_text(json.dumps({"divergence.mmd": "a note"}))
    for name, row in (("summary", {"member": 0, "eval_loss": 1.0, "eval_divergence.mmd": 0.3, "diverged_at": -1}),
                      ("members", {"member": 0, "beta": 1.0, "alpha.mmd": 1.0, "alpha.cap": 2.0,
                                   "divergence_params.cap.c_max": 7.0, "learning_rate": 5e-4, "seed": 0})):
        with open(tmp_path / f"{name}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
            writer.writerow(row)
    data = read_run(tmp_path)
    assert data.log[0]["regulariser.mmd"] == 0.25 and "divergence.mmd" not in data.log[0]
    assert data.log[0]["diverged_at"] == -1  # not a column of the regularisers
    assert data.summary[0]["eval_regulariser.mmd"] == 0.3
    assert data.members[0]["regulariser_params.cap.c_max"] == 7.0
    assert data.estimates == {"regulariser.mmd": "a note"}
    member = dv.sweep.Member.from_flat(data.members[0] | {"divergence_params.cap.c_max": 7.0})
    assert member.regulariser_params == {"cap": {"c_max": 7.0}}
    assert np.isclose(member.alpha["cap"], 2.0)
