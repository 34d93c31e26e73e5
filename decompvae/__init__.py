"""decompvae: decomposition of VAE latent spaces in JAX.

Implements Mathieu, Rainforth, Siddharth & Teh, "Disentangling Disentanglement
in Variational Autoencoders", ICML 2019 (arXiv:1812.02833), as pure, jittable,
vmappable functions over Flax modules and distrax priors.
"""

__version__ = "0.1.0"
