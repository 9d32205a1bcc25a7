"""What the dashboard shows, as plain data: no streamlit here, so all of it is unit-testable.

- `submit_ask` runs a request on a worker thread and streams the engine's `Event`s into a queue
  (the Streamlit script thread polls the queue; only it touches the UI).
- `tunable_fields` / `apply_tunables` describe the `Tunables` dataclass field by field, so a field
  added later (say a semantic-cache threshold) gets a control without a dashboard change.
- `model_rows` / `spec_from_form` are the registry table and the add/edit form's validation.
- `timeline_frame`, `breakdown_frame`, `member_line`, `history_row` format an `AskResult`.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd
from pydantic import ValidationError

from inferscale.errors import ConfigError
from inferscale.registry import ModelSpec, Registry
from inferscale.settings import Tunables
from inferscale.types import AskResult, MemberResult, StepTiming

# -- running a request -------------------------------------------------------------------------
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:  # created on first use: importing this module starts nothing
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="inferscale-ui")
        return _pool


def submit_ask(engine: Any, prompt: str, events: queue.Queue, **kw: Any) -> Future[AskResult]:
    """Start `engine.ask(prompt, **kw)` on a worker; every `Event` is put on `events`.

    The engine calls `on_event` from its event loop thread, and `Queue.put` is thread-safe, so the
    caller can poll `events` from the UI thread while the request runs.
    """
    return _workers().submit(engine.ask, prompt, on_event=events.put, **kw)


def parse_strategy_options(text: str) -> dict[str, str]:
    """`"n=3, tau=0.5"` → {"n": "3", "tau": "0.5"}: the text box's pairs, read by the CLI's parser
    (`strategies.parse_options`); the strategy's typed config converts the values."""
    from inferscale.orchestration.strategies import parse_options

    return parse_options([p for p in text.replace(",", " ").split() if p])


# -- tunables ------------------------------------------------------------------------------------
GROUPS = ("Routing", "Strategy and generation", "Cache", "Cache capacity and TTL", "Other")
_GROUP_WORDS = {  # first match wins; a field matching nothing goes to "Other"
    "Cache capacity and TTL": ("cache_l1_", "cache_l2_", "cache_l3_", "cache_l4_", "capacity", "_ttl"),
    "Cache": ("cache", "semantic", "similarity", "evict"),
    "Routing": ("complexity", "budget_usd", "router", "fixed_models", "learned_"),
    "Strategy and generation": ("strategy", "ensemble", "max_tokens", "temperature", "top_p", "cascade",
                                "sample", "judge", "moa", "tree", "call_budget"),
}
LABELS = {"budget_usd": "Budget cap (USD per request)", "ensemble_k": "Ensemble size (k)",
          "max_tokens": "Max tokens"}
HELP = {
    "complexity_thresholds": "Ascending cut points in [0, 1], comma-separated. n thresholds make n+1 "
                             "tiers spread over the models from weakest to strongest quality prior.",
    "budget_usd": "Per-request cap on predicted cost in USD; 'none' for no cap.",
    "default_router": "Router used when the request names none.",
    "default_strategy": "Strategy used when the request names none.",
    "ensemble_k": "How many models an ensemble fans out to (1-16).",
    "max_tokens": "Answer length cap per model call (1-32768).",
    "temperature": "Sampling temperature (0-2).",
    "cache_enabled": "Use the cache levels (off: every request calls the models).",
    "fixed_models": "Models the 'fixed' router uses, in order.",
    "learned_threshold": "Learned router: the cheapest model whose predicted quality reaches this is "
                         "chosen (`inferscale router calibrate` sets it for a strong-model share or a cost).",
    "learned_lambda": "Learned router: when > 0, choose the model maximising predicted quality minus "
                      "this x USD per 1,000 requests instead of using the threshold.",
    "semantic_judge_model": "A remote model id that may confirm a semantic-cache candidate short only on "
                            "similarity (one paid call per such lookup); empty = no judge (the default).",
    "semantic_judge_floor": "The judge is asked only about candidates at least this similar (never below "
                            "semantic_floor).",
    "semantic_judge_timeout_s": "The judge's one attempt; no answer in time is a miss.",
}


@dataclass(frozen=True)
class TunableField:
    name: str
    kind: str  # bool | int | float | optional | floats | strs | choice | text
    group: str
    value: Any
    choices: tuple[str, ...] = ()
    help: str = ""

    @property
    def label(self) -> str:
        return LABELS.get(self.name) or self.name.replace("_", " ").capitalize()


def _group(name: str) -> str:
    for group, words in _GROUP_WORDS.items():
        if any(w in name for w in words):
            return group
    return "Other"


def tunable_fields(tun: Tunables, choices: dict[str, tuple[str, ...]] | None = None) -> list[TunableField]:
    """One descriptor per `Tunables` field, typed from its annotation and current value."""
    choices = choices or {}
    out = []
    for f in fields(Tunables):
        ann = str(f.type).replace(" ", "")
        value = getattr(tun, f.name)
        if f.name in choices:
            kind = "choice"
        elif "None" in ann:
            kind = "optional"
        elif ann.startswith("tuple[float") or ann.startswith("tuple[int"):
            kind = "floats"
        elif ann.startswith("tuple"):
            kind = "strs"
        elif ann == "bool":
            kind = "bool"
        elif ann == "int":
            kind = "int"
        elif ann == "float":
            kind = "float"
        else:
            kind = "text"
        out.append(TunableField(f.name, kind, _group(f.name), value, choices.get(f.name, ()),
                                HELP.get(f.name, "")))
    return out


def to_raw(field: TunableField, value: Any) -> str:
    """A widget value → the string form `Tunables.with_value` parses."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and field.kind == "int" and value.is_integer():
        return str(int(value))
    return str(value)


def display_raw(value: Any) -> str:
    """The text-box form of a current value (for optional / list fields)."""
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def apply_tunables(current: Tunables, raw: dict[str, str]) -> Tunables:
    """Apply each field's text through `Tunables.with_value` (the CLI's parser, so both accept the
    same input); raises ConfigError with the first invalid value's message."""
    new = current
    for key, text in raw.items():
        new = new.with_value(key, text)
    return new.validate()


# -- models --------------------------------------------------------------------------------------
def model_status(spec: ModelSpec) -> str:
    """A missing key is reported first: enabling cannot help until the variable is set."""
    if var := spec.missing_key():
        return f"unavailable: set {var}"
    return "available" if spec.enabled else "disabled"


def model_rows(registry: Registry) -> pd.DataFrame:
    """The registry as a table. Shows key variable *names* and whether they are set, never values."""
    rows = []
    for s in registry.list():
        rows.append({
            "id": s.id, "status": model_status(s), "model": s.model, "api_base": s.api_base,
            "api_key_env": s.api_key_env,
            "key_set": None if not s.api_key_env else s.missing_key() is None,
            "input_$/1M": s.input_price_per_1m, "output_$/1M": s.output_price_per_1m,
            "context_window": s.context_window, "tags": ", ".join(s.tags),
            "quality_prior": s.quality_prior, "latency_prior_ms": s.latency_prior_ms,
            "enabled": s.enabled, "notes": s.notes,
        })
    return pd.DataFrame(rows)


def _none_if_blank(v: Any) -> Any:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v.strip() if isinstance(v, str) else v


def spec_from_form(values: dict[str, Any]) -> ModelSpec:
    """Validate the add/edit form; raises ConfigError naming the first bad field."""
    data = {k: _none_if_blank(v) for k, v in values.items()}
    tags = data.get("tags")
    if isinstance(tags, str):
        data["tags"] = tuple(t.strip() for t in tags.split(",") if t.strip()) or ("chat",)
    data = {k: v for k, v in data.items() if v is not None or k in ("api_base", "api_key_env")}
    try:
        spec = ModelSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "model"
        raise ConfigError(f"{loc}: {first['msg']}") from None
    if spec.enabled and (var := spec.missing_key()):
        raise ConfigError(
            f"api_key_env: {var} is not set in the dashboard's environment; set it and restart, "
            "or save the model disabled")
    return spec


# -- formatting a result -------------------------------------------------------------------------
def member_line(m: MemberResult, hit_level: str = "L3") -> str:
    """`812 ms · 21→7 tokens · $0.000012 · L3 miss` (plain text, safe for markdown).

    `hit_level` names the level a cached member came from (L4 when the whole result was cached)."""
    cache = f"{hit_level} hit" if m.cached else "L3 miss"
    return (f"{m.latency_ms:,.0f} ms · {m.tokens_in}→{m.tokens_out} tokens · "
            f"${m.cost_usd:.6f} · {cache}" + (f" · {m.attempts} attempts" if m.attempts > 1 else ""))


def timeline_frame(steps: tuple[StepTiming, ...] | list[StepTiming]) -> pd.DataFrame:
    """The five steps as a sequential timeline: start offset and duration in ms."""
    rows, t = [], 0.0
    for s in steps:
        rows.append({"step": s.name, "start_ms": round(t, 3), "ms": round(s.ms, 3), "note": s.note})
        t += s.ms
    return pd.DataFrame(rows, columns=["step", "start_ms", "ms", "note"])


def breakdown_frame(result: AskResult) -> pd.DataFrame:
    return pd.DataFrame(
        [{"feature": n, "contribution": round(c, 4), "why": why} for n, c, why in result.analysis.breakdown],
        columns=["feature", "contribution", "why"],
    )


def history_row(prompt: str, result: AskResult | None = None, error: str | None = None) -> dict[str, Any]:
    base = {"time": time.strftime("%H:%M:%S"), "prompt": prompt[:120]}
    if result is None:
        return base | {"strategy": None, "models": None, "answer": None, "confidence": None,
                       "cost_usd": None, "latency_ms": None, "cache": None, "error": error}
    return base | {
        "strategy": result.strategy,
        "models": ", ".join(m.model for m in result.members),
        "answer": result.answer[:120],
        "confidence": None if result.confidence is None else round(result.confidence, 3),
        "cost_usd": result.cost_usd,
        "latency_ms": round(result.latency_ms, 1),
        "cache": result.cache.level if result.cache else None,
        "error": error,
    }
