"""Metrics of a learned representation (docs/guide.md#metrics).

Array-level scores take codes ``[N, D]`` (e.g. encoder means) and integer
factor classes ``[N, K]``; sampling-based scores take a PRNG key, a
representation function and a ground-truth data set. Definitions and defaults
follow disentanglement_lib (Locatello et al., ICML 2019) unless a docstring
says otherwise; every score is a Python float or a dict of floats, except
UDR (``udr``), which ranks several models and gives one score per model. The
block-level scores of ``subspace`` (``block_mig``, ``group_dci``) compare
latent blocks with groups of factors and also return their block × group
matrices.
"""

from decompvae.metrics._common import histogram_discretize, mutual_information_matrix
from decompvae.metrics.clustering import assign_to_components, clustering_scores, component_log_posterior
from decompvae.metrics.disentanglement import (
    dci,
    dci_completeness,
    dci_disentanglement,
    explicitness,
    gbt_importance,
    mig,
    modularity,
    modularity_from_mutual_info,
    sap,
    sap_from_score_matrix,
    sap_score_matrix,
)
from decompvae.metrics.irs import irs
from decompvae.metrics.sampled import (DlibProtocol, PaperProtocol, beta_vae_score, factor_vae_score,
                                       sample_codes_and_factors)
from decompvae.metrics.sampled_mig import mig_sampled
from decompvae.metrics.sparsity import hoyer_sparsity
from decompvae.metrics.udr import udr, udr_of_members
from decompvae.metrics.unsupervised import unsupervised_scores
from decompvae.metrics.subspace import (
    bins_per_dim,
    block_cells,
    block_mig,
    block_mutual_information,
    group_dci,
    group_importance,
)

from decompvae.metrics.overlap import OverlapInfo, aggregate_log_prob, dataset_overlap, mixture_log_prob, overlap
from decompvae.objective import iwae_bound, make_iwae

__all__ = [
    "DlibProtocol",
    "OverlapInfo",
    "PaperProtocol",
    "aggregate_log_prob",
    "assign_to_components",
    "beta_vae_score",
    "bins_per_dim",
    "block_cells",
    "block_mig",
    "block_mutual_information",
    "clustering_scores",
    "component_log_posterior",
    "dci",
    "dci_completeness",
    "dci_disentanglement",
    "dataset_overlap",
    "explicitness",
    "factor_vae_score",
    "gbt_importance",
    "group_dci",
    "group_importance",
    "histogram_discretize",
    "hoyer_sparsity",
    "irs",
    "iwae_bound",
    "make_iwae",
    "mig",
    "mig_sampled",
    "mixture_log_prob",
    "modularity",
    "modularity_from_mutual_info",
    "mutual_information_matrix",
    "overlap",
    "sample_codes_and_factors",
    "sap",
    "sap_from_score_matrix",
    "sap_score_matrix",
    "udr",
    "udr_of_members",
    "unsupervised_scores",
]
