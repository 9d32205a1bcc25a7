"""Performance monitor: every request, model call, cache event and routing decision in SQLite."""
