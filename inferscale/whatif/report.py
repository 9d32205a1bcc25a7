"""`inferscale whatif` and the Tuning page's preview: replay the logged traffic with the current and
with the proposed tunables, side by side, by the same code (so the difference is the change).

Per side: `hit_rate`, `hit_rate_by_level` (L4 exact, L1 semantic), `saved_usd` (what the served
answers cost to compute), `cost_usd` (what the misses cost, as routed), `model_share` (of the
misses), `quality` (of the misses' answers: labels where known, else the learned estimate, counted
apart) and `contradicted_hits` (hits serving an answer rated bad, or one that differs from an answer
known to be right for that request: rated good, corrected, or the experiment's expected answer).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..cache.levels import verify_config
from ..cache.lexicon import default_lexicon
from ..cache.verify import VerifyConfig
from ..errors import ConfigError
from ..routing.artefact import RouterArtefactError, RouterModel, load_cached
from ..settings import Tunables
from .cache_replay import Near, Served, beside_verdicts, neighbours_of, replay_cache
from .collector import paused
from .log import Logged, build, read_rows
from .route_replay import Labels, Routed, load_labels, replay_routes, routing_knobs, same_answer
from .verdicts import Verdicts


def cache_knobs(tun: Tunables) -> str:
    """What the cache replay depends on, to replay once when two configurations share it."""
    d = tun.to_dict()
    return json.dumps({k: v for k, v in d.items() if k.startswith(("cache_", "semantic_"))}, sort_keys=True)


def parse_sets(current: Tunables, sets: list[str]) -> Tunables:
    """`KEY=VALUE` strings applied in order, each validated (unknown key, bad value, NaN)."""
    out = current
    for s in sets:
        key, sep, value = s.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set needs KEY=VALUE, got {s!r}")
        out = out.with_value(key.strip(), value.strip())
    return out


@dataclass(frozen=True)
class Side:
    hit_rate: float
    hit_rate_by_level: dict[str, float]
    saved_usd: float
    saved_ms: float
    cost_usd: float
    model_share: dict[str, float]
    quality: dict[str, Any]
    contradicted_hits: int

    def to_json(self) -> dict[str, Any]:
        return {"hit_rate": self.hit_rate, "hit_rate_by_level": self.hit_rate_by_level,
                "saved_usd": self.saved_usd, "cost_usd": self.cost_usd, "model_share": self.model_share,
                "quality": self.quality, "contradicted_hits": self.contradicted_hits}


@dataclass(frozen=True)
class Report:
    requests: int
    current: Side
    proposed: Side
    changed: tuple[str, ...]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "current": self.current.to_json(),
                "proposed": self.proposed.to_json()}

    def describe(self) -> str:
        c, p = self.current, self.proposed
        lines = [f"replayed {self.requests} logged requests in {self.seconds:.2f} s; changed: "
                 f"{', '.join(self.changed) or 'nothing'}",
                 f"{'':<22}{'now':>14}{'with your change':>20}"]

        def row(label: str, a: str, b: str) -> None:
            lines.append(f"{label:<22}{a:>14}{b:>20}")

        row("hit rate", f"{c.hit_rate:.1%}", f"{p.hit_rate:.1%}")
        for lvl in ("L4", "L1"):
            row(f"  {lvl} hit rate", f"{c.hit_rate_by_level[lvl]:.1%}", f"{p.hit_rate_by_level[lvl]:.1%}")
        row("saved $", f"{c.saved_usd:.6f}", f"{p.saved_usd:.6f}")
        row("saved ms", f"{c.saved_ms:.0f}", f"{p.saved_ms:.0f}")
        row("cost $ (misses)", f"{c.cost_usd:.6f}", f"{p.cost_usd:.6f}")
        row("contradicted hits", str(c.contradicted_hits), str(p.contradicted_hits))
        row("quality", _q(c.quality), _q(p.quality))
        lines.append("quality: " + _q_note(p.quality))
        for m in sorted(set(c.model_share) | set(p.model_share)):
            row(f"  share {m}"[:22], f"{c.model_share.get(m, 0):.1%}", f"{p.model_share.get(m, 0):.1%}")
        return "\n".join(lines)


def _q(q: dict[str, Any]) -> str:
    return "-" if q["mean"] is None else f"{q['mean']:.3f}"


def _q_note(q: dict[str, Any]) -> str:
    return (f"{q['from_labels']} answers from labels (feedback, experiments), {q['estimated']} estimated "
            f"by the learned router, {q['unknown']} unknown")


class Replay:
    """The logged traffic loaded once; `side(tun)` replays it with any tunables."""

    @paused()  # building the log and replaying it allocate millions of objects (see `collector`)
    def __init__(self, engine: Any, since: float | None = None, context: bool = True) -> None:
        self.engine = engine
        rows = read_rows(engine.database, engine.embedder, since)
        columns = rows.columns()
        if not columns[0]:
            raise ConfigError("whatif: the request log is empty" + (" since that time" if since else "")
                              + "; serve some requests first (inferscale ask, batch, the Playground)")
        self.logged: list[Logged] = build(rows)
        # From the log's columns: the vectors as one read of the joined blobs. (Run in a thread beside
        # `build` it was no faster on a busy 2-core machine: its many short numpy calls wait for the GIL.)
        self.near: Near = neighbours_of(*columns)
        self.labels: Labels = load_labels(engine, self.logged)
        self.context = engine.embedder.span_similarity if context else None
        try:
            self.learned: RouterModel | None = load_cached(engine.settings.home)
        except RouterArtefactError:
            self.learned = None
        self.pred = (self.learned.predict(np.stack([r.v_last for r in self.logged]))
                     if self.learned is not None else None)
        self._routes: dict[str, list[Routed]] = {}
        self._served: dict[str, list[Served]] = {}
        self._verdicts = Verdicts()  # the verifier's verdicts, reused between tunables where they can be
        # per replay run: its knobs besides the verifier's, its verifier config and lexicon, the
        # verdicts it asked for, and what it served
        self._traces: list[tuple[tuple, VerifyConfig, Any, list[Hashable], list[Served]]] = []

    @paused()
    def served(self, tun: Tunables) -> list[Served]:
        key = cache_knobs(tun)
        if key not in self._served:
            same = self._same_replay(tun)
            self._served[key] = same if same is not None else self._replay(tun)
        return self._served[key]

    def _replay(self, tun: Tunables) -> list[Served]:
        lexicon = default_lexicon()
        asked: list[Hashable] = []
        out = replay_cache(self.logged, tun, self.near, self.context, self._verdicts, consulted=asked)
        if self._verdicts.serving(self.context, lexicon) is self._verdicts:  # its verdicts are kept here
            self._traces.append((beside_verdicts(tun), verify_config(tun), lexicon, asked, out))
        return out

    def _same_replay(self, tun: Tunables) -> list[Served] | None:
        """An earlier replay this one would repeat step for step: the same knobs besides the
        verifier's, and every verdict it asked for the same with this verifier config (a slider
        moved where no verdict of the logged traffic looks)."""
        beside, cfg, lexicon = beside_verdicts(tun), verify_config(tun), default_lexicon()
        for was_beside, was_cfg, was_lexicon, asked, out in self._traces:
            if (was_beside == beside and was_lexicon is lexicon
                    and self._verdicts.agree(asked, was_cfg, cfg)):
                return out
        return None

    @paused()
    def routes(self, tun: Tunables) -> list[Routed]:
        key = routing_knobs(tun)
        if key not in self._routes:
            self._routes[key] = replay_routes(self.engine, self.logged, tun, self.labels, self.learned, self.pred)
        return self._routes[key]

    @paused()
    def side(self, tun: Tunables) -> Side:
        served, routed = self.served(tun), self.routes(tun)
        n = len(self.logged)
        levels = Counter(s.level for s in served)
        saved_usd = saved_ms = 0.0
        contradicted = 0
        shares: Counter[str] = Counter()
        cost = 0.0
        qs: list[float] = []
        src_count: Counter[str] = Counter()
        lb = self.labels
        known = bool(lb.bad_answers or lb.good_text or lb.expected)  # else no hit can contradict one
        for i, s in enumerate(served):
            if s.level is not None and s.source is not None:
                saved_usd += routed[s.source].cost_usd
                saved_ms += self.logged[s.source].latency_ms
                if known and self._contradicts(i, s.source):
                    contradicted += 1
                continue
            r = routed[i]
            shares[r.model or "(refused)"] += 1
            cost += r.cost_usd
            src_count[r.quality_source] += 1
            if r.quality is not None:
                qs.append(r.quality)
        misses = sum(shares.values())
        return Side(
            hit_rate=(levels["L4"] + levels["L1"]) / n,
            hit_rate_by_level={"L4": levels["L4"] / n, "L1": levels["L1"] / n},
            saved_usd=saved_usd, saved_ms=saved_ms, cost_usd=cost,
            model_share={m: c / misses for m, c in sorted(shares.items())} if misses else {},
            quality={"mean": float(np.mean(qs)) if qs else None, "from_labels": src_count["label"],
                     "estimated": src_count["estimate"], "unknown": src_count["unknown"]},
            contradicted_hits=contradicted,
        )

    def _contradicts(self, i: int, src: int) -> bool:
        served = self.logged[src]
        if served.request_id in self.labels.bad_answers:
            return True
        known = self.labels.known_answer(self.logged[i])
        return known is not None and not same_answer(served.answer, known)

    def threshold_curve(self, tun: Tunables, thresholds: list[float]) -> list[dict[str, float]]:
        """Hit rate of the logged traffic as `semantic_threshold` varies (the floor kept below it)."""
        out = []
        for t in thresholds:
            variant = replace(tun, semantic_threshold=t, semantic_floor=min(tun.semantic_floor, t))
            served = self.served(variant)
            n = len(served)
            out.append({"threshold": t, "hit_rate": sum(s.level is not None for s in served) / n,
                        "l1_hit_rate": sum(s.level == "L1" for s in served) / n})
        return out


@paused()  # one pause over the whole replay: each end of one is followed by a collection
def whatif(engine: Any, proposed: Tunables, since: float | None = None, replay: Replay | None = None) -> Report:
    t0 = time.perf_counter()
    rp = replay or Replay(engine, since)
    current = engine.tunables()
    changed = tuple(k for k, v in proposed.to_dict().items() if current.to_dict()[k] != v)
    return Report(len(rp.logged), rp.side(current), rp.side(proposed), changed, time.perf_counter() - t0)
