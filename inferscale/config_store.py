"""Tunables persisted in the `settings` table: one JSON value per key, validated on every write."""

from __future__ import annotations

import json
import time

from .db import Database
from .settings import Tunables


class TunablesStore:
    def __init__(self, database: Database) -> None:
        self._dbh = database

    def load(self) -> Tunables:
        rows = self._dbh.db.execute("SELECT key, value FROM settings").fetchall()
        data = {k: json.loads(v) for k, v in rows}
        known = set(Tunables().to_dict())
        # Keys from a newer/older version are ignored rather than breaking startup.
        return Tunables.from_dict({k: v for k, v in data.items() if k in known})

    def save(self, tunables: Tunables) -> Tunables:
        tunables.validate()  # raises ConfigError before anything is written
        now = time.time()
        with self._dbh.tx() as db:
            for key, value in tunables.to_dict().items():
                db.execute(
                    "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES (?, ?, ?)",
                    [key, json.dumps(value), now],
                )
        return tunables

    def set(self, key: str, raw: str) -> Tunables:
        return self.save(self.load().with_value(key, raw))

    def reset(self) -> Tunables:
        with self._dbh.tx() as db:
            db.execute("DELETE FROM settings")
        return Tunables()
