"""The field's disentangling methods as settings of the one objective.

Every method below minimises

    loss = mean_b[ −recon_b + β·KL_b ] + Σ_k α_k·D_k

for some β, some batch-level regularisers D_k (kinds of
:func:`decompvae.regularisers.make_regulariser`) and their weights α_k (traced,
so one compiled program sweeps them). :data:`METHODS` is the registry that
says which setting reproduces which paper (with disentanglement_lib's
``unsupervised_study_v1`` grids); the regularisers that are not divergences
between q(z) and p(z) — DIP-VAE's covariance penalties and AnnealedVAE's
capacity — live in :mod:`decompvae.penalties`, below the objective.

References: Higgins et al. (2017), β-VAE; Burgess et al. (2018),
"Understanding disentangling in β-VAE", Eq. 8 (AnnealedVAE); Kim & Mnih
(2018), "Disentangling by Factorising", Eq. 2 (FactorVAE,
:mod:`decompvae.discriminator`); Kumar et al. (2018), "Variational Inference
of Disentangled Latent Concepts from Unlabeled Observations", Eqs. 6–7
(DIP-VAE); Chen et al. (2018), "Isolating Sources of Disentanglement in
VAEs", Eqs. 2 and 4 (β-TCVAE); Zhao et al. (2019), InfoVAE; Tolstikhin et al.
(2018), WAE; Locatello et al. (2019), "Challenging Common Assumptions…"
(disentanglement_lib, ``unsupervised_study_v1``).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Sequence

__all__ = ["METHODS", "Method"]


class Method(NamedTuple):
    """A published method as a setting of the objective.

    Attributes:
      reference: the paper (and equation).
      formula: the paper's loss, then ours, in one line each.
      regulariser: ``{name: kind}``, the dict form of ``make_objective(regulariser=…)`` (``{}``: none).
      regulariser_options: ``{name: static options}``; a value None must be filled in from
        the run (``dataset_size`` = N, ``latent_dim`` = D).
      beta: β of our objective.
      alpha: ``{name: α_k}`` (defaults; the grid overrides the swept ones).
      regulariser_params: ``{name: {param: value}}``, traced defaults (``Hyperparams.regulariser_params``).
      grid: disentanglement_lib ``unsupervised_study_v1``'s values as keyword arguments of
        :class:`decompvae.sweep.Grid` (seeds and learning rates apart).
      varied: the published symbol the grid varies and its values, e.g. ``("β", (1, 2, 4, 6, 8, 16))``.
      prior: the prior (a :data:`decompvae.priors.PRIORS` name).
      prior_init: where the prior's initialisable parameter comes from (``model.prior_init``: ``"pca"``), or None.
      notes: how the paper's symbols map to ours.
      at: ``at(values) -> grid``: keyword arguments of :class:`decompvae.sweep.Grid` that set the varied
        symbol to each of ``values`` (``at(varied[1])`` gives ``grid``'s members on the axes it sets).
    """

    reference: str
    formula: str
    regulariser: dict
    regulariser_options: dict
    beta: float
    alpha: dict
    regulariser_params: dict
    grid: dict
    varied: tuple[str, tuple]
    prior: str = "isotropic"
    prior_init: str | None = None
    notes: str = ""
    at: Callable[[Sequence[float]], dict] | None = None


_LAMBDA_OD = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
_DIP = {"dip_offdiagonal": "dip_offdiagonal", "dip_diagonal": "dip_diagonal"}


def _dip_grid(factor: float, values: Sequence[float] = _LAMBDA_OD) -> dict:
    return {"alpha": [{"dip_offdiagonal": float(lam), "dip_diagonal": factor * lam} for lam in values]}


def _beta_at(values: Sequence[float]) -> dict:
    return {"beta": [float(v) for v in values]}


def _alpha_at(name: str, offset: float = 0.0) -> Callable[[Sequence[float]], dict]:
    """The grid that sets ``alpha[name]`` = value + ``offset`` (e.g. β-TCVAE's α_tc = β − 1)."""
    return lambda values: {"alpha": {name: [float(v) + offset for v in values]}}


#: The methods by name (README table, ``configs/methods/<name>.toml``).
METHODS: dict[str, Method] = {
    "beta_vae": Method(
        reference="Higgins et al. (2017), β-VAE, Eq. 4",
        formula="−E log p(x|z) + β·KL(q(z|x) ‖ p(z));  ours: β, no D",
        regulariser={}, regulariser_options={}, beta=1.0, alpha={}, regulariser_params={},
        grid={"beta": [1.0, 2.0, 4.0, 6.0, 8.0, 16.0]},
        varied=("β", (1, 2, 4, 6, 8, 16)), at=_beta_at,
    ),
    "annealed_vae": Method(
        reference="Burgess et al. (2018), Understanding disentangling in β-VAE, Eq. 8",
        formula="−E log p(x|z) + γ·|KL(q(z|x) ‖ p(z)) − C|, C = C_max·min(1, t/T);  "
                "ours: β = 0, α_capacity = γ",
        regulariser={"capacity": "capacity"}, regulariser_options={"capacity": {"num_steps": 100_000}},
        beta=0.0, alpha={"capacity": 1000.0}, regulariser_params={"capacity": {"c_max": 25.0}},
        grid={"beta": [0.0], "alpha": {"capacity": [1000.0]},
              "regulariser_params": {"capacity.c_max": [5.0, 10.0, 25.0, 50.0, 75.0, 100.0]}},
        varied=("C_max", (5, 10, 25, 50, 75, 100)),
        at=lambda values: {"regulariser_params": {"capacity.c_max": [float(v) for v in values]}},
        notes="γ = 1000 and T = 100,000 steps fixed (unsupervised_study_v1); C_max traced, the step from the trainer",
    ),
    "factor_vae": Method(
        reference="Kim & Mnih (2018), Disentangling by Factorising, Eq. 2",
        formula="−E log p(x|z) + KL(q(z|x) ‖ p(z)) + γ·E_q(z)[log D(z)/(1 − D(z))];  "
                "ours: β = 1, α_factor_vae = γ",
        regulariser={"factor_vae": "factor_vae"},
        regulariser_options={"factor_vae": {"latent_dim": None}},
        beta=1.0, alpha={"factor_vae": 10.0}, regulariser_params={},
        grid={"alpha": {"factor_vae": [10.0, 20.0, 30.0, 40.0, 50.0, 100.0]}},
        varied=("γ", (10, 20, 30, 40, 50, 100)), at=_alpha_at("factor_vae"),
        notes="discriminator MLP 6×1000, leaky ReLU 0.2, Adam(1e-4, β₁ 0.5, β₂ 0.9), trained in the same step",
    ),
    "dip_vae_i": Method(
        reference="Kumar et al. (2018), DIP-VAE, Eq. 6",
        formula="−E log p(x|z) + KL + λ_od·Σ_{i≠j} C_ij² + λ_d·Σ_i (C_ii − 1)², C = Cov[μ(x)];  "
                "ours: β = 1, α_dip_offdiagonal = λ_od, α_dip_diagonal = λ_d",
        regulariser=dict(_DIP), regulariser_options={k: {"variant": "i"} for k in _DIP},
        beta=1.0, alpha={"dip_offdiagonal": 1.0, "dip_diagonal": 10.0}, regulariser_params={},
        grid=_dip_grid(10.0), varied=("λ_od", (1, 2, 5, 10, 20, 50)),
        at=functools.partial(_dip_grid, 10.0),
        notes="λ_d = 10·λ_od (zipped pairs, one grid axis)",
    ),
    "dip_vae_ii": Method(
        reference="Kumar et al. (2018), DIP-VAE, Eq. 7",
        formula="as DIP-VAE-I with C = E[Σ(x)] + Cov[μ(x)];  "
                "ours: β = 1, α_dip_offdiagonal = λ_od, α_dip_diagonal = λ_d",
        regulariser=dict(_DIP), regulariser_options={k: {"variant": "ii"} for k in _DIP},
        beta=1.0, alpha={"dip_offdiagonal": 1.0, "dip_diagonal": 1.0}, regulariser_params={},
        grid=_dip_grid(1.0), varied=("λ_od", (1, 2, 5, 10, 20, 50)),
        at=functools.partial(_dip_grid, 1.0),
        notes="λ_d = λ_od (zipped pairs, one grid axis)",
    ),
    "beta_tcvae": Method(
        reference="Chen et al. (2018), Isolating Sources of Disentanglement in VAEs, Eq. 4 (α = γ = 1)",
        formula="−E log p(x|z) + KL(q(z|x) ‖ p(z)) + (β − 1)·TC(q(z));  "
                "ours: β = 1, α_total_correlation = β − 1",
        regulariser={"total_correlation": "total_correlation"},
        regulariser_options={"total_correlation": {"dataset_size": None}},
        beta=1.0, alpha={"total_correlation": 5.0}, regulariser_params={},
        grid={"alpha": {"total_correlation": [0.0, 1.0, 3.0, 5.0, 7.0, 9.0]}},
        varied=("β", (1, 2, 4, 6, 8, 10)), at=_alpha_at("total_correlation", -1.0),
        notes="disentanglement_lib's form (closed-form KL, MWS TC); α_tc = β − 1",
    ),
    "beta_tcvae_decomposed": Method(
        reference="Chen et al. (2018), Eq. 4 with minibatch-stratified sampling",
        formula="−E log p(x|z) + α·I_q(x; z) + β·TC(q(z)) + γ·Σ_d KL(q(z_d) ‖ p(z_d));  "
                "ours: β = 0, α_mutual_information = α, α_total_correlation = β, α_dimensionwise_kl = γ",
        regulariser={k: k for k in ("mutual_information", "total_correlation", "dimensionwise_kl")},
        regulariser_options={k: {"dataset_size": None, "sampling": "mss"}
                            for k in ("mutual_information", "total_correlation", "dimensionwise_kl")},
        beta=0.0, alpha={"mutual_information": 1.0, "total_correlation": 6.0, "dimensionwise_kl": 1.0},
        regulariser_params={},
        grid={"beta": [0.0], "alpha": {"mutual_information": [1.0], "dimensionwise_kl": [1.0],
                                       "total_correlation": [1.0, 2.0, 4.0, 6.0, 8.0, 10.0]}},
        varied=("β", (1, 2, 4, 6, 8, 10)), at=_alpha_at("total_correlation"),
        notes="the three terms estimated and weighted separately; their sum is the Monte-Carlo KL",
    ),
    "info_vae": Method(
        reference="Zhao et al. (2019), InfoVAE, Eq. 6 with D = MMD (α = 0, λ = 1000 on MNIST)",
        formula="−E log p(x|z) + (1 − α)·KL(q(z|x) ‖ p(z)) + (α + λ − 1)·MMD(q(z), p(z));  "
                "ours: β = 1 − α, α_info_vae = α + λ − 1",
        regulariser={"info_vae": "info_vae"}, regulariser_options={"info_vae": {"kernel": "rbf"}},
        beta=1.0, alpha={"info_vae": 999.0}, regulariser_params={},
        grid={"alpha": {"info_vae": [999.0]}}, varied=("λ", (1000,)),
        at=_alpha_at("info_vae", -1.0),
        notes="Gaussian kernel exp(−‖a − b‖²/D²) as released; "
              "not in unsupervised_study_v1 (the published point only)",
    ),
    "wae_mmd": Method(
        reference="Tolstikhin et al. (2018), Wasserstein Auto-Encoders, Algorithm 2 (WAE-MMD)",
        formula="c(x, G(z)) + λ·MMD_k(q(z), p(z)), IMQ k;  ours: β = 0, α_info_vae = λ, kernel imq",
        regulariser={"info_vae": "info_vae"}, regulariser_options={"info_vae": {"kernel": "imq"}},
        beta=0.0, alpha={"info_vae": 10.0}, regulariser_params={},
        grid={"beta": [0.0], "alpha": {"info_vae": [10.0]}}, varied=("λ", (10,)), at=_alpha_at("info_vae"),
        notes="IMQ C = 2·D·s, s ∈ {0.1, …, 10}; λ = 10 (MNIST), 100 (CelebA); a stochastic encoder here",
    ),
    "decomposition": Method(
        reference="Mathieu et al. (2019), Disentangling Disentanglement in VAEs, Eq. 2",
        formula="−E log p(x|z) + β·KL(q(z|x) ‖ p(z)) + α·D(q(z), p(z));  ours: as written",
        regulariser={}, regulariser_options={}, beta=1.0, alpha={}, regulariser_params={},
        grid={"beta": [1.0, 2.0, 4.0, 6.0, 8.0, 16.0]}, varied=("β", (1, 2, 4, 6, 8, 16)), at=_beta_at,
        prior="anisotropic_logits", prior_init="pca",
        notes="the paper's rotation-breaking prior on the β-VAE grid; add D_k to compose (e.g. mmd for sparsity)",
    ),
}
