"""Settings: where state lives (built once from the environment) and the tunables (persisted in SQLite).

`Settings` is immutable process configuration. `Tunables` are the knobs a user changes live from the
CLI or the dashboard; they are stored in the `settings` table so a change survives restarts and takes
effect on the next request without one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS_YAML = REPO_ROOT / "data" / "models.yaml"


def prepare_offline_env() -> None:
    """Set the variables that keep litellm, Hugging Face and Chroma off the network.

    Must run before litellm / sentence-transformers / chromadb are imported; every lazy import site
    calls it, so importing `inferscale` itself stays free of side effects.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TQDM_DISABLE", "1")


# Entries up to which an L1 scope is scanned in-process: 7.7 MB of vectors, ~0.3 ms a scan.
L1_SCAN_MAX = 5000


@dataclass(frozen=True)
class Settings:
    """Process-wide configuration. Build with `Settings.from_env()` and pass it explicitly."""

    home: Path
    models_yaml: Path = DEFAULT_MODELS_YAML
    n_threads: int = 2
    cpu_hour_usd: float = 0.05  # price of one CPU-hour; local call cost = seconds x this / 3600
    # Per attempt; a model's own `timeout_s` overrides it. Remote: a provider silent for 60 s on a
    # request capped at max_tokens is stuck, and a retry costs another full wait. Local: calls to
    # one model queue on its lock on a 2-core machine (an ensemble or a batch waits its turn), and
    # that wait counts, so local models get longer.
    call_timeout_s: float = 60.0
    local_timeout_s: float = 180.0
    retry_backoff_s: float = 0.25  # first wait before a retry; doubles each attempt, with jitter
    retry_backoff_max_s: float = 8.0
    retry_after_max_s: float = 30.0  # a longer Retry-After makes us fall back instead of waiting
    max_attempts: int = 2  # per model call, first attempt included
    cooldown_failures: int = 3  # K failed calls of one model within the window → cooldown
    cooldown_window_s: float = 60.0
    cooldown_s: float = 30.0
    local_n_ctx: int = 4096  # llama.cpp context actually allocated (caps the model's window)
    models_dir_override: Path | None = None  # INFERSCALE_MODELS_DIR: share model files across homes
    embedding_backend: str = "onnx-int8"  # INFERSCALE_EMBEDDING_BACKEND: "onnx-int8" or "torch"
    # INFERSCALE_L1_SCAN_MAX: entries up to which an L1 scope is searched in-process from SQLite's
    # vectors and not written to Chroma (cache/chroma_mirror.py); 0 puts every scope in Chroma.
    l1_scan_max: int = L1_SCAN_MAX

    @classmethod
    def from_env(cls, home: str | Path | None = None, **overrides: Any) -> Settings:
        root = Path(home or os.environ.get("INFERSCALE_HOME") or REPO_ROOT / "data").expanduser()
        kw: dict[str, Any] = {"home": root.resolve(), "n_threads": cores()}
        if v := os.environ.get("INFERSCALE_CPU_HOUR_USD"):
            kw["cpu_hour_usd"] = _positive_float("INFERSCALE_CPU_HOUR_USD", v)
        if v := os.environ.get("INFERSCALE_CALL_TIMEOUT_S"):
            kw["call_timeout_s"] = _positive_float("INFERSCALE_CALL_TIMEOUT_S", v)
        if v := os.environ.get("INFERSCALE_LOCAL_TIMEOUT_S"):
            kw["local_timeout_s"] = _positive_float("INFERSCALE_LOCAL_TIMEOUT_S", v)
        if v := os.environ.get("INFERSCALE_RETRY_BACKOFF_S"):
            kw["retry_backoff_s"] = _positive_float("INFERSCALE_RETRY_BACKOFF_S", v)
        if v := os.environ.get("INFERSCALE_MAX_ATTEMPTS"):
            kw["max_attempts"] = max(1, int(_positive_float("INFERSCALE_MAX_ATTEMPTS", v)))
        if v := os.environ.get("INFERSCALE_COOLDOWN_S"):
            kw["cooldown_s"] = _positive_float("INFERSCALE_COOLDOWN_S", v)
        if v := os.environ.get("INFERSCALE_MODELS_DIR"):
            kw["models_dir_override"] = Path(v).expanduser().resolve()
        if v := os.environ.get("INFERSCALE_EMBEDDING_BACKEND"):
            kw["embedding_backend"] = v.strip()
        if v := os.environ.get("INFERSCALE_L1_SCAN_MAX"):
            kw["l1_scan_max"] = _count_env("INFERSCALE_L1_SCAN_MAX", v)
        if v := os.environ.get("INFERSCALE_MODELS_YAML"):
            kw["models_yaml"] = Path(v)
        kw.update(overrides)
        return cls(**kw)

    @property
    def db_path(self) -> Path:
        return self.home / "inferscale.db"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def models_dir(self) -> Path:
        return self.models_dir_override or self.home / "models"

    def ensure_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.models_dir.mkdir(parents=True, exist_ok=True)


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={raw!r} must be a finite number >= 0")
    return value


def _count_env(name: str, raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must be >= 0")
    return value


STRATEGY_NAMES = ("single", "ensemble", "cascade", "self-consistency", "best-of-n", "moa", "tree-search")
ROUTER_NAMES = ("complexity", "fixed", "cheapest", "quality", "learned")


_TUNABLES_CONFIG = ConfigDict(allow_inf_nan=False, extra="forbid", validate_default=False)


def _unit(default: float) -> Any:
    return Field(default, ge=0.0, le=1.0)


def _temperature(default: float) -> Any:
    return Field(default, ge=0.0, le=2.0)


def _count(default: int, low: int, high: int) -> Any:
    return Field(default, ge=low, le=high, strict=True)  # strict: True is not a count


def _size(default: float, low: float = 0.0) -> Any:
    return Field(default, ge=low)


@pydantic_dataclass(frozen=True, config=_TUNABLES_CONFIG)
class Tunables:
    """Live knobs, persisted in SQLite. A pydantic dataclass: each field carries its allowed range
    (NaN and infinities are refused everywhere), so a `Tunables` that exists is valid. The strategy
    configs and the cache verification take their defaults from here.

    `from_dict`, `with_value` and `validate` raise `ConfigError` with one line naming the field and
    what it allows; building one directly with a bad value raises pydantic's ValidationError."""

    # Complexity tiers: n ascending thresholds in [0,1] split the score range into n+1 tiers,
    # mapped onto the enabled models ordered from weakest to strongest quality prior.
    complexity_thresholds: tuple[float, ...] = Field(default=(0.35, 0.65))
    budget_usd: float | None = Field(default=None, ge=0.0)  # per-request cap on predicted cost; None = no cap
    default_router: str = "complexity"
    default_strategy: str = "single"
    ensemble_k: int = _count(2, 1, 16)
    max_tokens: int = _count(128, 1, 32768)
    temperature: float = _temperature(0.0)
    cache_enabled: bool = True
    fixed_models: tuple[str, ...] = Field(default_factory=tuple)
    # Strategy defaults (a request can override them with strategy options).
    call_budget: int = _count(24, 1, 1000)  # most model calls one request may make, judge calls included
    cascade_tau: float = _unit(0.8)  # cascade: escalate while confidence < tau
    samples_n: int = _count(5, 1, 64)  # self-consistency / best-of-n: how many samples or candidates
    sample_temperature: float = _temperature(0.7)  # temperature of those samples
    judge_model: str = ""  # best-of-n / tree-search judge; "" = the strongest available model
    moa_layers: int = _count(1, 1, 8)  # mixture-of-agents proposer layers before the aggregator
    tree_budget: int = _count(8, 1, 256)  # tree-search: nodes to generate
    # Cache (issue 4). L1 semantic: an edit of the cached prompt needs `semantic_threshold` cosine
    # (a one/two-word substitution or added qualifier: the focused/qualifier threshold); the same
    # meaningful words need only `semantic_floor`; a full rewrite `semantic_rewrite_threshold`;
    # a focused substitution under its threshold is still served from `semantic_context_floor` when
    # the swapped words agree in context to `semantic_context_threshold` (see inferscale/cache/verify.py).
    semantic_enabled: bool = True
    semantic_threshold: float = _unit(0.85)
    semantic_floor: float = _unit(0.40)
    semantic_focused_threshold: float = _unit(0.90)
    semantic_qualifier_threshold: float = _unit(0.90)
    semantic_history_threshold: float = _unit(0.70)
    semantic_rewrite_threshold: float = _unit(0.62)  # a rewrite keeping under half the wording
    semantic_context_floor: float = _unit(0.80)
    semantic_context_threshold: float = _unit(0.60)
    semantic_synonym_threshold: float = _unit(0.70)  # a substitution WordNet shows means the same
    semantic_rewrite_frame: float = _unit(0.5)  # share of wording kept below which a pair is a rewrite
    semantic_check_word_order: bool = True  # the same words in another order need evidence of symmetry
    semantic_role_span: int = _count(3, 1, 20)  # most words between two words a relation gives roles
    # The optional judge of the borderline band (issue 13), off by default: a remote registry model
    # asked, at most once per lookup, whether the most similar candidate that verification did not
    # reject but found short on similarity (and at least `semantic_judge_floor` similar, never below
    # `semantic_floor`) may be served; only its "yes" serves (inferscale/cache/judge.py).
    semantic_judge_model: str = ""  # a registry id of a remote model; "" = no judge
    semantic_judge_floor: float = _unit(0.40)
    semantic_judge_timeout_s: float = Field(default=5.0, ge=0.1, le=60.0)  # one attempt; then a miss
    # Per level: capacity in entries and MB, and TTL in seconds (0 = never expires).
    cache_l1_max_entries: int = _count(100_000, 1, 100_000_000)
    cache_l1_max_mb: float = _size(512.0, 0.001)
    cache_l1_ttl_s: float = _size(7 * 86400.0)
    cache_l2_max_entries: int = _count(200_000, 1, 100_000_000)
    cache_l2_max_mb: float = _size(256.0, 0.001)
    cache_l2_ttl_s: float = _size(0.0)
    cache_l3_max_entries: int = _count(100_000, 1, 100_000_000)
    cache_l3_max_mb: float = _size(512.0, 0.001)
    cache_l3_ttl_s: float = _size(7 * 86400.0)
    cache_l4_max_entries: int = _count(100_000, 1, 100_000_000)
    cache_l4_max_mb: float = _size(512.0, 0.001)
    cache_l4_ttl_s: float = _size(7 * 86400.0)
    # Learned router (issue 15): the cheapest model whose predicted quality clears the threshold
    # (set by `inferscale router calibrate`), or with lambda > 0 the best quality - lambda x $/1k requests.
    learned_threshold: float = _unit(0.5)
    learned_lambda: float = _size(0.0)

    @field_validator("complexity_thresholds")
    @classmethod
    def _thresholds(cls, th: tuple[float, ...]) -> tuple[float, ...]:
        for t in th:
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"complexity_thresholds: {t!r} is outside [0, 1]")
        if list(th) != sorted(th):
            raise ValueError(f"complexity_thresholds must be ascending, got {list(th)}")
        return th

    @field_validator("default_router")
    @classmethod
    def _router(cls, name: str) -> str:
        if name not in ROUTER_NAMES:
            raise ValueError(f"default_router must be one of {', '.join(ROUTER_NAMES)}, got {name!r}")
        return name

    @field_validator("default_strategy")
    @classmethod
    def _strategy(cls, name: str) -> str:
        if name not in STRATEGY_NAMES:
            raise ValueError(f"default_strategy must be one of {', '.join(STRATEGY_NAMES)}, got {name!r}")
        return name

    @model_validator(mode="after")
    def _floor_below_threshold(self) -> Tunables:
        if self.semantic_floor > self.semantic_threshold:
            raise ValueError(f"semantic_floor ({self.semantic_floor}) must be <= semantic_threshold "
                             f"({self.semantic_threshold})")
        return self

    def validate(self) -> Tunables:
        """Check every field again (a `Tunables` is validated when built; this is for callers that
        want the ConfigError form)."""
        return _checked(lambda: Tunables(**{f.name: getattr(self, f.name) for f in fields(self)}))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tunables:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return _checked(lambda: replace(cls(), **kw))

    def with_value(self, key: str, raw: str) -> Tunables:
        """Parse one CLI/dashboard string value for `key` and return the updated, validated copy."""
        known = {f.name: f for f in fields(self)}
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(known))}")
        current = getattr(self, key)
        value: Any
        try:
            if key == "complexity_thresholds":
                value = tuple(float(x) for x in raw.split(",") if x.strip())
            elif key == "fixed_models":
                value = tuple(x.strip() for x in raw.split(",") if x.strip())
            elif key == "budget_usd":
                value = None if raw.strip().lower() in ("", "none", "off") else float(raw)
            elif isinstance(current, bool):
                if raw.lower() not in ("true", "false", "1", "0", "on", "off"):
                    raise ValueError(raw)
                value = raw.lower() in ("true", "1", "on")
            elif isinstance(current, int):
                value = int(raw)
            elif isinstance(current, float):
                value = float(raw)
            else:
                value = raw
        except ValueError:
            raise ConfigError(f"{key}: cannot parse {raw!r}") from None
        return _checked(lambda: replace(self, **{key: value}))


def _checked(build: Callable[[], Tunables]) -> Tunables:
    """`build()`, with a validation failure turned into a one-line ConfigError that names the field
    and what it allows (e.g. "samples_n must be an integer in [1, 64], got 0")."""
    try:
        return build()
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = err.get("loc") or ()
    name = str(loc[0]) if loc else "tunables"
    if err["type"] == "value_error":  # our own validators wrote a full sentence
        return str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
    got = err.get("input")
    return f"{name} must be {_allowed(name)}, got {got!r}"


def _allowed(name: str) -> str:
    """What a field accepts, from its declared type and constraints."""
    declared = _FIELDS[name]
    bounds = _bounds(declared)
    low, high = bounds.get("ge"), bounds.get("le")
    type_name = str(declared.type)
    kind = {"int": "an integer", "bool": "true or false", "str": "text"}.get(type_name, "")
    kind = kind or ("a finite number" if "float" in type_name else "valid")
    if low is not None and high is not None:
        return f"{kind} in [{low:g}, {high:g}]" if kind != "a finite number" else f"in [{low:g}, {high:g}]"
    if low is not None:
        suffix = " (or none)" if "None" in type_name else ""
        return f"{kind} >= {low:g}{suffix}"
    return kind


def like_tunable(name: str) -> Any:
    """A pydantic Field with the default and the range of the tunable `name`: a strategy option
    that a tunable sets by default declares itself with this, so both share one source."""
    declared = _FIELDS[name]
    info = declared.default
    default = info.default if isinstance(info, FieldInfo) else info
    return Field(default=default, **_bounds(declared))


def _bounds(declared: Any) -> dict[str, Any]:
    """{"ge": low, "le": high} of a Tunables field, as declared."""
    info = declared.default
    metadata = info.metadata if isinstance(info, FieldInfo) else []
    return {k: getattr(m, k) for m in metadata for k in ("ge", "le") if hasattr(m, k)}


_FIELDS = {f.name: f for f in fields(Tunables)}
