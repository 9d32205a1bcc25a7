"""Inference cache. Levels so far: L3 exact per-model output, L4 exact final result (SQLite)."""

from .exact import ExactCache, cache_key

__all__ = ["ExactCache", "cache_key"]
