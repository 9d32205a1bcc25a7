"""Benchmarks for inferscale: run them all with `.venv/bin/python bench/run_all.py [--quick]`."""
