"""Strategies, registered by name. Each is a small stateless class, `Strategy[ItsConfig]`, whose
typed config takes its defaults from the live tunables; a request can override them."""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError
from ...settings import STRATEGY_NAMES, Tunables
from .base import Answer, ExecContext, Strategy, StrategyConfig, StrategyOutcome
from .best_of_n import BestOfNStrategy
from .budget import Budget
from .cascade import CascadeStrategy
from .ensemble import EnsembleStrategy
from .moa import MoAStrategy
from .self_consistency import SelfConsistencyStrategy
from .single import SingleStrategy
from .tree_search import TreeSearchStrategy

STRATEGIES: dict[str, type[Strategy[Any]]] = {
    s.name: s
    for s in (SingleStrategy, EnsembleStrategy, CascadeStrategy, SelfConsistencyStrategy,
              BestOfNStrategy, MoAStrategy, TreeSearchStrategy)
}
assert tuple(STRATEGIES) == STRATEGY_NAMES, "settings.STRATEGY_NAMES and STRATEGIES must agree"


def build_strategy(name: str, tunables: Tunables, options: dict[str, Any] | None = None
                   ) -> Strategy[Any]:
    """The strategy called `name`, configured from the tunables plus per-request `options`."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return cls(cls.Config.build(tunables, options))


def parse_options(pairs: list[str]) -> dict[str, str]:
    """`["tau=0.5", "n=3"]` (CLI `--option KEY=VALUE`) → {"tau": "0.5", "n": "3"}; the strategy's
    typed Config converts and validates the values."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"strategy option {pair!r} must look like KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def describe(detail: dict[str, Any]) -> str:
    """One line about a result's strategy structure, for the CLI ("" when there is nothing to say)."""
    kind = detail.get("kind")
    if kind == "cascade":
        return (f"cascade: tier {detail['answered_tier']}/{len(detail['ladder'])} ({detail['answered_by']}) "
                f"answered; escalation cost ${detail['escalation_cost_usd']:.6f}")
    if kind == "self-consistency":
        share = detail.get("vote_share")
        return f"votes: {detail['votes']}" + (f" (share {share:.2f})" if share is not None else "")
    if kind == "best-of-n":
        scores = [c["score"] for c in detail["candidates"]]
        return f"judge {detail['judge'] or detail['scorer']}: scores {scores}, best #{detail['best'] + 1}"
    if kind == "moa":
        agg = detail["aggregator"]
        return (f"moa: {len(detail['layers'])} layer(s), aggregator "
                f"{agg['model'] if agg else 'skipped (consensus)' if detail['consensus_skip'] else 'none'}")
    if kind == "tree-search":
        return (f"tree: {len(detail['nodes']) - 1} node(s), best node {detail['best']}, "
                f"stopped by {detail['stopped']}")
    return ""


__all__ = [
    "STRATEGIES",
    "Answer",
    "Budget",
    "ExecContext",
    "Strategy",
    "StrategyConfig",
    "StrategyOutcome",
    "build_strategy",
    "describe",
    "parse_options",
]
