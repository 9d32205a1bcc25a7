"""One router module per resource: chat completions, models, health/metrics, feedback."""
