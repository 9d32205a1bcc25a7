"""Frozen records shared across components: easy to log, test, show and serialise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

CACHE_LEVELS = ("L1", "L2", "L3", "L4")  # semantic, state, per-model output, result (cache/levels.py)

Message = dict[str, str]  # {"role": ..., "content": ...}
# Scores one candidate answer in [0, 1] without knowing the expected answer (substitute x back into
# the equation, re-run the tests, recompute); used by best-of-n, tree-search and cascade's gate.
Verifier = Callable[[str], float]


@dataclass(frozen=True)
class CacheControl:
    """Per-request cache behaviour (the gateway's `cache: {no-cache, no-store, ttl}`, experiments).

    `namespace` is a hard partition: an entry written under one namespace is never served, at any
    level, to a request of another (each gateway key, each experiment has its own)."""

    read: bool = True  # look entries up (no-cache: False)
    write: bool = True  # store what this request computes (no-store: False)
    ttl_s: float | None = None  # serve only entries younger than this (on top of each level's TTL)
    namespace: str = ""

    @classmethod
    def off(cls) -> CacheControl:
        return cls(read=False, write=False)


@dataclass(frozen=True)
class Analysis:
    """Complexity analysis of one prompt."""

    score: float
    domain: str
    tokens: int
    capability: str  # the capability tag a model needs for this domain
    breakdown: tuple[tuple[str, float, str], ...]  # (feature, contribution, explanation)
    domain_scores: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"complexity score {self.score} outside [0, 1]")

    def explain(self) -> str:
        parts = [f"{name} +{c:.2f} ({why})" for name, c, why in self.breakdown if c > 0]
        return f"complexity {self.score:.2f} [{self.domain}]: " + ("; ".join(parts) or "plain prompt")


@dataclass(frozen=True)
class RoutingDecision:
    policy: str
    models: tuple[str, ...]
    strategy: str
    reason: str
    predicted_cost_usd: float
    fallbacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemberResult:
    """One model's answer (or failure) inside a request."""

    model: str
    answer: str | None
    latency_ms: float
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    error: str | None = None  # "<ErrorClass>: message" when the call failed
    cached: bool = False
    attempts: int = 1
    attempt_errors: tuple[str, ...] = ()  # error class of every failed attempt, retried ones too
    mean_logprob: float | None = None  # mean token log-probability, when the provider gives them
    role: str = ""  # what the call was for inside its strategy: "sample 2", "judge", "tier 1"…
    truncated: bool = False  # the provider's answer was longer than the caps (inferscale/limits.py)
    kind: str | None = None  # the error class of a failure (errors.FailureKind or a provider class)

    @classmethod
    def failure(cls, model: str, kind: str, message: str, **fields: Any) -> MemberResult:
        """A failed call of class `kind` (shown as "<kind>: <message>")."""
        return cls(model=model, answer=None, error=f"{kind}: {message}", kind=kind,
                   **{"latency_ms": 0.0, **fields})

    @property
    def ok(self) -> bool:
        return self.error is None and self.answer is not None

    @property
    def error_class(self) -> str | None:
        """The failure's class. Every failure inferscale builds carries it in `kind`; a record
        built by hand with only an `error` text names it as the text's prefix."""
        if self.error is None:
            return None
        return self.kind or self.error.partition(":")[0]


@dataclass(frozen=True)
class CacheHit:
    level: str  # "L3" model output, "L4" final result (L1/L2 arrive with the full cache)
    key: str
    saved_usd: float
    saved_ms: float
    created_at: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepTiming:
    name: str  # analysis | cache | routing | execution | monitoring
    ms: float
    note: str = ""


@dataclass(frozen=True)
class AskResult:
    request_id: str
    answer: str
    strategy: str
    analysis: Analysis
    routing: RoutingDecision
    cache: CacheHit | None
    members: tuple[MemberResult, ...]
    confidence: float | None
    cost_usd: float
    latency_ms: float
    steps: tuple[StepTiming, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)  # the strategy's structure (see strategies/)

    def to_json(self) -> dict[str, Any]:
        """The stable `inferscale ask --json` shape."""
        return {
            "request_id": self.request_id,
            "answer": self.answer,
            "strategy": self.strategy,
            "confidence": self.confidence,
            "routing": {
                "policy": self.routing.policy,
                "complexity": round(self.analysis.score, 4),
                "domain": self.analysis.domain,
                "models": list(self.routing.models),
                "reason": self.routing.reason,
                "predicted_cost_usd": self.routing.predicted_cost_usd,
                "breakdown": [list(b) for b in self.analysis.breakdown],
            },
            "cache": None if self.cache is None else {
                k: v for k, v in asdict(self.cache).items() if k != "detail"
            } | self.cache.detail,
            "members": [
                {
                    "model": m.model,
                    "answer": m.answer,
                    "latency_ms": round(m.latency_ms, 2),
                    "tokens_in": m.tokens_in,
                    "tokens_out": m.tokens_out,
                    "cost_usd": m.cost_usd,
                    "error": m.error,
                    "cached": m.cached,
                    "role": m.role,
                    "truncated": m.truncated,
                }
                for m in self.members
            ],
            "cost_usd": self.cost_usd,
            "latency_ms": round(self.latency_ms, 2),
            "steps": [{"name": s.name, "ms": round(s.ms, 3), "note": s.note} for s in self.steps],
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AskResult:
        """The exact inverse of `to_json`: `AskResult.from_json(r.to_json()).to_json() == r.to_json()`.
        What the JSON leaves out stays at its default (the analysis' token count, capability and
        domain scores, the routing fallbacks, a member's attempts and log-probability)."""
        r = data["routing"]
        cache = data.get("cache")
        hit = None
        if cache is not None:
            base = {k: cache[k] for k in ("level", "key", "saved_usd", "saved_ms", "created_at")}
            hit = CacheHit(**base, detail={k: v for k, v in cache.items() if k not in base})
        return cls(
            request_id=data["request_id"],
            answer=data["answer"],
            strategy=data["strategy"],
            analysis=Analysis(score=r["complexity"], domain=r["domain"], tokens=0, capability="",
                              breakdown=tuple((str(n), float(c), str(w)) for n, c, w in r["breakdown"])),
            routing=RoutingDecision(policy=r.get("policy", "cache"), models=tuple(r["models"]),
                                    strategy=data["strategy"],
                                    reason=r["reason"], predicted_cost_usd=r["predicted_cost_usd"]),
            cache=hit,
            members=tuple(MemberResult(**m) for m in data["members"]),
            confidence=data["confidence"],
            cost_usd=data["cost_usd"],
            latency_ms=data["latency_ms"],
            steps=tuple(StepTiming(s["name"], s["ms"], s["note"]) for s in data["steps"]),
            detail=data["detail"],
        )


@dataclass(frozen=True)
class Cooldown:
    """One model's cooldown, as persisted and shown by `inferscale stats`."""

    model: str
    until: float  # epoch seconds
    failures: int  # failures inside the window that tripped it
    error_class: str  # the last failure's class
    error: str
