"""Orchestration: the engine's five steps and the strategies it runs."""
