"""Datasets: a registry `name → loader`; each loader returns the same items for the same limit/seed.

An item is `{id, prompt, system?, expected?, verifier?}`. The verifier scores a candidate in [0, 1]
without the expected answer (it is what `--verifier auto` hands to the searching strategies); the
scorer, chosen per item (see `scorers.resolve`), compares a candidate with `expected`.

Any other argument is a user JSONL file: `{"id"?, "prompt", "system"?, "expected"?, "scorer"?}` a line.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InferscaleError
from ..types import Verifier


class DatasetError(InferscaleError):
    """A dataset name or file that cannot be loaded; the message names the file, line and field."""


@dataclass(frozen=True)
class Item:
    id: str
    prompt: str
    system: str | None = None
    expected: str | None = None
    scorer: str | None = None  # the item's own choice (JSONL "scorer"): wins over --scorer
    default_scorer: str | None = None  # the dataset's own scorer for this item: after --scorer
    verifier: Verifier | None = field(default=None, compare=False, repr=False)
    payload: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # tests, grids
    line: int | None = None  # JSONL line, for error messages


@dataclass(frozen=True)
class Dataset:
    name: str
    items: tuple[Item, ...]
    has_verifier: bool = False


Loader = Callable[[int | None, int | None], Dataset]  # (limit, seed) -> Dataset


def pick(rows: list[Any], limit: int | None, seed: int | None) -> list[Any]:
    """The same rows every time: file order without a seed, a seeded shuffle with one."""
    if seed is not None:
        rows = random.Random(f"inferscale-eval:{seed}").sample(rows, len(rows))
    return rows if limit is None else rows[:limit]


def load_verifiable(limit: int | None, seed: int | None) -> Dataset:
    from . import verifiable as v

    rng = random.Random(f"verifiable:{seed or 0}")
    n = limit or v.DEFAULT_SIZE
    items = []
    for i in range(n):
        kind = v.ORDER[i % len(v.ORDER)]
        prompt, expected, check = v.KINDS[kind](rng)
        items.append(Item(id=f"{kind}-{i:04d}", prompt=prompt, system=v.SYSTEM, expected=expected,
                          default_scorer="numbers" if kind == "sort" else "numeric", verifier=check))
    return Dataset("verifiable", tuple(items), has_verifier=True)


def _external(module: str, fn: str) -> Loader:
    def load(limit: int | None, seed: int | None) -> Dataset:
        import importlib

        return getattr(importlib.import_module(f".{module}", __package__), fn)(limit, seed)

    return load


DATASETS: dict[str, Loader] = {
    "verifiable": load_verifiable,
    "gsm8k": _external("external", "load_gsm8k"),
    "arc-agi-2": _external("external", "load_arc"),
    "humaneval": _external("external", "load_humaneval"),
}
JSONL_KEYS = ("id", "prompt", "system", "expected", "scorer")


def load(name_or_path: str, limit: int | None = None, seed: int | None = None) -> Dataset:
    """A registered dataset by name, else a JSONL file. Raises DatasetError naming what is wrong."""
    if limit is not None and limit <= 0:
        raise DatasetError(f"--limit must be a positive integer, got {limit}")
    if name_or_path in DATASETS:
        return DATASETS[name_or_path](limit, seed)
    path = Path(name_or_path)
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson") or path.exists():
        return load_jsonl(path, limit, seed)
    raise DatasetError(f"unknown dataset {name_or_path!r}: choose one of {', '.join(DATASETS)} "
                       "or give a JSONL file")


def load_jsonl(path: Path, limit: int | None = None, seed: int | None = None) -> Dataset:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    items: list[Item] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetError(f"{path.name} line {n}: not UTF-8 text") from None
        if not text.strip():
            continue
        item = parse_line(text, n, path.name)
        if item.id in seen:
            raise DatasetError(f"{path.name} line {n}: field \"id\": {item.id!r} repeats line {seen[item.id]}")
        seen[item.id] = n
        items.append(item)
    if not items:
        raise DatasetError(f"{path.name}: no items (one JSON object per line, e.g. {{\"prompt\": \"hi\"}})")
    return Dataset(path.name, tuple(pick(items, limit, seed)))


def parse_line(text: str, n: int, where: str) -> Item:
    at = f"{where} line {n}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{at}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{at}: not a JSON object (expected {{\"prompt\": \"...\"}})")
    unknown = sorted(set(obj) - set(JSONL_KEYS))
    if unknown:
        raise DatasetError(f"{at}: unknown field {unknown[0]!r} (allowed: {', '.join(JSONL_KEYS)})")
    prompt = obj.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise DatasetError(f"{at}: field \"prompt\" is missing or not a non-empty string")
    for key in ("system", "scorer"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise DatasetError(f"{at}: field \"{key}\" must be a string")
    ident = obj.get("id", n)
    if not isinstance(ident, str | int) or isinstance(ident, bool) or not str(ident).strip():
        raise DatasetError(f"{at}: field \"id\" must be a non-empty string or an integer")
    expected = obj.get("expected")
    if expected is not None and (not isinstance(expected, str | int | float) or isinstance(expected, bool)):
        raise DatasetError(f"{at}: field \"expected\" must be a string or a number")
    return Item(id=str(ident), prompt=prompt, system=obj.get("system"),
                expected=None if expected is None else str(expected), scorer=obj.get("scorer"), line=n)
