"""Speed benchmarks of decompvae, run from a source checkout: ``python -m benchmarks.run``."""
