"""``python -m decompvae.data --grid out.png``: save a grid of rendered dSprites."""

from decompvae.data.sprites import main

main()
