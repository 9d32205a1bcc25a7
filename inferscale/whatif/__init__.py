"""What-if replay: re-run the cache and the router over logged requests with proposed tunables
(`report.whatif`). Nothing is imported here: the engine imports `log` on every start."""
