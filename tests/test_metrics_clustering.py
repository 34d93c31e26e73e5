"""Clustering scores for mixture priors: best-matching accuracy, NMI, MAP assignment."""

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from decompvae.metrics import assign_to_components, clustering_scores
from decompvae.priors import mixture, pinwheel

EXACT = 1e-12


def test_perfect_clustering_under_relabelling():
    labels = np.repeat(np.arange(4), 25)
    assignments = np.array([2, 0, 3, 1])[labels]
    assert clustering_scores(assignments, labels) == {"accuracy": 1.0, "nmi": pytest.approx(1.0, abs=EXACT)}


def test_hand_computed_accuracy_and_nmi_oracle():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assignments = np.array([1, 1, 0, 2, 2, 2])
    # Best matching: cluster 1 → label 0 (2 points), cluster 2 → label 2 (2), cluster 0 → label 1 (1).
    scores = clustering_scores(assignments, labels)
    assert scores["accuracy"] == pytest.approx(5 / 6, abs=EXACT)
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(labels, assignments), abs=EXACT)
    # More clusters than labels: unmatched clusters count as errors.
    assert clustering_scores(np.array([0, 1, 2, 3, 4, 5]), labels)["accuracy"] == pytest.approx(3 / 6, abs=EXACT)
    # Fewer clusters than labels.
    assert clustering_scores(np.zeros(6, dtype=int), labels)["accuracy"] == pytest.approx(2 / 6, abs=EXACT)


def test_assign_to_components_of_the_pinwheel_prior():
    prior = pinwheel()
    means = np.array([[0.0, -1.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300)
    codes = means[labels] + 0.05 * rng.normal(size=(300, 2))
    np.testing.assert_array_equal(assign_to_components(prior, codes), labels)
    np.testing.assert_array_equal(assign_to_components(prior, codes, batch_size=7), labels)
    scores = clustering_scores(codes[:, ::-1] * [1.0, -1.0], labels, prior=prior)  # a rotation: arms relabelled
    assert scores == {"accuracy": 1.0, "nmi": pytest.approx(1.0, abs=EXACT)}


def test_mixture_weights_break_ties():
    # (0, 0) is equidistant from both equal-variance components: the heavier one wins.
    prior = mixture(means=jnp.array([[0.0, -1.0], [0.0, 1.0]]), variances=0.5, weights=jnp.array([0.3, 0.7]))
    assert assign_to_components(prior, np.zeros((1, 2)))[0] == 1
    prior = mixture(means=jnp.array([[0.0, -1.0], [0.0, 1.0]]), variances=0.5, weights=jnp.array([0.7, 0.3]))
    assert assign_to_components(prior, np.zeros((1, 2)))[0] == 0


def test_bad_inputs():
    labels = np.arange(4)
    with pytest.raises(ValueError, match="prior"):
        clustering_scores(np.zeros((4, 2)), labels)
    with pytest.raises(ValueError, match="labels"):
        clustering_scores(np.arange(4), labels[:3])
    with pytest.raises(ValueError, match="codes_or_assignments"):
        clustering_scores(np.zeros(4), labels)
    with pytest.raises(ValueError, match="codes"):
        assign_to_components(pinwheel(), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="prior"):
        assign_to_components(object(), np.zeros((4, 2)))
