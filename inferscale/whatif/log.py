"""The per-request log the what-if replay reads (`request_log`): written by the engine with each
finished request, read back in arrival order with the request's cost, tokens and feedback."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..db import Database
from ..embeddings import Embedder
from ..orchestration.replay import blob
from ..types import Analysis

log = logging.getLogger(__name__)


class Logged(NamedTuple):
    """One logged request as the replay sees it. A named tuple, not a frozen dataclass: a replay
    builds one per logged request (100,000 of them) and a dataclass's `__init__` took five times as
    long; it is as immutable, and its fields read as fast."""

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
    return build(read_rows(database, embedder, since))


@dataclass(frozen=True)
class Rows:
    """The log as read, before its records are built: `columns()` is what the neighbour search needs."""

    log: list[Any]  # request_log rows with their vectors, of finished requests, in arrival order
    done: dict[str, Any]  # request id -> (id, answer, models, cost, latency, cache level, saved)
    tokens_out: dict[str, int]

    def columns(self) -> tuple[list[str], list[str], list[bytes], list[bytes | None]]:
        """Scope, exact hash, and the last message's and earlier turns' vector blobs per request."""
        kept = [r for r in self.log if r[8] is not None]
        return [r[3] for r in kept], [r[7] for r in kept], [r[8] for r in kept], [r[9] for r in kept]


def read_rows(database: Database, embedder: Embedder | None, since: float | None = None) -> Rows:
    db = database.db
    where, args = ("WHERE ts >= ?", [since]) if since is not None else ("", [])
    # Three plain reads joined here: one joined query spent as long looking rows up as reading them.
    rows = db.execute(
        "SELECT request_id, ts, prompt, scope, l4_key, last, history, exact_hash, v_last, v_hist, tokens,"
        f" complexity, domain, capability, strategy, router, explicit_models FROM request_log {where}"
        " ORDER BY ts, rowid", args).fetchall()
    logged_ids = f" AND {{}} IN (SELECT request_id FROM request_log {where})" if since is not None else ""
    done = {r[0]: r for r in db.execute(
        "SELECT id, answer, models, cost_usd, latency_ms, cache_level, saved_usd FROM requests"
        " WHERE status = 'ok'" + logged_ids.format("id"), args)}
    tokens_out = dict(db.execute(
        "SELECT request_id, MAX(tokens_out) FROM model_calls WHERE 1" + logged_ids.format("request_id")
        + " GROUP BY request_id", args).fetchall())
    rows = [r for r in rows if r[0] in done]
    _fill_vectors(database, embedder, rows)
    return Rows(rows, done, tokens_out)


def build(rows: Rows) -> list[Logged]:
    """The records of the requests whose vectors are known, in arrival order."""
    done, tokens_out = rows.done, rows.tokens_out
    parsed: dict[str, tuple[str, ...]] = {}  # model lists repeat: each parsed once
    analyses: dict[tuple[Any, ...], Analysis] = {}  # (complexity, domain, tokens, capability) repeat too
    frombuffer, f32 = np.frombuffer, np.float32
    out = []
    for r in rows.log:
        if r[8] is None:
            continue  # no embedder given and never embedded: cannot be compared
        _, answer, models, cost, latency, level, saved = done[r[0]]
        key = (r[11], r[12], r[10], r[13])
        an = analyses.get(key)
        if an is None:
            an = analyses[key] = Analysis(score=float(r[11] or 0.0), domain=r[12] or "chat",
                                          tokens=int(r[10] or 1), capability=r[13] or "chat", breakdown=())
        explicit = r[16] or "[]"
        models = models or "[]"
        if explicit not in parsed:
            parsed[explicit] = tuple(json.loads(explicit))
        if models not in parsed:
            parsed[models] = tuple(json.loads(models))
        # positional, in the order of the fields (a keyword call costs a third more, 100,000 times)
        out.append(Logged(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],  # request_id … exact_hash, as selected
            frombuffer(r[8], dtype=f32), frombuffer(r[9], dtype=f32) if r[9] is not None else None,
            an, r[14] or "single", r[15] or "complexity", parsed[explicit],  # strategy, router, explicit
            answer or "", parsed[models],
            float(cost or 0.0) if not level else float(saved or 0.0), float(latency or 0.0),  # cost, latency
            int(tokens_out.get(r[0]) or 0),
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
