"""The strategy interface: given the routed models and a way to call one, produce an answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...embeddings import Embedder
from ...errors import AllModelsFailedError
from ...registry import ModelSpec
from ...types import MemberResult, RoutingDecision

CallFn = Callable[[ModelSpec], Awaitable[MemberResult]]


@dataclass(frozen=True)
class ExecContext:
    decision: RoutingDecision
    specs: dict[str, ModelSpec]  # routed models and fallbacks, by id
    call: CallFn  # L3 cache lookup + provider call + live events, supplied by the engine
    embedder: Embedder

    @property
    def chosen(self) -> list[ModelSpec]:
        return [self.specs[i] for i in self.decision.models]

    @property
    def fallbacks(self) -> list[ModelSpec]:
        return [self.specs[i] for i in self.decision.fallbacks]


@dataclass(frozen=True)
class StrategyOutcome:
    answer: str
    confidence: float | None
    members: tuple[MemberResult, ...]  # every call made, fallbacks included, in call order
    detail: dict[str, Any] = field(default_factory=dict)


class Strategy(Protocol):
    name: str

    async def run(self, ctx: ExecContext) -> StrategyOutcome: ...


def all_failed(members: list[MemberResult]) -> AllModelsFailedError:
    errs = "; ".join(f"{m.model}: {m.error}" for m in members) or "no model was called"
    return AllModelsFailedError(f"every routed model failed ({errs})")
