"""The tiny run both reliability test modules train: two pinwheel members, 40 steps, checkpoints at 20 and 40."""

from pathlib import Path

CONFIG_TOML = """\
[data]
name = "pinwheel"
eval_points = 400
[model]
network = "mlp"
latent_dim = 2
likelihood = "gaussian"
hidden = [8]
prior = "isotropic"
[train]
steps = 40
batch_size = 32
log_every = 10
checkpoint_every = 20
[sweep]
beta = [1.0, 2.0]
"""
REPO = Path(__file__).parents[1]
