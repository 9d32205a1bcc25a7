"""The per-request log the what-if replay reads (`request_log`): written by the engine with each
finished request, read back in arrival order with the request's cost, tokens and feedback."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..db import Database
from ..embeddings import Embedder
from ..orchestration.replay import blob
from ..types import Analysis

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Logged:
    """One logged request as the replay sees it."""

    request_id: str
    ts: float
    prompt: str
    scope: str
    l4_key: str
    last: str
    history: str
    exact_hash: str
    v_last: np.ndarray
    v_hist: np.ndarray | None
    analysis: Analysis
    strategy: str
    router: str
    explicit: tuple[str, ...]
    answer: str
    models: tuple[str, ...]
    cost_usd: float  # what computing the answer cost (for a cache hit: what its entry had cost)
    latency_ms: float
    tokens_out: int  # answer tokens of the call that answered, for pricing another model


def read_log(database: Database, embedder: Embedder | None, since: float | None = None) -> list[Logged]:
    """Logged requests in arrival order. Vectors missing from the log are embedded now (exact
    backend) and written back, so the next replay does not embed them again."""
    db = database.db
    where = "WHERE l.ts >= ?" if since is not None else ""
    rows = db.execute(
        "SELECT l.request_id, l.ts, l.prompt, l.scope, l.l4_key, l.last, l.history, l.exact_hash,"
        " l.v_last, l.v_hist, l.tokens, l.complexity, l.domain, l.capability, l.strategy, l.router,"
        " l.explicit_models, r.answer, r.models, r.cost_usd, r.latency_ms, r.cache_level,"
        " (SELECT COALESCE(MAX(tokens_out), 0) FROM model_calls c WHERE c.request_id = l.request_id),"
        " r.saved_usd"
        f" FROM request_log l JOIN requests r ON r.id = l.request_id AND r.status = 'ok' {where}"
        " ORDER BY l.ts, l.rowid", [since] if since is not None else []).fetchall()
    _fill_vectors(database, embedder, rows)
    ids = lru_cache(maxsize=1024)(lambda s: tuple(json.loads(s)))  # model lists repeat: parse each once
    out = []
    for r in rows:
        vl = np.frombuffer(r[8], dtype=np.float32) if r[8] is not None else None
        if vl is None:
            continue  # no embedder given and never embedded: cannot be compared
        out.append(Logged(
            request_id=r[0], ts=r[1], prompt=r[2], scope=r[3], l4_key=r[4], last=r[5], history=r[6],
            exact_hash=r[7], v_last=vl,
            v_hist=np.frombuffer(r[9], dtype=np.float32) if r[9] is not None else None,
            analysis=Analysis(score=float(r[11] or 0.0), domain=r[12] or "chat", tokens=int(r[10] or 1),
                              capability=r[13] or "chat", breakdown=()),
            strategy=r[14] or "single", router=r[15] or "complexity",
            explicit=ids(r[16]) if r[16] else (),
            answer=r[17] or "", models=ids(r[18] or "[]"),
            cost_usd=float(r[19] or 0.0) if not r[21] else float(r[23] or 0.0), latency_ms=float(r[20] or 0.0),
            tokens_out=int(r[22] or 0),
        ))
    return out


def _fill_vectors(database: Database, embedder: Embedder | None, rows: list[Any]) -> None:
    todo = [i for i, r in enumerate(rows) if r[8] is None or (r[6] and r[9] is None)]
    if not todo or embedder is None:
        return
    texts = sorted({t for i in todo for t in (rows[i][5], rows[i][6]) if t})
    vecs = dict(zip(texts, embedder.embed(texts), strict=True))
    with database.tx() as db:
        for i in todo:
            r = list(rows[i])
            r[8] = blob(vecs[r[5]])
            r[9] = blob(vecs[r[6]]) if r[6] else None
            db.execute("UPDATE request_log SET v_last = ?, v_hist = ? WHERE request_id = ?", [r[8], r[9], r[0]])
            rows[i] = tuple(r)
