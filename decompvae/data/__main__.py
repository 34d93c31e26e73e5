"""``python -m decompvae.data --grid out.png``: save a grid of rendered dSprites."""

import argparse

import jax

from decompvae.data.loaders import dsprites
from decompvae.data.sprites import save_grid


def main(argv=None) -> None:
    """Command line: ``python -m decompvae.data --grid out.png``."""
    parser = argparse.ArgumentParser(prog="python -m decompvae.data", description=__doc__.splitlines()[0])
    parser.add_argument("--grid", required=True, help="output PNG path")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random rows")
    parser.add_argument("--npz", default=None, help="render from the official file instead")
    args = parser.parse_args(argv)
    save_grid(args.grid, jax.random.key(args.seed), data=dsprites(args.npz))
    print(f"saved {args.grid}")


if __name__ == "__main__":
    main()
