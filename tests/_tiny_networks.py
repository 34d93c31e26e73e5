"""Tiny smooth (tanh) encoder/decoder for the objective's tests: x [b, X_DIM] -> (loc, raw) [b, D] each."""

import flax.linen as nn

#: Latent dimension, batch size and data dimension of the tests that use these networks.
D, B, X_DIM = 3, 8, 12


class Encoder(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.tanh(nn.Dense(16)(x))
        return nn.Dense(D)(h), nn.Dense(D)(h)


class Decoder(nn.Module):
    @nn.compact
    def __call__(self, z):
        return nn.Dense(X_DIM)(nn.tanh(nn.Dense(16)(z)))
