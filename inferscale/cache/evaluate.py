"""`inferscale cache-eval`: how often would L1 serve a cached answer it should, and one it shouldn't?

For each labelled pair (a, b, same) the question is: with an empty cache holding only `a`, does a
lookup of `b` hit? With one entry in the cache, Chroma's nearest neighbour *is* that entry, so the
lookup reduces to "cosine of the two embeddings, then `verify.decide`". The fast path computes exactly
that for all pairs with batched embeddings and the same `decide` the cache runs; `faithful=True`
runs a real `SemanticCache` (SQLite + Chroma in a temporary directory) per pair instead — the tests
check that both agree. With a `judge` (`cache-eval --judge`), a borderline pair is decided by it,
as in the cache: one call per such pair, counted with its cost in the report's `judge`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..embeddings import Embedder
from ..errors import InferscaleError
from .chat import decide
from .judge import Judge, JudgeCall, in_band
from .lexicon import Lexicon, default_lexicon
from .scope import Query, build_query
from .semantic import Vectors
from .turns import Candidate
from .verify import VerifyConfig

SWEEP = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.50 … 0.95


@dataclass(frozen=True)
class Pair:
    a: list[dict[str, str]]
    b: list[dict[str, str]]
    same: bool
    id: str = ""
    group: str = ""
    half: str = ""  # "dev" (parameters chosen on it) or "test" (held out); "" when the set has none


@dataclass(frozen=True)
class Outcome:
    pair: Pair
    served: bool
    similarity: float
    reason: str
    check: str = ""  # the check that decided
    judged: JudgeCall | None = None  # the judge's call, when the pair was borderline and a judge set


def _messages(item: dict[str, Any], side: str, where: str) -> list[dict[str, str]]:
    msgs = item.get(f"{side}_messages")
    if msgs is None:
        text = item.get(side)
        if not isinstance(text, str):
            raise InferscaleError(f"{where}: '{side}' must be a string (or give '{side}_messages')")
        return [{"role": "user", "content": text}]
    if not isinstance(msgs, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in
            ("user", "assistant", "system") for m in msgs):
        raise InferscaleError(f"{where}: '{side}_messages' must be a list of {{role, content}}")
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def load_pairs(path: str | Path) -> list[Pair]:
    """Read a JSONL file of {"a", "b", "same"} (optionally a_messages / b_messages)."""
    from ..inputs import MAX_JSON_DEPTH, iter_lines, json_depth

    p = Path(path)
    pairs = []
    for n, line in iter_lines(p, InferscaleError):  # a regular file under the size cap; names the path's problem
        if not line.strip():
            continue
        where = f"{p.name} line {n}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InferscaleError(f"{where}: not JSON ({exc.msg})") from None
        except RecursionError:
            raise InferscaleError(f"{where}: JSON nested too deeply") from None
        if json_depth(item) > MAX_JSON_DEPTH:
            raise InferscaleError(f"{where}: JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        if not isinstance(item, dict) or not isinstance(item.get("same"), bool):
            raise InferscaleError(f"{where}: each line needs \"a\", \"b\" and a boolean \"same\"")
        pairs.append(Pair(_messages(item, "a", where), _messages(item, "b", where), item["same"],
                          str(item.get("id", n)), str(item.get("group", ""))))
    if not pairs:
        raise InferscaleError(f"{p} has no pairs")
    return pairs


def _queries(pairs: list[Pair]) -> tuple[list[Query], list[Query]]:
    return ([build_query(p.a, scope="cache-eval") for p in pairs],
            [build_query(p.b, scope="cache-eval") for p in pairs])


def _embed_all(embedder: Embedder, qs: list[Query]) -> list[Vectors]:
    texts = list(dict.fromkeys([q.last for q in qs] + [q.history for q in qs if q.history]))
    mat = embedder.embed(texts)
    idx = {t: i for i, t in enumerate(texts)}
    return [Vectors(mat[idx[q.last]], mat[idx[q.history]] if q.history else None) for q in qs]


def score(pairs: list[Pair], config: VerifyConfig, embedder: Embedder,
          lexicon: Lexicon | None = None, judge: Judge | None = None) -> list[Outcome]:
    """The fast path: batched embeddings, then the cache's own `decide` per pair (and its judge)."""
    lexicon = lexicon or default_lexicon()
    qa, qb = _queries(pairs)
    va, vb = _embed_all(embedder, qa), _embed_all(embedder, qb)
    out = []
    for p, a, b, x, y in zip(pairs, qa, qb, va, vb, strict=True):
        sim_last = float(np.dot(x.last, y.last))
        sim_hist = float(np.dot(x.history, y.history)) if x.history is not None and y.history is not None \
            else None
        ca, cb = Candidate(a.last, a.history, a.exact_hash), Candidate(b.last, b.history, b.exact_hash)
        v = decide(ca, cb, sim_last, sim_hist, config, context=embedder.span_similarity, lexicon=lexicon)
        sim = min(sim_last, sim_hist) if sim_hist is not None else sim_last
        if judge is not None and in_band(v, sim, config, judge):
            said = judge.confirm(ca, cb)
            reason = f"{said.reason}: {v.reason}" if said.confirmed else f"{v.reason}; {said.reason}"
            out.append(Outcome(p, said.confirmed, sim, reason, "judge" if said.confirmed else v.check, said))
            continue
        out.append(Outcome(p, v.ok, sim, v.reason, v.check))
    return out


def score_faithful(pairs: list[Pair], config: VerifyConfig, embedder: Embedder,
                   lexicon: Lexicon | None = None, judge: Judge | None = None) -> list[Outcome]:
    """Slow path: a fresh SQLite + Chroma cache per pair; store a, look up b."""
    from ..db import Database
    from .chroma_index import ChromaIndex
    from .semantic import SemanticCache

    out = []
    for p in pairs:
        with tempfile.TemporaryDirectory(prefix="inferscale-eval-") as tmp:
            cache = SemanticCache(Database(Path(tmp) / "eval.db"), ChromaIndex(Path(tmp) / "chroma"), embedder,
                                  lexicon=lexicon)
            qa, qb = build_query(p.a, scope="cache-eval"), build_query(p.b, scope="cache-eval")
            cache.put(qa, {"answer": "cached"}, 0.0, 0.0)
            r = cache.lookup(qb, config, judge=judge)
            sim = r.match.similarity if r.match else float("nan")
            out.append(Outcome(p, r.match is not None, sim, r.match.reason if r.match else
                               "; ".join(r.rejected) or (r.error or "no candidate"), judged=r.judged))
    return out


def report(outcomes: list[Outcome]) -> dict[str, Any]:
    tp = sum(o.served and o.pair.same for o in outcomes)
    fp = sum(o.served and not o.pair.same for o in outcomes)
    fn = sum(not o.served and o.pair.same for o in outcomes)
    tn = sum(not o.served and not o.pair.same for o in outcomes)
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(o.pair.group or ("same" if o.pair.same else "different"), []).append(o)
    return {
        "pairs": len(outcomes),
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "false_hit_rate": fp / (fp + tn) if fp + tn else None,
        "counts": {"true_hits": tp, "false_hits": fp, "missed": fn, "correct_misses": tn},
        "served_by_group": {g: round(sum(o.served for o in os) / len(os), 4) for g, os in groups.items()},
    }


def evaluate(pairs: list[Pair], config: VerifyConfig, embedder: Embedder, *, sweep: bool = False,
             halves: bool = False, faithful: bool = False, lexicon: Lexicon | None = None,
             outcomes: list[Outcome] | None = None, judge: Judge | None = None) -> dict[str, Any]:
    """Score `pairs` and report; the per-pair outcomes are appended to `outcomes` when given. The
    sweep is without the judge (it would call it again at every threshold)."""
    lexicon = lexicon or default_lexicon()
    scored = (score_faithful if faithful else score)(pairs, config, embedder, lexicon, judge)
    if outcomes is not None:
        outcomes.extend(scored)
    outcomes = scored
    out = report(outcomes)
    out["threshold"] = config.threshold
    if judge is not None:
        calls = [o.judged for o in outcomes if o.judged is not None]
        out["judge"] = {"model": judge.model, "calls": len(calls), "confirmed": sum(c.confirmed for c in calls),
                        "failed": sum(c.call is None or not c.call.ok for c in calls),
                        "cost_usd": sum(c.cost_usd for c in calls)}
    if halves:
        out["halves"] = {h: report([o for o in outcomes if o.pair.half == h]) for h in ("dev", "test")}
    if sweep:
        rows = []
        for t in SWEEP:
            cfg = replace(config, threshold=t, floor=min(config.floor, t),
                          rewrite_threshold=min(config.rewrite_threshold, t))
            r = report(score(pairs, cfg, embedder, lexicon))
            rows.append({"threshold": t, "recall": r["recall"], "false_hit_rate": r["false_hit_rate"],
                         "precision": r["precision"]})
        out["sweep"] = rows
    return out
