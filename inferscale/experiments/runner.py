"""The experiment loop: every (config, item) not yet stored goes through `Engine.aask`, is scored,
and is stored at once. Budget ($ and calls) is shared by the whole experiment.

    spec = ExperimentSpec(name="eq", dataset="verifiable", configs=(RunConfig("single", "single",
                          ("local/gemma-3-270m",)),), verifier="auto")
    status = run_sync(run_experiment(engine, spec, datasets.load("verifiable", 30)))
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import AllModelsFailedError, ConfigError, InferscaleError
from ..orchestration.strategies import STRATEGIES, build_strategy
from ..types import AskResult, CacheControl
from . import scorers
from .datasets import Dataset, Item
from .store import ExperimentStore, ResultRow

VERIFIERS = ("auto", "none")  # auto: the dataset's own (answer-free) verifier
_NOT_CANDIDATES = ("judge", "aggregator", "check")  # calls that are not answers to the question


class ExperimentError(InferscaleError):
    """An experiment that cannot start (name taken, bad config, unknown verifier…)."""


@dataclass(frozen=True)
class RunConfig:
    name: str
    strategy: str
    models: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "strategy": self.strategy, "models": list(self.models),
                "options": dict(self.options)}


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    dataset: str
    configs: tuple[RunConfig, ...]
    limit: int | None = None
    seed: int | None = None
    scorer: str | None = None
    verifier: str | None = None
    budget_usd: float | None = None
    max_calls: int | None = None
    concurrency: int = 4
    cache: bool = True
    baseline: str | None = None
    items: int | None = None  # how many items the dataset selection holds (for progress)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["configs"] = [c.to_json() for c in self.configs]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExperimentSpec:
        configs = tuple(RunConfig(c["name"], c["strategy"], tuple(c.get("models") or ()),
                                  dict(c.get("options") or {})) for c in data["configs"])
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "configs"}
        return cls(configs=configs, **known)


@dataclass(frozen=True)
class Progress:
    done: dict[str, int]  # per config, stored so far (resumed ones included)
    total: dict[str, int]
    spent_usd: float
    calls: int
    eta_s: float | None
    last: ResultRow | None = None


def effective_options(config: RunConfig, use_verifier: bool) -> dict[str, Any]:
    """A verifier turns best-of-n and tree-search to scorer=verifier and cascade's gate to
    confidence=verifier, unless the config chose otherwise."""
    opts = dict(config.options)
    if use_verifier:
        if config.strategy in ("best-of-n", "tree-search"):
            opts.setdefault("scorer", "verifier")
        elif config.strategy == "cascade":
            opts.setdefault("confidence", "verifier")
    return opts


def validate(engine: Any, spec: ExperimentSpec, dataset: Dataset) -> None:
    """Everything that would fail every item fails here, before anything runs or is stored."""
    if not spec.configs:
        raise ExperimentError("no configs: give --strategies/--models or --configs FILE.yaml")
    names = [c.name for c in spec.configs]
    if len(set(names)) != len(names):
        raise ExperimentError(f"config names repeat: {', '.join(names)}")
    if spec.baseline is not None and spec.baseline not in names:
        raise ExperimentError(f"--baseline {spec.baseline!r} is not a config ({', '.join(names)})")
    if spec.verifier is not None and spec.verifier not in VERIFIERS:
        raise ExperimentError(f"unknown verifier {spec.verifier!r}: choose one of {', '.join(VERIFIERS)}")
    if spec.verifier == "auto" and not dataset.has_verifier:
        raise ExperimentError(f"dataset {dataset.name!r} has no verifier of its own (--verifier auto)")
    if spec.concurrency < 1:
        raise ExperimentError(f"--concurrency must be >= 1, got {spec.concurrency}")
    tun = engine.tunables()
    for c in spec.configs:
        if c.strategy not in STRATEGIES:
            raise ExperimentError(f"config {c.name!r}: unknown strategy {c.strategy!r}; choose one of "
                                  f"{', '.join(STRATEGIES)}")
        try:
            build_strategy(c.strategy, tun, effective_options(c, spec.verifier == "auto"))
        except ConfigError as exc:
            raise ExperimentError(f"config {c.name!r}: {exc}") from None
        for m in c.models:
            engine.registry.require_available(m)
    if spec.scorer is not None:
        scorers.check_name(spec.scorer)
    scorers.validate(dataset.items, spec.scorer, dataset.name)


def prepare(engine: Any, spec: ExperimentSpec, dataset: Dataset, resume: bool) -> ExperimentSpec:
    """Claim the name (or find it again for --resume); returns the spec to run."""
    store = ExperimentStore(engine.database)
    found = store.get(spec.name)
    if found is not None and not resume:
        raise ExperimentError(f"experiment {spec.name!r} already exists ({found['status']}); "
                              "use --resume to continue it or another --name")
    if found is not None:
        stored = ExperimentSpec.from_json(found["spec"])
        if [c.to_json() for c in stored.configs] != [c.to_json() for c in spec.configs]:
            raise ExperimentError(f"experiment {spec.name!r} was run with other configs "
                                  f"({', '.join(c.name for c in stored.configs)}); resume it with the same ones")
        if found["dataset"] != spec.dataset:
            raise ExperimentError(f"experiment {spec.name!r} ran dataset {found['dataset']!r}, not {spec.dataset!r}")
    validate(engine, spec, dataset)
    if found is None:
        store.create(spec.name, spec.dataset, spec.to_json())
    else:
        store.update(spec.name, status="running", spec=spec.to_json())
    return spec


async def run_experiment(engine: Any, spec: ExperimentSpec, dataset: Dataset, *,
                         on_progress: Callable[[Progress], Any] | None = None,
                         stop: Any = None) -> str:
    """Run what is missing of a prepared experiment; returns its final status. `stop` (a
    threading.Event) ends it early as "interrupted"."""
    store = ExperimentStore(engine.database)
    use_verifier = spec.verifier == "auto"
    stored = store.results(spec.name)
    have = {(r["config"], r["item_id"]) for r in stored}
    spent = sum((r["spent_usd"] or 0) + (r["scorer_cost_usd"] or 0) for r in stored)
    calls = sum((r["calls"] or 0) + (r["scorer_calls"] or 0) for r in stored)
    done = {c.name: sum(1 for r in stored if r["config"] == c.name) for c in spec.configs}
    total = {c.name: len(dataset.items) for c in spec.configs}
    # Item-major order: when the budget stops a run, every config has seen the same items.
    jobs = [(seq, item, c) for seq, item in enumerate(dataset.items) for c in spec.configs
            if (c.name, item.id) not in have]
    state: dict[str, Any] = {"spent": spent, "calls": calls, "inflight": 0, "ran": 0, "ran_cost": 0.0, "stopped": None}
    built: dict[str, scorers.Scorer] = {}
    gate = asyncio.Semaphore(spec.concurrency)
    t0 = time.perf_counter()

    def over_budget() -> str | None:
        mean = state["ran_cost"] / state["ran"] if state["ran"] else 0.0
        if spec.budget_usd is not None and state["spent"] + state["inflight"] * mean >= spec.budget_usd:
            return "stopped (budget)"
        if spec.max_calls is not None and state["calls"] >= spec.max_calls:
            return "stopped (budget)"
        return None

    async def one(seq: int, item: Item, config: RunConfig) -> None:
        async with gate:
            if state["stopped"] or (stop is not None and stop.is_set()):
                state["stopped"] = state["stopped"] or "interrupted"
                return
            if why := over_budget():
                state["stopped"] = why
                return
            state["inflight"] += 1
            try:
                row = await _run_item(engine, spec, config, item, seq, use_verifier, built)
            finally:
                state["inflight"] -= 1
            store.write(row)
            state["spent"] += row.spent_usd + row.scorer_cost_usd
            state["calls"] += row.calls + row.scorer_calls
            state["ran"] += 1
            state["ran_cost"] += row.spent_usd + row.scorer_cost_usd
            done[config.name] += 1
            if on_progress is not None:
                elapsed = time.perf_counter() - t0
                left = len(jobs) - state["ran"]
                eta = elapsed / state["ran"] * left if state["ran"] else None
                on_progress(Progress(dict(done), total, state["spent"], state["calls"], eta, row))

    status = "interrupted"
    try:
        await asyncio.gather(*(one(*j) for j in jobs))
        status = state["stopped"] or "done"
    finally:
        store.update(spec.name, status=status)
        await asyncio.to_thread(engine.flush)  # the requests behind the rows are written behind them
    return status


async def _run_item(engine: Any, spec: ExperimentSpec, config: RunConfig, item: Item, seq: int,
                    use_verifier: bool, built: dict[str, scorers.Scorer]) -> ResultRow:
    cache = CacheControl(namespace=f"experiment:{spec.name}:{config.name}") if spec.cache \
        else CacheControl.off()
    base = ResultRow(
        experiment=spec.name, config=config.name, item_id=item.id, prompt=item.prompt,
        system=item.system, expected=item.expected, answer=None, score=None, correct=None, error=None,
        strategy=config.strategy, models=json.dumps(list(config.models)), answered_by="[]",
        cost_usd=0.0, latency_ms=0.0, calls=0, pass_at_k=None, request_id=None, ts=time.time(), seq=seq,
    )
    t0 = time.perf_counter()
    try:
        result: AskResult = await engine.aask(
            item.prompt, system=item.system, strategy=config.strategy, models=list(config.models) or None,
            strategy_options=effective_options(config, use_verifier), cache=cache, source="experiment",
            verifier=item.verifier if use_verifier else None,
        )
    except Exception as exc:  # noqa: BLE001 - an item whose every call failed is an error, not a stop
        msg = str(exc) if isinstance(exc, InferscaleError) else f"{type(exc).__name__}: {exc}"
        # The calls made before it failed still count (and may have cost money): the budget and the
        # report add them up like any other item's.
        made = exc.members if isinstance(exc, AllModelsFailedError) else ()
        return replace(base, error=msg[:500] or type(exc).__name__, calls=len(made),
                       cost_usd=sum(m.cost_usd for m in made),
                       spent_usd=sum(m.cost_usd for m in made if not m.cached),
                       latency_ms=(time.perf_counter() - t0) * 1000, ts=time.time())
    name = scorers.resolve(item, spec.scorer)
    scorer = built.get(name) or built.setdefault(name, scorers.build(name, engine))
    scored = await scorer.ascore(result.answer, item)
    candidates = _candidates(result)
    passed, extra_calls, extra_cost = await _pass_at_k(result, candidates, scored, scorer, item)
    answer_models = [m.model for m in result.members if m.ok and m.answer == result.answer]
    return replace(
        base, answer=result.answer, score=scored.score, correct=int(scored.correct),
        answered_by=json.dumps(list(dict.fromkeys(answer_models or [m.model for m in result.members if m.ok]))),
        cost_usd=sum(m.cost_usd for m in result.members), latency_ms=result.latency_ms,
        calls=len(result.members), pass_at_k=passed, request_id=result.request_id, ts=time.time(),
        reason=scored.reason[:300], candidates=len(candidates), scorer=name,
        scorer_calls=scored.calls + extra_calls, scorer_cost_usd=scored.cost_usd + extra_cost,
        spent_usd=result.cost_usd,
    )


def _candidates(result: AskResult) -> list[str]:
    """Every answer the strategy produced for the question (best-of-n candidates, tree nodes,
    samples, ensemble members, cascade tiers), distinct, judge and aggregator calls excluded."""
    out = [m.answer for m in result.members
           if m.ok and m.answer and not any(w in m.role for w in _NOT_CANDIDATES)]
    return list(dict.fromkeys(out))


async def _pass_at_k(result: AskResult, candidates: list[str], selected: scorers.Score,
                     scorer: scorers.Scorer, item: Item) -> tuple[int | None, int, float]:
    """Oracle pass@k: 1 if any candidate is right on the expected answer (never used to pick).
    None for `single` (one candidate: that is selected accuracy) and for the judge scorer."""
    if result.strategy == "single" or isinstance(scorer, scorers.JudgeScorer) or not candidates:
        return None, 0, 0.0
    if selected.correct:
        return 1, 0, 0.0
    for answer in candidates:
        if answer != result.answer and (await scorer.ascore(answer, item)).correct:
            return 1, 0, 0.0
    return 0, 0, 0.0
