"""Theory figure: the β-VAE objective under rotations of the latent space.

Theorem 2 (Mathieu et al., 2019): for p(z) = N(0, σ²I), an orthogonal R, the decoder
p(x | Rᵀz) and the encoder N(Rμ, R S Rᵀ), L_β is unchanged. For an
anisotropic Gaussian or a Student-t prior it is not. This experiment computes
L_β(θ) = mean_b [E_q log p(x|z) − β·KL(q(z|x) ‖ p(z))] for rotations R(θ) in
the plane of latent dimensions 0 and 1, with common random numbers (the
rotated encoder is ``distrax.Transformed(q, UnconstrainedAffine(R, 0))``, so
the same base noise gives the samples at every θ), in float64.

The encoder and decoder are fixed: data x = g(z*) + noise from an
axis-aligned ground truth z* (D = 2 factors with different spreads), a
nonlinear random decoder g, and the encoder N(z*, diag s²) that inverts it —
an "axis-aligned" solution. Rotating it keeps the fit to the data (the
decoder undoes the rotation), so only the prior terms can change.
"""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np

from decompvae import priors
from decompvae.objective import decomposition_terms
from decompvae.reproduce._common import Context, pyplot, write_csv

TITLE = "Theory: L_β under rotations of the latent space (Theorem 2)"

PROFILES = {
    "tiny": {"angles": 7, "points": 16, "samples": 8, "betas": (1.0, 4.0)},
    "cpu": {"angles": 91, "points": 256, "samples": 512, "betas": (1.0, 4.0)},
    "paper": {"angles": 181, "points": 1024, "samples": 2048, "betas": (1.0, 4.0)},
}

D = 2
X_DIM = 8
HIDDEN = 16
#: Spread of the ground-truth factors and the encoder's posterior std per axis.
FACTOR_SCALES = (1.0, 0.6)
POSTERIOR_STD = (0.25, 0.15)
NOISE = 0.3


def prior_table() -> dict[str, distrax.Distribution]:
    """The priors compared (D = 2): isotropic, anisotropic, Student-t."""
    return {
        "isotropic N(0, I)": priors.isotropic(D, scale=1.0),
        "anisotropic N(0, diag(1.6, 0.4))": priors.anisotropic(variances=jnp.array([1.6, 0.4])),
        "Student-t ν = 3": priors.student_t(D, df=3.0),
    }


def _problem(points: int):
    rng = np.random.default_rng(0)
    z_true = rng.normal(size=(points, D)) * np.asarray(FACTOR_SCALES)
    w1, w2 = rng.normal(size=(D, HIDDEN)), rng.normal(size=(HIDDEN, X_DIM)) / np.sqrt(HIDDEN)
    decode = lambda z: jnp.tanh(z @ jnp.asarray(w1)) @ jnp.asarray(w2)  # noqa: E731
    x = decode(jnp.asarray(z_true)) + NOISE * jnp.asarray(rng.normal(size=(points, X_DIM)))
    q = distrax.MultivariateNormalDiag(jnp.asarray(z_true), jnp.broadcast_to(jnp.asarray(POSTERIOR_STD), (points, D)))

    def log_likelihood_rotated(rotation):
        def log_lik(z):  # z [b, D] -> [b]: decoder p(x | Rᵀ z)
            mean = decode(z @ rotation)
            return jnp.sum(-0.5 * ((x - mean) / NOISE) ** 2 - jnp.log(NOISE) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)

        return log_lik

    return q, log_likelihood_rotated


def rotation(theta) -> jax.Array:
    """R(θ) in the plane of dimensions 0 and 1."""
    c, s = jnp.cos(theta), jnp.sin(theta)
    return jnp.array([[c, -s], [s, c]])


def objective_curve(key, prior, beta: float, thetas, *, points: int, samples: int) -> np.ndarray:
    """L_β(θ) per angle (mean over the points), common random numbers, float64."""
    q, log_lik_rot = _problem(points)

    def value(theta):
        r = rotation(theta)
        q_rot = distrax.Transformed(q, distrax.UnconstrainedAffine(r, jnp.zeros(D)))
        t = decomposition_terms(key, q_rot, log_lik_rot(r), prior, num_samples=samples, kl="mc")
        return jnp.mean(t.recon - beta * t.kl)

    return np.asarray(jax.jit(jax.vmap(value))(jnp.asarray(thetas)))


def run(ctx: Context, settings: dict) -> None:
    plt = pyplot()
    rows, curves = [], {}
    with jax.enable_x64(True):
        thetas = np.linspace(0.0, np.pi, settings["angles"])
        key = jax.random.key(0)
        for beta in settings["betas"]:
            for name, prior in prior_table().items():
                values = objective_curve(key, prior, beta, thetas, points=settings["points"], samples=settings["samples"])
                curves[(beta, name)] = values
                rows += [{"beta": beta, "prior": name, "theta": float(t), "objective": float(v),
                          "change": float(v - values[0])} for t, v in zip(thetas, values)]
    write_csv(ctx.results_dir / "theory.csv", rows)
    betas = settings["betas"]
    fig, axes = plt.subplots(1, len(betas), figsize=(5 * len(betas), 3.8), squeeze=False)
    for ax, beta in zip(axes[0], betas):
        for name in prior_table():
            v = curves[(beta, name)]
            ax.plot(np.degrees(thetas), v - v[0], label=name)
        ax.set(title=f"β = {beta:g}", xlabel="rotation angle θ (degrees)", ylabel="L_β(θ) − L_β(0)  [nats/point]")
        ax.axhline(0, color="k", lw=0.5)
        ax.legend(fontsize=8)
    fig.suptitle("β-VAE objective of an axis-aligned solution rotated by θ")
    fig.tight_layout()
    fig.savefig(ctx.results_dir / "theory.png", dpi=110)
    plt.close(fig)
    lines = [
        f"# {TITLE} — profile `{ctx.profile}`",
        "",
        f"Command: `decompvae reproduce theory --profile {ctx.profile}`. Settings: {settings['angles']} angles in "
        f"[0°, 180°], {settings['points']} data points, {settings['samples']} posterior samples per point "
        "(common random numbers), float64, D = 2, rotations in the (z₀, z₁) plane.",
        "",
        "An axis-aligned solution (encoder means = the true factors, decoder inverts them) is rotated by θ together "
        "with its decoder, so the reconstruction term is the same at every θ; only E KL(q(z|x) ‖ p(z)) can change.",
        "",
        "| β | prior | max over θ of abs(L_β(θ) − L_β(0)) | argmax_θ L_β (deg) | argmin_θ L_β (deg) |",
        "|---|---|---|---|---|",
    ]
    verdict = []
    for beta in betas:
        for name in prior_table():
            v = curves[(beta, name)]
            spread = float(np.max(np.abs(v - v[0])))
            lines.append(f"| {beta:g} | {name} | {spread:.3g} | {np.degrees(thetas[np.argmax(v)]):.0f} | {np.degrees(thetas[np.argmin(v)]):.0f} |")
            verdict.append((name, spread))
    iso = max(s for n, s in verdict if n.startswith("isotropic"))
    other = min(s for n, s in verdict if not n.startswith("isotropic"))
    reproduced = iso < 1e-8 and other > 1e-3
    lines += [
        "",
        "![theory](theory.png)",
        "",
        f"**Finding ({'reproduced' if reproduced else 'NOT reproduced'}):** with the isotropic prior L_β is constant "
        f"in θ to {iso:.1e} nats (rounding), as Theorem 2 says; the anisotropic and Student-t priors change it by at "
        f"least {other:.3g} nats per point (the table gives the best and worst angles; 0° is the axis-aligned "
        "solution; for the Student-t, 0°, 90° and 180° are equivalent — signed permutations of the axes — so its "
        "argmax among them is decided by rounding) — the prior, not the β term, is what can prefer one orientation of the latent space.",
    ]
    (ctx.results_dir / "summary.md").write_text("\n".join(lines) + "\n")
