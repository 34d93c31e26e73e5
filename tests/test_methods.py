"""The field's methods as settings of the one objective: DIP-VAE's penalties against
NumPy, AnnealedVAE's schedule, and every METHODS entry building and evaluating."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decompvae.regularisers import KINDS, make_regulariser
from _tiny_networks import B, D, X_DIM, Decoder, Encoder

from decompvae import divergences as dv
from decompvae import methods, penalties, priors
from decompvae.objective import make_objective
from decompvae.regularisers import SINGLE, adversaries, make_regularisers
from decompvae.sweep import Grid, Member, stack_members



def _posterior(rng, b=B, d=D):
    loc, scale = rng.normal(size=(b, d)), rng.uniform(0.3, 1.5, (b, d))
    return distrax.MultivariateNormalDiag(jnp.asarray(loc), jnp.asarray(scale))


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("variant", ["i", "ii"])
def test_dip_penalties_against_numpy_covariance(variant):
    rng = np.random.default_rng(0)
    post = _posterior(rng)
    loc, var = np.asarray(post.loc), np.asarray(post.scale_diag) ** 2
    cov = np.cov(loc, rowvar=False, bias=True)  # Cov_{p(x)}[μ(x)], ÷B
    if variant == "ii":
        cov = cov + np.diag(var.mean(axis=0))  # + E[Σ(x)]
    off = sum(cov[i, j] ** 2 for i in range(D) for j in range(D) if i != j)
    diag = sum((cov[i, i] - 1.0) ** 2 for i in range(D))
    for kind, want in [("dip_offdiagonal", off), ("dip_diagonal", diag)]:
        div = make_regulariser(kind, variant=variant)
        got = div(jax.random.key(0), None, post, None)
        np.testing.assert_allclose(got, want, rtol=1e-12)
        np.testing.assert_allclose(jax.jit(div)(jax.random.key(0), jnp.zeros((B, D)), post, None), want, rtol=1e-12)


def test_dip_penalties_vanish_for_a_whitened_aggregate():
    # Means with identity covariance: DIP-VAE-I's penalties are 0; DIP-VAE-II then sees the added E[Σ].
    rng = np.random.default_rng(1)
    m = rng.normal(size=(64, 2))
    m = (m - m.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(m, rowvar=False, bias=True))).T
    post = distrax.MultivariateNormalDiag(jnp.asarray(m, jnp.float32), 0.5 * jnp.ones((64, 2)))
    for kind in ("dip_offdiagonal", "dip_diagonal"):
        assert abs(float(make_regulariser(kind, variant="i")(None, None, post, None))) < 1e-5
    diagonal_ii = make_regulariser("dip_diagonal", variant="ii")(None, None, post, None)
    np.testing.assert_allclose(diagonal_ii, 2 * 0.25**2, rtol=1e-4)  # (1 + 0.25 − 1)² per dimension


def test_capacity_schedule_is_linear_then_flat():
    steps = jnp.array([0, 250, 500, 1000, 5000])
    np.testing.assert_allclose(penalties.capacity_schedule(steps, 25.0, 1000), [0.0, 6.25, 12.5, 25.0, 25.0], rtol=1e-6)
    # Traced C_max: vmap over it equals a loop; jit equals eager.
    c_max = jnp.array([5.0, 10.0, 100.0])
    vmapped = jax.vmap(penalties.capacity_schedule, in_axes=(None, 0, None))(jnp.int32(300), c_max, 1000)
    np.testing.assert_allclose(vmapped, [c * 0.3 for c in (5.0, 10.0, 100.0)], rtol=1e-6)
    jitted = jax.jit(penalties.capacity_schedule, static_argnums=2)
    np.testing.assert_allclose(jitted(jnp.int32(300), 10.0, 1000), 3.0, rtol=1e-6)


def test_capacity_regulariser_reads_step_and_c_max():
    rng = np.random.default_rng(2)
    post = _posterior(rng)
    kl = jnp.asarray(rng.uniform(1.0, 30.0, size=B))
    reg = make_regulariser("capacity", num_steps=100)
    assert isinstance(reg, dv.Regulariser) and reg.traced == ("c_max",)
    inputs = dv.RegulariserInputs(y=post.loc, posterior=post, prior=None, kl=kl)
    mean_kl = float(jnp.mean(kl))
    for step, c_max, capacity in [(0, 25.0, 0.0), (40, 25.0, 10.0), (400, 50.0, 50.0), (None, 25.0, 25.0)]:
        got = reg.estimate(None, inputs._replace(step=step, params={"c_max": c_max}))
        np.testing.assert_allclose(got, abs(mean_kl - capacity), rtol=1e-6)
    np.testing.assert_allclose(reg.estimate(None, inputs), abs(mean_kl - 25.0), rtol=1e-6)  # the static default


def _fill_options(method, name, options):
    options = dict(options)
    for key, value in options.items():
        if value is None:
            options[key] = {"dataset_size": 1000, "latent_dim": D}[key]
    if method.regulariser.get(name) == "factor_vae":
        options["hidden"] = (8, 8)  # a small discriminator for the test
    return options


PUBLISHED_GRIDS = {
    "beta_vae": ("β", (1, 2, 4, 6, 8, 16)),
    "annealed_vae": ("C_max", (5, 10, 25, 50, 75, 100)),
    "factor_vae": ("γ", (10, 20, 30, 40, 50, 100)),
    "dip_vae_i": ("λ_od", (1, 2, 5, 10, 20, 50)),
    "dip_vae_ii": ("λ_od", (1, 2, 5, 10, 20, 50)),
    "beta_tcvae": ("β", (1, 2, 4, 6, 8, 10)),
}


def test_methods_registry_pins_unsupervised_study_v1():
    for name, varied in PUBLISHED_GRIDS.items():
        assert methods.METHODS[name].varied == varied, name
    grid = lambda name: Grid(**methods.METHODS[name].grid)  # noqa: E731
    assert [m.beta for m in grid("beta_vae").members()] == [1, 2, 4, 6, 8, 16]
    annealed = grid("annealed_vae").members()
    assert [m.regulariser_params["capacity"]["c_max"] for m in annealed] == [5, 10, 25, 50, 75, 100]
    assert {m.alpha["capacity"] for m in annealed} == {1000.0} and {m.beta for m in annealed} == {0.0}
    assert methods.METHODS["annealed_vae"].regulariser_options["capacity"]["num_steps"] == 100_000
    assert [m.alpha["factor_vae"] for m in grid("factor_vae").members()] == [10, 20, 30, 40, 50, 100]
    for name, factor in [("dip_vae_i", 10.0), ("dip_vae_ii", 1.0)]:
        members = grid(name).members()
        assert [m.alpha["dip_offdiagonal"] for m in members] == [1, 2, 5, 10, 20, 50]
        assert [m.alpha["dip_diagonal"] for m in members] == [factor * v for v in (1, 2, 5, 10, 20, 50)]
    # disentanglement_lib's β-TCVAE: KL + (β − 1)·TC, i.e. our β = 1 and α_tc = β − 1.
    assert [m.alpha["total_correlation"] + 1 for m in grid("beta_tcvae").members()] == [1, 2, 4, 6, 8, 10]


@pytest.mark.parametrize("name", sorted(methods.METHODS))
def test_every_method_builds_and_evaluates(name):
    method = methods.METHODS[name]
    assert method.formula and method.reference
    assert set(method.regulariser.values()) <= set(KINDS)
    assert set(method.alpha) == set(method.regulariser)
    options = {n: _fill_options(method, n, o) for n, o in method.regulariser_options.items()}
    regs = make_regularisers(method.regulariser, options)
    x = (jax.random.uniform(jax.random.key(1), (B, X_DIM)) > 0.5).astype(jnp.float32)
    enc, dec = Encoder(), Decoder()
    params = {"encoder": enc.init(jax.random.key(2), x), "decoder": dec.init(jax.random.key(3), jnp.zeros((1, D)))}
    adv = adversaries(regs)
    if adv:
        params["adversary"] = {n: a.init(jax.random.key(4)) for n, a in adv.items()}
    prior_fn = priors.make_prior("isotropic" if method.prior_init else method.prior, D)  # ℓ from data: none here
    objective = make_objective(enc, dec, likelihood="bernoulli", prior=prior_fn, regulariser=regs)
    grid = Grid(**method.grid)
    hyper, _, _ = stack_members(grid.members())
    hyper = hyper._replace(step=jnp.zeros((len(grid),), jnp.int32))
    loss, terms = jax.jit(jax.vmap(objective, in_axes=(None, None, 0, None)))(jax.random.key(0), params, hyper, x)
    assert loss.shape == (len(grid),) and np.all(np.isfinite(loss))
    if method.regulariser:
        assert set(terms.regulariser) == set(method.regulariser)
    else:  # no regulariser: D = 0
        np.testing.assert_array_equal(terms.regulariser[SINGLE], 0.0)
    assert (terms.adversary_loss is not None) == bool(adv)


def test_grid_alpha_forms_and_traced_parameters():
    # {name: values}: one axis per name; a list of {name: value} points: one axis; members typed, flat on demand.
    per_name = Grid(alpha={"mmd": [0.0, 1.0], "tc": [5.0]}, seed=[0, 1]).members()
    assert len(per_name) == 4 and per_name[1] == Member(alpha={"mmd": 0.0, "tc": 5.0}, seed=1)
    assert per_name[1].flat() == {"beta": 1.0, "alpha.mmd": 0.0, "alpha.tc": 5.0, "learning_rate": 5e-4, "seed": 1}
    points = Grid(alpha=[{"od": 1.0, "d": 10.0}, {"od": 2.0, "d": 20.0}], seed=[0, 1, 2]).members()
    assert len(points) == 6 and [(m.alpha["od"], m.alpha["d"]) for m in points[::3]] == [(1.0, 10.0), (2.0, 20.0)]
    hyper, _, _ = stack_members(points)
    np.testing.assert_array_equal(hyper.alpha["d"], [10, 10, 10, 20, 20, 20])
    annealed = Grid(beta=[0.0], alpha={"capacity": [1000.0]}, regulariser_params={"capacity.c_max": [5.0, 25.0]})
    hyper, _, _ = stack_members(annealed.members())
    np.testing.assert_array_equal(hyper.regulariser_params["capacity"]["c_max"], [5.0, 25.0])
    single, _, _ = stack_members(Grid(alpha=[1.0], regulariser_params={"c_max": [3.0]}).members())
    assert set(single.regulariser_params[SINGLE]) == {"c_max"} and single.alpha[SINGLE].shape == (1,)
    assert Member(regulariser_params={"c_max": 3.0}) == Member.from_flat({"regulariser_params.c_max": 3.0})
    assert Member(regulariser_params={"c_max": 3.0}).flat()["regulariser_params.c_max"] == 3.0
    plain, _, _ = stack_members(Grid(beta=[1.0, 2.0]).members())
    assert set(plain.alpha) == {SINGLE} and plain.regulariser_params is None  # the scalar form: α named "divergence"
    scalar = Grid(alpha=[3.0]).members()[0]  # a number is the scalar form's α, one form inside, "alpha" in members.csv
    assert scalar == Member(alpha=3.0) == Member(alpha={SINGLE: 3.0}) == Member.from_flat(scalar.flat())
    assert scalar.flat()["alpha"] == 3.0 and "alpha.divergence" not in scalar.flat()
    with pytest.raises(ValueError, match="different regularisers"):
        stack_members([Member(alpha=1.0), Member(alpha={"mmd": 1.0})])
    from decompvae.sweep import member_label

    assert member_label(annealed.members()[1]) == "beta=0 alpha.capacity=1000 capacity.c_max=25 lr=0.0005 seed=0"
    assert member_label(Member(alpha={"a": 2.0}, seed=3)) == "beta=1 alpha.a=2 lr=0.0005 seed=3"
    with pytest.raises(ValueError, match="alpha values"):
        Grid(alpha={"mmd": [-1.0]})
    with pytest.raises(ValueError, match="same regularisers"):
        Grid(alpha=[{"a": 1.0}, {"b": 1.0}])
    with pytest.raises(ValueError, match="one form"):
        Grid(alpha=[1.0, {"a": 1.0}])
    with pytest.raises(ValueError, match="zip"):
        Grid(alpha={"a": [1.0, 2.0]}, seed=[0, 1, 2], mode="zip")
