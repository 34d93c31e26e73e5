"""What logged regulariser values estimate: β-TCVAE's minibatch-weighted terms carry a constant, and say so."""

import math

import pytest

from decompvae.build import build, estimate_notes
from decompvae.config import Config
from decompvae.regularisers import estimate_note

DSPRITES_N, BATCH = 737_280, 64


def test_mws_total_correlation_names_its_offset():
    note = estimate_note("total_correlation", {"dataset_size": DSPRITES_N}, 10, BATCH)
    offset = 9 * math.log(DSPRITES_N * BATCH)  # (D − 1)·log(N·B): 159.0 nats, the figure
    assert f"{offset:+.1f} nats" in note
    assert "+9·log(N·B)" in note and "N = 737,280" in note and "minibatch-weighted" in note
    assert round(offset, 1) == 159.0


@pytest.mark.parametrize("kind, multiple", [("mutual_information", "+1"), ("dimensionwise_kl", "-10")])
def test_the_other_mws_terms_name_theirs(kind, multiple):
    note = estimate_note(kind, {"dataset_size": DSPRITES_N}, 10, BATCH)
    assert f"{multiple}·log(N·B) = {int(multiple) * math.log(DSPRITES_N * BATCH):+.1f} nats" in note


def test_stratified_minibatch_mixture_and_other_divergences():
    assert "minibatch-stratified" in estimate_note("total_correlation", {"dataset_size": 100, "sampling": "mss"},
                                                   10, BATCH)
    assert estimate_note("total_correlation", {}, 10, BATCH) is None  # the batch's own mixture: no N
    assert estimate_note("mmd", {"kernel": "imq"}, 10, BATCH) is None


def test_a_beta_tcvae_run_on_dsprites_gets_the_note_for_its_column():
    config = Config.from_dict({"data": {"name": "dsprites"}, "model": {
        "regulariser": {"total_correlation": "total_correlation"},
        "regulariser_options": {"total_correlation": {"dataset_size": 0}}}})
    data = build(config).data
    notes = estimate_notes(config, data)
    assert list(notes) == ["regulariser.total_correlation"] and "+159.0 nats" in notes["regulariser.total_correlation"]
    assert estimate_notes(Config.from_dict({"data": {"name": "dsprites"}}), data) == {}
