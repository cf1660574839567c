"""psamf's benchmarks on real data, run from the repository root as modules, e.g.
``python -m benchmarks.real_data list`` and ``python -m benchmarks.make_results``."""
