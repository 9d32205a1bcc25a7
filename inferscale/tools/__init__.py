"""Tooling that uses the components but is none of them (synthetic data for the dashboard, benchmark
loaders, cache evaluation): never imported by the engine itself."""
