"""Experiments in SQLite: the `experiments` row (spec and status) and one `experiment_results` row
per (experiment, config, item), written as each completes, so a killed run resumes where it was.

Tables are created by the `m008_experiments` migration (inferscale/schema.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..db import Database

STATUSES = ("running", "done", "stopped (budget)", "interrupted")


@dataclass(frozen=True)
class ResultRow:
    experiment: str
    config: str
    item_id: str
    prompt: str
    system: str | None
    expected: str | None
    answer: str | None
    score: float | None
    correct: int | None
    error: str | None
    strategy: str
    models: str  # JSON list
    answered_by: str  # JSON list
    cost_usd: float
    latency_ms: float
    calls: int
    pass_at_k: int | None
    request_id: str | None
    ts: float
    reason: str = ""
    candidates: int = 0
    scorer: str = ""
    scorer_calls: int = 0
    scorer_cost_usd: float = 0.0
    spent_usd: float = 0.0  # what this item really cost now (cache hits are free)
    seq: int = 0  # the item's position in the dataset


class ExperimentStore:
    def __init__(self, database: Database) -> None:
        self._dbh = database

    def get(self, name: str) -> dict[str, Any] | None:
        row = self._dbh.db.execute(
            "SELECT name, dataset, created_at, updated_at, status, spec FROM experiments WHERE name = ?",
            [name]).fetchone()
        if row is None:
            return None
        keys = ("name", "dataset", "created_at", "updated_at", "status", "spec")
        out = dict(zip(keys, row, strict=True))
        out["spec"] = json.loads(out["spec"] or "{}")
        return out

    def create(self, name: str, dataset: str, spec: dict[str, Any]) -> None:
        now = time.time()
        with self._dbh.tx() as db:
            db.execute("INSERT INTO experiments (name, dataset, created_at, updated_at, status, spec) "
                       "VALUES (?, ?, ?, ?, 'running', ?)", [name, dataset, now, now, json.dumps(spec)])

    def update(self, name: str, *, status: str | None = None, spec: dict[str, Any] | None = None) -> None:
        sets: list[str] = ["updated_at = ?"]
        args: list[Any] = [time.time()]
        if status is not None:
            assert status in STATUSES, status
            sets.append("status = ?")
            args.append(status)
        if spec is not None:
            sets.append("spec = ?")
            args.append(json.dumps(spec))
        with self._dbh.tx() as db:
            db.execute(f"UPDATE experiments SET {', '.join(sets)} WHERE name = ?", [*args, name])

    def done_keys(self, name: str) -> set[tuple[str, str]]:
        rows = self._dbh.db.execute(
            "SELECT config, item_id FROM experiment_results WHERE experiment = ?", [name]).fetchall()
        return {(c, i) for c, i in rows}

    def write(self, row: ResultRow) -> bool:
        """Store one result; False when that (experiment, config, item) was already stored (the
        first one stands: a result is never counted twice)."""
        data = asdict(row)
        cols = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self._dbh.tx() as db:
            cur = db.execute(f"INSERT OR IGNORE INTO experiment_results ({cols}) VALUES ({marks})",
                             list(data.values()))
            return cur.rowcount == 1

    def results(self, name: str) -> list[dict[str, Any]]:
        cur = self._dbh.db.execute(
            "SELECT * FROM experiment_results WHERE experiment = ? ORDER BY config, seq, item_id", [name])
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def list(self) -> list[dict[str, Any]]:
        cur = self._dbh.db.execute(
            "SELECT e.name, e.dataset, e.created_at, e.updated_at, e.status, e.spec, "
            "(SELECT COUNT(*) FROM experiment_results r WHERE r.experiment = e.name) AS results "
            "FROM experiments e ORDER BY e.updated_at DESC")
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
        for r in rows:
            r["spec"] = json.loads(r["spec"] or "{}")
        return rows
