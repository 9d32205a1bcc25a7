"""Model registry: `ModelSpec` records persisted in SQLite, seeded from `data/models.yaml`."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .db import Database
from .errors import ConfigError, ModelUnavailableError, UnknownModelError

LOCAL_PREFIX = "local/"


class ModelSpec(BaseModel):
    """One model. Unknown fields are rejected so a typo in YAML never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    model: str = Field(min_length=1, description="litellm model string, e.g. openai/gpt-4o-mini")
    api_base: str | None = None
    api_key_env: str | None = None  # name of the environment variable holding the key, never the key
    input_price_per_1m: float | None = Field(default=None, ge=0)
    output_price_per_1m: float | None = Field(default=None, ge=0)
    context_window: int = Field(default=8192, gt=0)
    tags: tuple[str, ...] = ("chat",)
    quality_prior: float = Field(default=0.5, ge=0, le=1)
    latency_prior_ms: float = Field(default=1000, ge=0)
    timeout_s: float | None = Field(default=None, gt=0)  # per attempt; None = the global default
    enabled: bool = True
    notes: str = ""

    @field_validator("input_price_per_1m", "output_price_per_1m", "quality_prior", "latency_prior_ms",
                     "timeout_s")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        # Guard against a pasted key: the field holds a variable *name*.
        if v is not None and (not v.replace("_", "").isalnum() or v.startswith("sk-")):
            raise ValueError("must be an environment variable name such as OPENAI_API_KEY, not a key")
        return v

    @property
    def is_local(self) -> bool:
        return self.model.startswith(LOCAL_PREFIX)

    def missing_key(self) -> str | None:
        """The name of the unset key variable, or None when the model has what it needs."""
        if self.api_key_env and not os.environ.get(self.api_key_env):
            return self.api_key_env
        return None

    def unavailable_reason(self) -> str | None:
        if not self.enabled:
            return f"model {self.id!r} is disabled (inferscale models enable {self.id})"
        if var := self.missing_key():
            return f"model {self.id!r} needs the environment variable {var}"
        return None

    def public_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json")
        d["available"] = self.unavailable_reason() is None
        d["key_present"] = None if not self.api_key_env else self.missing_key() is None
        return d


def _format_validation(err: ValidationError, where: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    return f"{where}.{loc}: {msg}" if loc else f"{where}: {msg}"


def parse_models_yaml(text: str, source: str = "models.yaml") -> list[ModelSpec]:
    """Parse and validate a whole registry file; raises ConfigError naming the first bad field."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}: malformed YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise ConfigError(f"{source}: expected a top-level key 'models:' holding a list")
    extra = sorted(set(doc) - {"models"})
    if extra:
        raise ConfigError(f"{source}: unknown top-level field {extra[0]!r}")
    specs: list[ModelSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(doc["models"]):
        where = f"{source}: models[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping of fields")
        try:
            spec = ModelSpec.model_validate(entry)
        except ValidationError as exc:
            name = entry.get("id")
            raise ConfigError(_format_validation(exc, where + (f" ({name})" if name else ""))) from None
        if spec.id in seen:
            raise ConfigError(f"{where}.id: duplicate id {spec.id!r}")
        seen.add(spec.id)
        if spec.enabled and (var := spec.missing_key()):
            raise ConfigError(
                f"{where}.api_key_env: model {spec.id!r} is enabled but {var} is not set "
                "(set it, or import with enabled: false)"
            )
        specs.append(spec)
    return specs


# `Registry.list` shadows the builtin inside the class body.
SpecList = list[ModelSpec]


class Registry:
    """Models in the `models` table. Reads are cheap; writes are validated first, then atomic."""

    def __init__(self, database: Database, seed: Path | None = None) -> None:
        self._dbh = database
        if seed is not None and not self._dbh.db["models"].count:
            self.import_yaml(seed, _initial=True)

    def list(self) -> list[ModelSpec]:
        rows = self._dbh.db.query("SELECT spec FROM models ORDER BY position, id")
        return [ModelSpec.model_validate_json(r["spec"]) for r in rows]

    def get(self, model_id: str) -> ModelSpec:
        row = self._dbh.db.execute("SELECT spec FROM models WHERE id = ?", [model_id]).fetchone()
        if row is None:
            known = ", ".join(s.id for s in self.list())
            raise UnknownModelError(f"unknown model id {model_id!r}; known: {known}")
        return ModelSpec.model_validate_json(row[0])

    def available(self) -> SpecList:
        return [s for s in self.list() if s.unavailable_reason() is None]

    def require_available(self, model_id: str) -> ModelSpec:
        spec = self.get(model_id)
        if reason := spec.unavailable_reason():
            raise ModelUnavailableError(reason)
        return spec

    def upsert(self, specs: SpecList) -> None:
        with self._dbh.tx():  # one transaction: all or nothing
            self._upsert(specs)

    def _upsert(self, specs: SpecList) -> None:
        db = self._dbh.db
        row = db.execute("SELECT COALESCE(MAX(position), -1) FROM models").fetchone()
        next_pos = row[0] + 1
        for spec in specs:
            old = db.execute("SELECT position FROM models WHERE id = ?", [spec.id]).fetchone()
            pos = old[0] if old else next_pos
            next_pos += 0 if old else 1
            db.execute(
                "INSERT OR REPLACE INTO models (id, spec, enabled, position, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [spec.id, spec.model_dump_json(), int(spec.enabled), pos, time.time()],
            )

    def import_yaml(self, path: Path | str, _initial: bool = False) -> SpecList:
        """Validate the whole file, then merge it in (existing models not in the file are kept)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{p}: no such file") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{p}: not UTF-8 text") from None
        specs = parse_models_yaml(text, source=p.name)
        self.upsert(specs)
        return specs

    def set_enabled(self, model_id: str, enabled: bool) -> ModelSpec:
        spec = self.get(model_id)
        if enabled and (var := spec.missing_key()):
            raise ConfigError(f"cannot enable {model_id!r}: environment variable {var} is not set")
        new = spec.model_copy(update={"enabled": enabled})
        self.upsert([new])
        return new

    def to_json(self) -> str:
        return json.dumps([s.public_dict() for s in self.list()], indent=2)
