"""Experiments: scored runs of strategies × models over a dataset, stored per item, with statistics.

    inferscale eval verifiable --strategies single,best-of-n --models local/gemma-3-270m --verifier auto

Modules: `datasets` (name → loader), `scorers` (name → class), `sandbox` (the `code` scorer's
subprocess), `runner` (the async loop over items × configs), `store` (SQLite rows), `stats`
(Wilson CI, McNemar, Pareto front, AIQ, pass@k), `cli` (`inferscale eval`).
"""
