"""Settings: where state lives (built once from the environment) and the tunables (persisted in SQLite).

`Settings` is immutable process configuration. `Tunables` are the knobs a user changes live from the
CLI or the dashboard; they are stored in the `settings` table so a change survives restarts and takes
effect on the next request without one.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Settings:
    """Process-wide configuration. Build with `Settings.from_env()` and pass it explicitly."""

    home: Path
    models_yaml: Path = DEFAULT_MODELS_YAML
    n_threads: int = 2
    cpu_hour_usd: float = 0.05  # price of one CPU-hour; local call cost = seconds x this / 3600
    call_timeout_s: float = 120.0  # per attempt; a model's own `timeout_s` overrides it
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

    @classmethod
    def from_env(cls, home: str | Path | None = None, **overrides: Any) -> Settings:
        root = Path(home or os.environ.get("INFERSCALE_HOME") or REPO_ROOT / "data").expanduser()
        kw: dict[str, Any] = {"home": root.resolve(), "n_threads": cores()}
        if v := os.environ.get("INFERSCALE_CPU_HOUR_USD"):
            kw["cpu_hour_usd"] = _positive_float("INFERSCALE_CPU_HOUR_USD", v)
        if v := os.environ.get("INFERSCALE_CALL_TIMEOUT_S"):
            kw["call_timeout_s"] = _positive_float("INFERSCALE_CALL_TIMEOUT_S", v)
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


STRATEGY_NAMES = ("single", "ensemble", "cascade", "self-consistency", "best-of-n", "moa", "tree-search")
ROUTER_NAMES = ("complexity", "fixed", "cheapest", "quality", "learned")


@dataclass(frozen=True)
class Tunables:
    """Live knobs, persisted in SQLite. Every field is validated by `validate()`."""

    # Complexity tiers: n ascending thresholds in [0,1] split the score range into n+1 tiers,
    # mapped onto the enabled models ordered from weakest to strongest quality prior.
    complexity_thresholds: tuple[float, ...] = (0.35, 0.65)
    budget_usd: float | None = None  # per-request cap on predicted cost; None = no cap
    default_router: str = "complexity"
    default_strategy: str = "single"
    ensemble_k: int = 2
    max_tokens: int = 128
    temperature: float = 0.0
    cache_enabled: bool = True
    fixed_models: tuple[str, ...] = field(default_factory=tuple)
    # Strategy defaults (a request can override them with strategy options).
    call_budget: int = 24  # most model calls one request may make, judge calls included
    cascade_tau: float = 0.8  # cascade: escalate while confidence < tau
    samples_n: int = 5  # self-consistency / best-of-n: how many samples or candidates
    sample_temperature: float = 0.7  # temperature of those samples
    judge_model: str = ""  # best-of-n / tree-search judge; "" = the strongest available model
    moa_layers: int = 1  # mixture-of-agents proposer layers before the aggregator
    tree_budget: int = 8  # tree-search: nodes to generate
    # Cache (issue 4). L1 semantic: an edit of the cached prompt needs `semantic_threshold` cosine
    # (a one/two-word substitution or added qualifier: the focused/qualifier threshold); the same
    # meaningful words need only `semantic_floor`; a full rewrite `semantic_rewrite_threshold`
    # (see inferscale/cache/verify.py).
    semantic_enabled: bool = True
    semantic_threshold: float = 0.85
    semantic_floor: float = 0.40
    semantic_focused_threshold: float = 0.90
    semantic_qualifier_threshold: float = 0.90
    semantic_history_threshold: float = 0.70
    semantic_rewrite_threshold: float = 0.62  # a rewrite keeping under half the wording
    # Per level: capacity in entries and MB, and TTL in seconds (0 = never expires).
    cache_l1_max_entries: int = 100_000
    cache_l1_max_mb: float = 512.0
    cache_l1_ttl_s: float = 7 * 86400.0
    cache_l2_max_entries: int = 200_000
    cache_l2_max_mb: float = 256.0
    cache_l2_ttl_s: float = 0.0
    cache_l3_max_entries: int = 100_000
    cache_l3_max_mb: float = 512.0
    cache_l3_ttl_s: float = 7 * 86400.0
    cache_l4_max_entries: int = 100_000
    cache_l4_max_mb: float = 512.0
    cache_l4_ttl_s: float = 7 * 86400.0
    # Learned router (issue 15): the cheapest model whose predicted quality clears the threshold
    # (set by `inferscale router calibrate`), or with lambda > 0 the best quality - lambda x $/1k requests.
    learned_threshold: float = 0.5
    learned_lambda: float = 0.0

    def validate(self) -> Tunables:
        th = self.complexity_thresholds
        for t in th:
            _unit("complexity_thresholds", t)
        if list(th) != sorted(th):
            raise ConfigError(f"complexity_thresholds must be ascending, got {list(th)}")
        if self.budget_usd is not None and (
            not isinstance(self.budget_usd, (int, float))
            or not math.isfinite(self.budget_usd)
            or self.budget_usd < 0
        ):
            raise ConfigError(f"budget_usd must be a finite number >= 0, got {self.budget_usd!r}")
        if self.default_router not in ROUTER_NAMES:
            raise ConfigError(f"default_router must be one of {', '.join(ROUTER_NAMES)}")
        if self.default_strategy not in STRATEGY_NAMES:
            raise ConfigError(f"default_strategy must be one of {', '.join(STRATEGY_NAMES)}")
        if not isinstance(self.ensemble_k, int) or not 1 <= self.ensemble_k <= 16:
            raise ConfigError(f"ensemble_k must be an integer in [1, 16], got {self.ensemble_k!r}")
        if not isinstance(self.max_tokens, int) or not 1 <= self.max_tokens <= 32768:
            raise ConfigError(f"max_tokens must be an integer in [1, 32768], got {self.max_tokens!r}")
        if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature <= 2:
            raise ConfigError(f"temperature must be in [0, 2], got {self.temperature!r}")
        for name, low, high in (("call_budget", 1, 1000), ("samples_n", 1, 64), ("moa_layers", 1, 8),
                                ("tree_budget", 1, 256)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
                raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {v!r}")
        _unit("cascade_tau", self.cascade_tau)
        if not isinstance(self.sample_temperature, (int, float)) or not 0 <= self.sample_temperature <= 2:
            raise ConfigError(f"sample_temperature must be in [0, 2], got {self.sample_temperature!r}")
        if not isinstance(self.judge_model, str):
            raise ConfigError(f"judge_model must be a model id or empty, got {self.judge_model!r}")
        for name in ("semantic_threshold", "semantic_floor", "semantic_focused_threshold",
                     "semantic_qualifier_threshold", "semantic_history_threshold",
                     "semantic_rewrite_threshold"):
            _unit(name, getattr(self, name))
        if self.semantic_floor > self.semantic_threshold:
            raise ConfigError(f"semantic_floor ({self.semantic_floor}) must be <= semantic_threshold "
                              f"({self.semantic_threshold})")
        _unit("learned_threshold", self.learned_threshold)
        lam = self.learned_lambda
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
            raise ConfigError(f"learned_lambda must be a finite number >= 0, got {lam!r}")
        for lvl in ("l1", "l2", "l3", "l4"):
            n = getattr(self, f"cache_{lvl}_max_entries")
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100_000_000:
                raise ConfigError(f"cache_{lvl}_max_entries must be an integer in [1, 100000000], got {n!r}")
            for name, low in ((f"cache_{lvl}_max_mb", 0.001), (f"cache_{lvl}_ttl_s", 0.0)):
                v = getattr(self, name)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < low:
                    raise ConfigError(f"{name} must be a finite number >= {low}, got {v!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tunables:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return replace(cls(), **kw).validate()

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
        return replace(self, **{key: value}).validate()


def _unit(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name}: {value!r} is outside [0, 1]")
