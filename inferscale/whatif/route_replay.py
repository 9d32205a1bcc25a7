"""Re-route logged requests with given tunables: which model, at what predicted cost, with what
quality (a label where the prompt has one, the learned router's estimate otherwise, said which)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InferscaleError
from ..orchestration.strategies import STRATEGIES
from ..routing import RouteRequest
from ..routing.artefact import RouterModel
from ..routing.learned import LearnedRouter
from ..routing.policies import get_router, route
from ..routing.training import experiment_labels
from ..settings import Tunables
from ..types import RoutingDecision
from .log import Logged


@dataclass(frozen=True)
class Routed:
    model: str | None  # the model that answers; None = no model allowed (e.g. under the budget cap)
    cost_usd: float
    quality: float | None
    quality_source: str  # label | estimate | unknown


@dataclass(frozen=True)
class Labels:
    """What is known of answers: per (request, model) from feedback, per (prompt, model) from
    experiments, and the known-good answer text of requests (for contradicted cache hits)."""

    by_request: dict[tuple[str, str], float]
    by_prompt: dict[tuple[str, str], float]
    bad_answers: frozenset[str]  # request ids whose final answer was rated bad
    good_text: dict[str, str]  # request id -> an answer known to be right (rated good, corrected, expected)
    expected: dict[str, str]  # prompt -> an experiment's expected answer for it

    def known_answer(self, r: Logged) -> str | None:
        got = self.good_text.get(r.request_id)
        return got if got is not None else self.expected.get(r.prompt)

    def quality(self, r: Logged, model: str) -> float | None:
        got = self.by_request.get((r.request_id, model))
        return got if got is not None else self.by_prompt.get((r.prompt, model))


def load_labels(engine: Any, logged: Sequence[Logged]) -> Labels:
    db = engine.database
    by_request: dict[tuple[str, str], float] = {}
    bad: set[str] = set()
    good_text: dict[str, str] = {}
    answers = {r.request_id: r for r in logged}
    for rid, rating, answer, model in db.db.execute(
            "SELECT request_id, rating, answer, model FROM feedback ORDER BY ts, id").fetchall():
        r = answers.get(rid)
        value = 1.0 if rating == "good" else 0.0
        if model is None:
            if rating == "bad":
                bad.add(rid)
            if answer:
                good_text[rid] = answer
            elif rating == "good" and r is not None:
                good_text[rid] = r.answer
            model = r.models[0] if r is not None and len(r.models) == 1 else None
        if model is not None:
            by_request[(rid, model)] = value
    by_prompt: dict[tuple[str, str], float] = {}
    for lb in experiment_labels(db):
        by_prompt[(lb.prompt, lb.model)] = lb.label
    try:
        rows = db.db.execute("SELECT request_id, prompt, expected FROM experiment_results"
                             " WHERE expected IS NOT NULL AND error IS NULL").fetchall()
    except Exception:  # noqa: BLE001 - no experiments table on this home
        rows = []
    expected: dict[str, str] = {}
    for rid, prompt, answer in rows:
        if rid:
            good_text.setdefault(rid, answer)
        if prompt:
            expected.setdefault(prompt, answer)
    return Labels(by_request, by_prompt, frozenset(bad), good_text, expected)


_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def same_answer(a: str, b: str) -> bool:
    return _PUNCT.sub(" ", a.lower()).strip() == _PUNCT.sub(" ", b.lower()).strip()


def replay_routes(engine: Any, logged: Sequence[Logged], tun: Tunables, labels: Labels,
                  learned: RouterModel | None, pred: np.ndarray | None) -> list[Routed]:
    """Route every logged request as `tun` would. A request logged with the default router is
    routed by the proposed default router; one that named its router or models keeps them."""
    current_default = engine.tunables().default_router
    candidates = tuple(engine.registry.available())
    specs = {s.id: s for s in engine.registry.list()}
    col = {m: j for j, m in enumerate(learned.models)} if learned is not None else {}
    memo: dict[tuple, Any] = {}
    prices: dict[tuple[tuple[str, ...], int, int], float] = {}  # a function of the specs and the tokens
    labelled = bool(labels.by_request or labels.by_prompt)
    # Without labels or estimates, what a request gets is a function of its decision's key, its
    # logged models, cost and answer tokens: those repeat, the outcome is looked up.
    same: dict[tuple, Routed] | None = {} if not labelled and pred is None else None
    out = []
    for i, r in enumerate(logged):
        name = tun.default_router if r.router == current_default and not r.explicit else r.router
        key = (name, r.analysis.score, r.analysis.capability, r.analysis.tokens, r.strategy, r.explicit)
        rk = None
        if same is not None and name != "learned":
            rk = (key, r.models, r.cost_usd, r.tokens_out)
            if (got := same.get(rk)) is not None:
                out.append(got)
                continue
        decision = memo.get(key) if name != "learned" else None
        if decision is None:
            explicit = tuple(specs[m] for m in r.explicit if m in specs)
            strategy_cls = STRATEGIES.get(r.strategy)
            req = RouteRequest(r.analysis, candidates, r.strategy, tun, engine.predicted_cost, explicit,
                               models_needed=strategy_cls.models_needed if strategy_cls else None,
                               prompt=r.last, embedding=r.v_last, home=engine.settings.home)
            try:
                router = get_router(name)
                if isinstance(router, LearnedRouter) and pred is not None:
                    decision = router.decide(req, pred=pred[i])
                else:
                    decision = route(router, req)
            except InferscaleError:
                decision = False  # e.g. every model over the budget cap: the request is refused
            if name != "learned":
                memo[key] = decision
        routed = _outcome(engine, r, i, decision, tun, specs, prices, labels if labelled else None, pred, col)
        out.append(routed)
        if rk is not None and same is not None:
            same[rk] = routed
    return out


def _outcome(engine: Any, r: Logged, i: int, decision: Any, tun: Tunables, specs: dict[str, Any],
             prices: dict[tuple[tuple[str, ...], int, int], float], labels: Labels | None,
             pred: np.ndarray | None, col: dict[str, int]) -> Routed:
    if not isinstance(decision, RoutingDecision) or not decision.models:
        return Routed(None, 0.0, None, "unknown")
    model = decision.models[0]
    if tuple(decision.models) == r.models and r.cost_usd > 0:
        cost = r.cost_usd  # routed as logged: what it really cost
    else:
        tokens_out = r.tokens_out or tun.max_tokens
        pk = (tuple(decision.models), r.analysis.tokens, tokens_out)
        priced = prices.get(pk)
        if priced is None:
            priced = prices[pk] = sum(engine.predicted_cost(specs[m], r.analysis.tokens, tokens_out)
                                      for m in decision.models if m in specs)
        cost = priced
    q = labels.quality(r, model) if labels is not None else None
    if q is not None:
        return Routed(model, cost, q, "label")
    if pred is not None and model in col:
        return Routed(model, cost, float(pred[i, col[model]]), "estimate")
    return Routed(model, cost, None, "unknown")


def routing_knobs(tun: Tunables) -> str:
    """What routing depends on, to route once when two configurations share it."""
    return json.dumps([tun.complexity_thresholds, tun.budget_usd, tun.default_router, tun.fixed_models,
                       tun.ensemble_k, tun.max_tokens, tun.learned_threshold, tun.learned_lambda])
