"""The strategy interface: given the routed models and a way to call one, produce an answer.

A strategy is a small stateless class, `Strategy[ItsConfig]`, whose typed config is its only state.
Everything that belongs to one request — the call log, the budget, cooldown skips — lives on the
`ExecContext` the engine builds for it. Strategies call models only through `ctx.invoke`, which
enforces the call and dollar budgets, skips models that are cooling down, serialises calls to one
local model (so a cancelled straggler never starts) and records every call in order, cancelled
ones included.

A strategy implements `answer(ctx)` and returns an `Answer` (text, confidence, its own detail) or
None when nothing answered; `Strategy.run` fills what every outcome has in common: the calls made,
the detail's `kind` and `budget`, and the all-failed error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar, cast, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from ...embeddings import Embedder
from ...errors import AllModelsFailedError, ConfigError, FailureKind
from ...providers.health import HealthTracker
from ...providers.llm import estimate_tokens
from ...registry import ModelSpec
from ...settings import Tunables
from ...types import MemberResult, Message, RoutingDecision, Verifier
from .budget import Budget

# The engine's caller: L3 cache lookup + provider call + live events.
CallFn = Callable[..., Awaitable[MemberResult]]
PredictFn = Callable[[ModelSpec, int, int], float]  # (spec, tokens_in, tokens_out) -> USD


class StrategyConfig(BaseModel):
    """Base of every strategy's options: typed, frozen, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def defaults(cls, tunables: Tunables) -> dict[str, Any]:
        """Values taken from the live tunables unless a request overrides them."""
        return {}

    @classmethod
    def build(cls, tunables: Tunables, options: dict[str, Any] | None = None) -> StrategyConfig:
        try:
            return cls.model_validate({**cls.defaults(tunables), **(options or {})})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "options"
            msg = "unknown option" if first["type"] == "extra_forbidden" else first["msg"]
            known = ", ".join(cls.model_fields) or "none"
            raise ConfigError(f"strategy option {where}: {msg} (options: {known})") from None


@dataclass
class ExecContext:
    """One request's execution state. Not frozen: the call log, the budget and the per-model gates
    change as the strategy runs (a new context per request; never shared between requests)."""

    decision: RoutingDecision
    specs: dict[str, ModelSpec]  # routed models and fallbacks (every available model), by id
    call: CallFn
    embedder: Embedder
    messages: tuple[Message, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)  # max_tokens, temperature
    budget: Budget = field(default_factory=Budget)
    predict: PredictFn | None = None
    health: HealthTracker | None = None
    verifier: Verifier | None = None  # scores an answer in [0, 1] without the expected answer
    _log: list[MemberResult | None] = field(default_factory=list, repr=False)
    _gates: dict[str, asyncio.Semaphore] = field(default_factory=dict, repr=False)

    @property
    def chosen(self) -> list[ModelSpec]:
        return [self.specs[i] for i in self.decision.models]

    @property
    def fallbacks(self) -> list[ModelSpec]:
        return [self.specs[i] for i in self.decision.fallbacks]

    @property
    def pool(self) -> list[ModelSpec]:
        return self.chosen + self.fallbacks

    @property
    def question(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    @property
    def members(self) -> tuple[MemberResult, ...]:
        """Every call so far, in the order they started (cancelled stragglers included)."""
        return tuple(m for m in self._log if m is not None)

    def index_of(self, member: MemberResult | None) -> int | None:
        """The position of `member` in `members`, for detail records that point at calls."""
        if member is None:
            return None
        return next((i for i, m in enumerate(self.members) if m is member), None)

    async def invoke(
        self,
        spec: ModelSpec,
        *,
        role: str,
        messages: Sequence[Message] | None = None,
        temperature: float | None = None,
        sample: int = 0,
        logprobs: bool = False,
        ignore_cooldown: bool = False,
    ) -> MemberResult | None:
        """Call one model. Returns None when the budget refuses the call; a failed call (or a
        skipped cooling-down model) is a MemberResult with `error` set."""
        msgs = list(messages) if messages is not None else list(self.messages)
        if not ignore_cooldown and (until := self._cooling(spec)) is not None:
            skipped = MemberResult.failure(
                spec.id, FailureKind.COOLING_DOWN,
                f"{spec.id} is cooling down for {until - time.time():.0f} s after repeated failures",
                attempts=0, role=role,
            )
            self._log.append(skipped)
            return skipped
        params = dict(self.params)
        if temperature is not None:
            params["temperature"] = temperature
        if logprobs and not spec.is_local:
            params["logprobs"] = True
        predicted = self.predict(spec, estimate_tokens(msgs), int(params.get("max_tokens") or 0)) \
            if self.predict else 0.0
        if not self.budget.reserve(predicted):
            return None
        gate = self._gates.setdefault(spec.id, asyncio.Semaphore(1 if spec.is_local else 1_000))
        slot = len(self._log)
        self._log.append(None)
        try:
            async with gate:
                result = await self.call(spec, messages=msgs, params=params, sample=sample, role=role)
        except asyncio.CancelledError:
            self.budget.settle(predicted, 0.0)
            self._log[slot] = MemberResult.failure(spec.id, FailureKind.CANCELLED,
                                                   "the strategy stopped early", attempts=0, role=role)
            raise
        self.budget.settle(predicted, 0.0 if result.cached else result.cost_usd)
        result = replace(result, role=role)
        self._log[slot] = result
        return result

    def _cooling(self, spec: ModelSpec) -> float | None:
        """Skip a cooling model only while another routed model of this request is healthy."""
        if self.health is None or (until := self.health.cooling(spec.id)) is None:
            return None
        others = [s for s in self.pool if s.id != spec.id]
        return until if any(self.health.cooling(s.id) is None for s in others) else None


@dataclass(frozen=True)
class Answer:
    """What a strategy found: the answer, its confidence and the strategy's own detail fields."""

    text: str
    confidence: float | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StrategyOutcome:
    answer: str
    confidence: float | None
    members: tuple[MemberResult, ...]  # every call made, fallbacks included, in call order
    detail: dict[str, Any] = field(default_factory=dict)


C = TypeVar("C", bound=StrategyConfig)


class Strategy(Generic[C]):
    """Base of every strategy: `class Ensemble(Strategy[EnsembleConfig])` types `self.config` and
    sets `Config` from the type argument. Subclasses set `name`, implement `answer`, and may set
    `models_needed` (how many routed models they use: 1 keeps the rest as fallbacks; None lets the router
    pick k, the `ensemble_k` tunable or the explicit model list)."""

    name: ClassVar[str]
    Config: ClassVar[type[StrategyConfig]] = StrategyConfig
    models_needed: ClassVar[int | None] = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        for base in getattr(cls, "__orig_bases__", ()):
            args = get_args(base)
            if args and isinstance(args[0], type) and issubclass(args[0], StrategyConfig):
                cls.Config = args[0]

    def __init__(self, config: C | None = None) -> None:
        self.config: C = config if config is not None else cast(C, self.Config())

    async def run(self, ctx: ExecContext) -> StrategyOutcome:
        """Run the strategy: the answer, every call made, and the detail every strategy shares."""
        found = await self.answer(ctx)
        if found is None:
            raise all_failed(ctx.members, ctx.budget)
        detail = {"kind": self.name, **found.detail, "budget": ctx.budget.to_dict()}
        return StrategyOutcome(found.text, found.confidence, ctx.members, detail)

    async def answer(self, ctx: ExecContext) -> Answer | None:
        """The strategy's answer, or None when no model answered."""
        raise NotImplementedError


def all_failed(members: Sequence[MemberResult], budget: Budget | None = None) -> AllModelsFailedError:
    errs = "; ".join(f"{m.model}: {m.error}" for m in members) or "no model was called"
    if budget is not None and budget.denied:
        errs += f"; budget stopped {budget.denied} call(s) ({budget.describe()})"
    return AllModelsFailedError(f"every routed model failed ({errs})", tuple(members))


async def with_fallback(ctx: ExecContext, spec: ModelSpec, spare: list[ModelSpec], **kw: Any
                        ) -> MemberResult | None:
    """Call `spec`; while it fails, call the next unused model from `spare` (shared between
    concurrent slots, so two slots never take the same fallback). Models skipped for cooling down
    get a last chance once everything else failed. None: the budget ran out."""
    cooling: list[ModelSpec] = []
    result = await ctx.invoke(spec, **kw)
    while result is not None and not result.ok:
        if result.error_class == FailureKind.COOLING_DOWN:
            cooling.append(spec)
        if spare:
            spec = spare.pop(0)
            result = await ctx.invoke(spec, **kw)
        elif cooling:
            spec = cooling.pop(0)
            result = await ctx.invoke(spec, ignore_cooldown=True, **kw)
        else:
            break
    return result


async def race(coros: Sequence[Awaitable[Any]], done: Callable[[list[Any]], bool]
               ) -> tuple[list[Any], int]:
    """Run `coros` concurrently; as soon as `done(results so far)` is true, cancel the stragglers.
    Returns (results in completion order, number of cancelled stragglers)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    order = {t: i for i, t in enumerate(tasks)}
    results: list[Any] = []
    pending = set(tasks)
    try:
        while pending and not (results and done(results)):
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            results += [t.result() for t in sorted(finished, key=order.__getitem__)]
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    stragglers = sorted(pending, key=order.__getitem__)
    for t in stragglers:
        t.cancel()
    cancelled = 0
    # A straggler whose answer arrived just as it was cancelled still finishes: keep its answer.
    for outcome in await asyncio.gather(*stragglers, return_exceptions=True):
        if isinstance(outcome, asyncio.CancelledError):
            cancelled += 1
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            results.append(outcome)
    return results, cancelled


def strongest(specs: Sequence[ModelSpec], named: str = "", all_specs: dict[str, ModelSpec] | None = None
              ) -> ModelSpec:
    """The model called `named` if given, else the highest quality prior (cheaper on ties)."""
    if named:
        spec = (all_specs or {}).get(named) or next((s for s in specs if s.id == named), None)
        if spec is None:
            raise ConfigError(f"model {named!r} is not available for this request "
                              "(enable it, or set judge_model to an available model id)")
        return spec
    return max(specs, key=lambda s: (s.quality_prior, -s.latency_prior_ms))
