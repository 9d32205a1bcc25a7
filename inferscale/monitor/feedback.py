"""Feedback on answers: 👍/👎 on a request's final answer or on one model's answer, with an optional
corrected answer. Stored beside the request; the learned router trains on it and the what-if replay
counts cache hits that contradict it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ..db import Database
from ..errors import ConfigError, InferscaleError

RATINGS = ("good", "bad")
SOURCES = ("cli", "playground", "gateway", "api")


class UnknownRequestError(InferscaleError):
    """Feedback for a request id that is not in the log."""


@dataclass(frozen=True)
class Feedback:
    request_id: str
    rating: str  # good | bad
    answer: str | None = None  # the corrected answer, if given
    model: str | None = None  # the model card rated; None = the final answer
    source: str = "api"
    ts: float = 0.0

    def __post_init__(self) -> None:
        if self.rating not in RATINGS:
            raise ConfigError(f"rating must be good or bad, got {self.rating!r}")
        if self.source not in SOURCES:
            raise ConfigError(f"feedback source must be one of {', '.join(SOURCES)}, got {self.source!r}")

    @property
    def good(self) -> bool:
        return self.rating == "good"


class FeedbackStore:
    def __init__(self, database: Database) -> None:
        self._dbh = database

    def add(self, request_id: str, rating: str, *, answer: str | None = None, model: str | None = None,
            source: str = "api") -> Feedback:
        """Validate, then store. The request must exist; a model must have taken part in it."""
        rating = (rating or "").strip().lower()
        if answer is not None and not answer.strip():
            answer = None
        fb = Feedback(request_id, rating, answer, model or None, source, time.time())
        row = self._dbh.db.execute("SELECT models FROM requests WHERE id = ?", [request_id]).fetchone()
        if row is None:
            raise UnknownRequestError(f"unknown request id {request_id!r} (see the Performance page or "
                                      "`inferscale ask --json` for request ids)")
        if fb.model is not None:
            took_part = set(json.loads(row[0] or "[]")) | {r[0] for r in self._dbh.db.execute(
                "SELECT DISTINCT model FROM model_calls WHERE request_id = ?", [request_id]).fetchall()}
            if fb.model not in took_part:
                raise ConfigError(f"model {fb.model!r} did not answer request {request_id}; it was answered "
                                  f"by {', '.join(sorted(took_part)) or 'no model'}")
        with self._dbh.tx() as db:
            db["feedback"].insert({"request_id": fb.request_id, "ts": fb.ts, "rating": fb.rating,
                                   "answer": fb.answer, "model": fb.model, "source": fb.source})
        return fb

    def for_request(self, request_id: str) -> list[Feedback]:
        return self._read("WHERE request_id = ?", [request_id])

    def all(self, since: float | None = None) -> list[Feedback]:
        return self._read("WHERE ts >= ?", [since]) if since is not None else self._read("", [])

    def _read(self, where: str, params: list[Any]) -> list[Feedback]:
        rows = self._dbh.db.execute(
            f"SELECT request_id, rating, answer, model, source, ts FROM feedback {where} ORDER BY ts, id",
            params).fetchall()
        return [Feedback(*r) for r in rows]

    def quality_over_time(self, bucket_s: float = 86400.0) -> list[dict[str, Any]]:
        """Share of good ratings per time bucket, model and strategy. Feedback on a final answer
        counts for the model that produced it when one did, else for "final answer"."""
        rows = self._dbh.db.execute(
            "SELECT f.ts, f.rating, f.model, r.models, r.strategy FROM feedback f"
            " JOIN requests r ON r.id = f.request_id ORDER BY f.ts").fetchall()
        agg: dict[tuple[float, str, str], list[int]] = {}
        for ts, rating, model, models, strategy in rows:
            if model is None:
                ids = json.loads(models or "[]")
                model = ids[0] if len(ids) == 1 else "final answer"
            bucket = ts - ts % bucket_s
            cell = agg.setdefault((bucket, model, strategy or ""), [0, 0])
            cell[0 if rating == "good" else 1] += 1
        return [{"bucket": b, "model": m, "strategy": s, "good": g, "bad": bad,
                 "quality": g / (g + bad)} for (b, m, s), (g, bad) in sorted(agg.items())]
