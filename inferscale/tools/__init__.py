"""Tooling that uses the components but is none of them (synthetic data for the dashboard)."""
