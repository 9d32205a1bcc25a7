"""Strategies, registered by name. Each is a small stateless class behind `Strategy`."""

from .base import ExecContext, Strategy, StrategyOutcome
from .ensemble import EnsembleStrategy
from .single import SingleStrategy

STRATEGIES: dict[str, type] = {s.name: s for s in (SingleStrategy, EnsembleStrategy)}

__all__ = ["STRATEGIES", "ExecContext", "Strategy", "StrategyOutcome"]
