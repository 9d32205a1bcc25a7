"""The router interface (after RouteLLM): `scores()` returns, per candidate model, a number in [0, 1]
(how likely that model answers this prompt well); the caller owns the thresholds, which live in
`Tunables` and are passed in with every request. `score()` is the prompt's need for a strong model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidPromptError, RoutingError
from ..registry import ModelSpec
from ..settings import Tunables
from ..types import Analysis, RoutingDecision

CostFn = Callable[[ModelSpec, int, int], float]  # (spec, tokens_in, tokens_out) -> predicted USD


@dataclass(frozen=True)
class RouteRequest:
    analysis: Analysis
    candidates: tuple[ModelSpec, ...]  # available models, registry order
    strategy: str
    tunables: Tunables
    predicted_cost: CostFn
    explicit: tuple[ModelSpec, ...] = ()  # --models, when the user chose
    # How many models the strategy uses (its `models_needed`); the rest stay as fallbacks.
    # None: the explicit models, else the `ensemble_k` tunable.
    models_needed: int | None = None
    prompt: str = ""  # the last user message, for routers that read the text (learned)
    embed: Callable[[str], Any] | None = None  # text -> unit MiniLM vector
    home: Path | None = None  # where stored routers live (<home>/routers)
    embedding: Any = None  # the prompt's vector when the caller already has it (what-if replay)

    def vector(self) -> Any:
        if self.embedding is None and self.embed is not None and self.prompt:
            return self.embed(self.prompt)
        return self.embedding

    @property
    def k(self) -> int:
        if self.models_needed is not None:
            return self.models_needed
        return len(self.explicit) if self.explicit else self.tunables.ensemble_k

    def cost(self, spec: ModelSpec) -> float:
        return self.predicted_cost(spec, self.analysis.tokens, self.tunables.max_tokens)


class Router(Protocol):
    name: str

    def score(self, analysis: Analysis) -> float:
        """How much this prompt needs a strong model, in [0, 1]."""

    def scores(self, req: RouteRequest) -> dict[str, float]:
        """Per candidate model id, in [0, 1]: how likely it answers this prompt well."""

    def decide(self, req: RouteRequest) -> RoutingDecision:
        """Choose models (and fallbacks) for the request."""


def fits_context(req: RouteRequest) -> tuple[ModelSpec, ...]:
    """Candidates whose context window holds the prompt plus the answer budget."""
    need = req.analysis.tokens + req.tunables.max_tokens
    pool = req.explicit or req.candidates
    fit = tuple(s for s in pool if s.context_window >= need)
    if not fit:
        largest = max((s.context_window for s in pool), default=0)
        raise InvalidPromptError(
            f"prompt is ~{req.analysis.tokens} tokens (+{req.tunables.max_tokens} for the answer), "
            f"longer than every eligible model's context window (largest: {largest})"
        )
    if req.explicit and len(fit) < len(req.explicit):
        short = next(s for s in req.explicit if s not in fit)
        raise InvalidPromptError(
            f"prompt is ~{need} tokens with the answer, longer than {short.id}'s context window "
            f"({short.context_window})"
        )
    return fit


def with_capability(models: tuple[ModelSpec, ...], capability: str) -> tuple[tuple[ModelSpec, ...], str]:
    capable = tuple(s for s in models if capability in s.tags)
    if capable:
        return capable, f"models tagged '{capability}'"
    return models, f"no model tagged '{capability}', using all"


def finish(req: RouteRequest, policy: str, ordered: list[ModelSpec], why: str) -> RoutingDecision:
    """Apply the budget cap, take the first k, keep the rest as fallbacks."""
    budget = req.tunables.budget_usd
    if budget is not None:
        within = [s for s in ordered if req.cost(s) <= budget]
        if not within:
            cheapest = min(ordered, key=req.cost)
            raise RoutingError(
                f"budget cap ${budget:.6f} is below the cheapest eligible model "
                f"({cheapest.id}, predicted ${req.cost(cheapest):.6f})"
            )
        if len(within) < len(ordered):
            why += f"; {len(ordered) - len(within)} model(s) over the ${budget:.6f} budget skipped"
        ordered = within
    chosen = ordered[: req.k]
    return RoutingDecision(
        policy=policy,
        models=tuple(s.id for s in chosen),
        strategy=req.strategy,
        reason=why,
        predicted_cost_usd=sum(req.cost(s) for s in chosen),
        fallbacks=tuple(s.id for s in ordered[req.k :]),
    )


def no_models() -> RoutingError:
    return RoutingError(
        "no model is available: enable one (inferscale models enable ID) or set its key variable"
    )


def prior_scores(req: RouteRequest) -> dict[str, float]:
    """The registry's quality priors: what policies without a learned model know of each model."""
    return {s.id: min(1.0, max(0.0, s.quality_prior)) for s in (req.explicit or req.candidates)}


def choose(scores: dict[str, float], costs: dict[str, float], threshold: float,
           lam: float = 0.0) -> tuple[str, str]:
    """The caller-owned decision over per-model scores: with `lam` > 0 the model maximising
    score - lam x cost (USD per 1,000 requests), else the cheapest whose score clears `threshold`
    (none clears it: the highest score). Returns (model id, why)."""
    ids = sorted(scores, key=lambda i: (costs[i], -scores[i], i))
    if lam > 0:
        best = max(ids, key=lambda i: (scores[i] - lam * costs[i] * 1000, -costs[i]))
        return best, (f"max quality - {lam:g} x $/1k requests: {best} "
                      f"({scores[best]:.2f} - {lam:g} x {costs[best] * 1000:.4f})")
    for i in ids:
        if scores[i] >= threshold:
            return i, f"cheapest with predicted quality >= {threshold:.2f}: {i} ({scores[i]:.2f})"
    best = max(ids, key=lambda i: (scores[i], -costs[i]))
    return best, f"no model reaches {threshold:.2f}: the highest predicted quality, {best} ({scores[best]:.2f})"
