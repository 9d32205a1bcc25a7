"""Model registry: `ModelSpec` records persisted in SQLite, seeded from `data/models.yaml`."""

from __future__ import annotations

import builtins
import json
import logging
import math
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .db import Database
from .errors import ConfigError, ModelUnavailableError, UnknownModelError
from .inputs import MAX_JSON_DEPTH, json_depth, read_text

log = logging.getLogger("inferscale.registry")
LOCAL_PREFIX = "local/"
MAX_ID_CHARS = 200
MAX_LISTED_IDS = 10  # an unknown-id error lists this many known ids, then "… and N more"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


def looks_like_env_name(v: str) -> bool:
    """An environment variable name, not a pasted key: letters, digits and underscores in one case
    (keys mix cases), and not a long run of letters and digits without any underscore."""
    if not _ENV_NAME.match(v) or v.startswith("sk-"):
        return False
    if v != v.upper() and v != v.lower():
        return False
    return not ("_" not in v and len(v) >= 20 and any(c.isdigit() for c in v))


def unknown_id_message(model_id: str, known: list[str], total: int | None = None) -> str:
    """At most MAX_LISTED_IDS of the known ids (a registry may hold 20,000), then how many more."""
    total = len(known) if total is None else total
    shown = ", ".join(known[:MAX_LISTED_IDS])
    rest = total - min(len(known), MAX_LISTED_IDS)
    more = f" … and {rest} more (inferscale models)" if rest > 0 else ""
    return f"unknown model id {model_id!r}; known: {shown}{more}"


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
        if v is not None and not looks_like_env_name(v):
            raise ValueError("must be an environment variable name such as OPENAI_API_KEY, not a key")
        return v

    @field_validator("id", "model")
    @classmethod
    def _printable_name(cls, v: str) -> str:
        # Printed by `models`, `ask`, the dashboard: no NUL, control or terminal escape characters.
        if len(v) > MAX_ID_CHARS:
            raise ValueError(f"at most {MAX_ID_CHARS} characters")
        if not v.isprintable() or v != v.strip():
            raise ValueError("must be printable text without control characters or surrounding spaces")
        return v

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parsed = urlparse(v)
        if (len(v) > 2048 or not v.isprintable() or parsed.scheme not in ("http", "https")
                or not parsed.netloc or " " in v):
            raise ValueError("must be an http:// or https:// URL")
        return v

    @field_validator("tags")
    @classmethod
    def _printable_tags(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(v) > 32 or any(len(t) > 64 or not t.isprintable() for t in v):
            raise ValueError("at most 32 printable tags of at most 64 characters")
        return v

    @field_validator("notes")
    @classmethod
    def _printable_notes(cls, v: str) -> str:
        if len(v) > 4000 or not v.replace("\n", "").replace("\t", "").isprintable():
            raise ValueError("at most 4000 characters of printable text")
        return v

    @model_validator(mode="after")
    def _local_reserved(self) -> ModelSpec:
        # An import must not be able to pass a remote server off as a built-in local model (the
        # CLI would show it local and free while prompts and the bearer key went elsewhere).
        if self.id.startswith(LOCAL_PREFIX) and (not self.model.startswith(LOCAL_PREFIX) or self.api_base):
            raise ValueError(f"ids under {LOCAL_PREFIX!r} are reserved for the local provider "
                             f"(model: local/…, no api_base)")
        if self.model.startswith(LOCAL_PREFIX) and (self.api_base or self.api_key_env):
            raise ValueError("a local/ model runs in-process: no api_base or api_key_env")
        return self

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
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply") from None
    if json_depth(doc) > MAX_JSON_DEPTH:
        raise ConfigError(f"{source}: YAML nested too deeply (at most {MAX_JSON_DEPTH} levels)")
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
        self._parsed: tuple[list[tuple[str, str]], list[ModelSpec]] | None = None  # see `list`
        if seed is not None and not self._dbh.db["models"].count:
            self.import_yaml(seed, _initial=True)

    def list(self) -> list[ModelSpec]:
        rows = self._dbh.db.execute("SELECT id, spec FROM models ORDER BY position, id").fetchall()
        # Parsed again only when a row changed (another process may have edited the registry):
        # every request lists the models, and validating each spec was most of that.
        if (parsed := self._parsed) is not None and parsed[0] == rows:
            return list(parsed[1])
        specs = self._parse(rows)
        self._parsed = (rows, specs)
        return list(specs)

    @staticmethod
    def _parse(rows: Sequence[tuple[str, str]]) -> SpecList:
        specs = []
        for model_id, spec in rows:
            try:
                specs.append(ModelSpec.model_validate_json(spec))
            except ValidationError as exc:
                # Stored by an older, laxer version (a javascript: api_base, an id with escape
                # characters): unusable now, so left out rather than breaking every request.
                log.warning("registry entry %r is no longer valid, ignored: %s", model_id,
                            _format_validation(exc, "models"))
        return specs

    def get(self, model_id: str) -> ModelSpec:
        row = self._dbh.db.execute("SELECT spec FROM models WHERE id = ?", [model_id]).fetchone()
        if row is None:
            known = [r[0] for r in self._dbh.db.execute(
                "SELECT id FROM models ORDER BY position, id LIMIT ?", [MAX_LISTED_IDS]).fetchall()]
            total = self._dbh.db.execute("SELECT COUNT(*) FROM models").fetchone()[0]
            raise UnknownModelError(unknown_id_message(model_id, known, total))
        try:
            return ModelSpec.model_validate_json(row[0])
        except ValidationError as exc:
            raise ConfigError(f"stored entry {model_id!r} is invalid: {_format_validation(exc, 'models')} "
                              "(re-import it with models import --replace)") from None

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

    def import_yaml(self, path: Path | str, _initial: bool = False, replace: bool = False) -> SpecList:
        """Validate the whole file, then merge it in (existing models not in the file are kept).
        An entry that would change an existing model is refused unless `replace`."""
        specs, _ = self.plan_import(path, replace=replace)
        self.upsert(specs)
        return specs

    def plan_import(self, path: Path | str, replace: bool = False) -> tuple[SpecList, builtins.list[str]]:
        """(the file's specs, one line per existing model it would change). Raises ConfigError for
        a bad file, or for changes to existing models when `replace` is false."""
        p = Path(path)
        text = read_text(p, ConfigError)
        specs = parse_models_yaml(text, source=p.name)
        changes = []
        for spec in specs:
            row = self._dbh.db.execute("SELECT spec FROM models WHERE id = ?", [spec.id]).fetchone()
            if row is None:
                continue
            old = ModelSpec.model_validate_json(row[0])
            diff = [f"{k} {getattr(old, k)!r} → {getattr(spec, k)!r}" for k in ModelSpec.model_fields
                    if getattr(old, k) != getattr(spec, k)]
            if diff:
                changes.append(f"{spec.id}: " + ", ".join(diff))
        if changes and not replace:
            ids = ", ".join(c.split(": ", 1)[0] for c in changes[:MAX_LISTED_IDS])
            raise ConfigError(f"{p.name}: would replace existing model(s) {ids}; nothing imported "
                              "(pass --replace to replace them)")
        return specs, changes

    def set_enabled(self, model_id: str, enabled: bool) -> ModelSpec:
        spec = self.get(model_id)
        if enabled and (var := spec.missing_key()):
            raise ConfigError(f"cannot enable {model_id!r}: environment variable {var} is not set")
        new = spec.model_copy(update={"enabled": enabled})
        self.upsert([new])
        return new

    def to_json(self) -> str:
        return json.dumps([s.public_dict() for s in self.list()], indent=2)
