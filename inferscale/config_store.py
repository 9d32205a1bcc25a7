"""Tunables persisted in the `settings` table: one JSON value per key, validated on every write."""

from __future__ import annotations

import json
import time

from .db import Database
from .errors import ConfigError
from .settings import Tunables


class TunablesStore:
    def __init__(self, database: Database) -> None:
        self._dbh = database
        # The rows last read and what they parsed to: every request loads the tunables (a change
        # saved by another process applies to the next one), but reading the rows is a tenth of
        # validating them again. `Tunables` is frozen, so one instance may serve many requests.
        self._parsed: tuple[list[tuple[str, str]], Tunables] | None = None

    def load(self) -> Tunables:
        rows = self._dbh.db.execute("SELECT key, value FROM settings ORDER BY key").fetchall()
        if (parsed := self._parsed) is not None and parsed[0] == rows:
            return parsed[1]
        data = {k: json.loads(v) for k, v in rows}
        known = set(Tunables().to_dict())
        # Keys from a newer/older version are ignored rather than breaking startup.
        tun = Tunables.from_dict({k: v for k, v in data.items() if k in known})
        self._parsed = (rows, tun)
        return tun

    def save(self, tunables: Tunables) -> Tunables:
        tunables.validate()  # raises ConfigError before anything is written
        self._check_changes(tunables)
        now = time.time()
        with self._dbh.tx() as db:
            for key, value in tunables.to_dict().items():
                db.execute(
                    "INSERT OR REPLACE INTO settings (key, value, updated_at) VALUES (?, ?, ?)",
                    [key, json.dumps(value), now],
                )
        return tunables

    def set(self, key: str, raw: str) -> Tunables:
        new = self.load().with_value(key, raw)
        if key in ("fixed_models", "complexity_thresholds") and raw.strip() and not getattr(new, key):
            raise ConfigError(f"{key}: no values in {raw!r} (give a comma-separated list)")
        return self.save(new)

    def _check_changes(self, new: Tunables) -> None:
        """Checks against the registry, where a value is set (CLI or Tuning page): a model id that
        does not exist is refused then, not found out when the router silently ignores it."""
        from .registry import Registry, unknown_id_message

        old = self.load()
        if new.complexity_thresholds != old.complexity_thresholds and not new.complexity_thresholds:
            raise ConfigError("complexity_thresholds: give at least one threshold in [0, 1]")
        wanted = []
        if new.fixed_models != old.fixed_models:
            wanted += [("fixed_models", m) for m in new.fixed_models]
        if new.judge_model != old.judge_model and new.judge_model:
            wanted.append(("judge_model", new.judge_model))
        if new.semantic_judge_model != old.semantic_judge_model and new.semantic_judge_model:
            wanted.append(("semantic_judge_model", new.semantic_judge_model))
        if not wanted:
            return
        specs = {s.id: s for s in Registry(self._dbh).list()}
        for key, model_id in wanted:
            if model_id not in specs:
                raise ConfigError(f"{key}: {unknown_id_message(model_id, list(specs))}")
            if key == "semantic_judge_model" and specs[model_id].is_local:
                # It runs inside every L1 lookup it judges: seconds on a CPU, where a lookup takes ms.
                raise ConfigError(f"semantic_judge_model: {model_id!r} is a local model; the cache judge "
                                  "must be a remote (litellm) model")

    def stale_references(self) -> list[str]:
        """Model ids the stored tunables name that are missing or unavailable now (a model removed
        or disabled after it was set), one sentence each."""
        from .registry import Registry

        tun = self.load()
        specs = {s.id: s for s in Registry(self._dbh).list()}
        out = []
        for key, ids in (("fixed_models", tun.fixed_models), ("judge_model", (tun.judge_model,)),
                         ("semantic_judge_model", (tun.semantic_judge_model,))):
            for model_id in (i for i in ids if i):
                spec = specs.get(model_id)
                if spec is None:
                    out.append(f"{key} names {model_id!r}, which is not in the registry")
                elif why := spec.unavailable_reason():
                    out.append(f"{key} names {model_id!r}, which is unavailable: {why}")
        return out

    def reset(self) -> Tunables:
        with self._dbh.tx() as db:
            db.execute("DELETE FROM settings")
        return Tunables()
