"""One router module per resource: chat completions, models, and health/metrics."""
