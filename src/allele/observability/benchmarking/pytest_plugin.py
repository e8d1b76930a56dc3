"""pytest plugin of Allele's benchmarking (registered through the ``pytest11`` entry point)."""
