"""Inference cache: L1 semantic (Chroma + verification), L2 intermediate state, L3 model output,
L4 final result (SQLite), with per-level TTL, capacity and GDSF eviction. See `levels.py`."""

from .exact import ExactCache, cache_key
from .levels import LEVELS, CacheLevels

__all__ = ["LEVELS", "CacheLevels", "ExactCache", "cache_key"]
