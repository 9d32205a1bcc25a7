"""ARC tasks: grids rendered as text, candidate `transform(grid)` programs run in the sandbox.

The demonstration pairs are the verifier (the share of them a candidate program reproduces, never
looking at the test output); the test output is the expected answer (`arc-grid` scorer)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from .code import extract_code
from .datasets import Item
from .sandbox import Limits, run_python

Grid = list[list[int]]
LIMITS = Limits(cpu_s=5.0, wall_s=10.0, memory_mb=512)
INSTRUCTIONS = (
    "Each example maps an input grid to an output grid by the same rule (cells are colours 0-9). "
    "Write a Python function `transform(grid)` that takes a grid (a list of lists of ints) and "
    "returns the output grid, implementing that rule. Reply with the code only."
)
_RUNNER = """
import json, sys
{code}

_out = []
for _g in json.loads({inputs!r}):
    try:
        _r = transform([list(r) for r in _g])
        _out.append([[int(c) for c in row] for row in _r])
    except Exception as _e:
        _out.append(None)
print(json.dumps(_out))
"""


def render(grid: Sequence[Sequence[int]]) -> str:
    return "\n".join(" ".join(str(c) for c in row) for row in grid)


def prompt(train: Sequence[dict[str, Any]], test_input: Grid) -> str:
    parts = [INSTRUCTIONS, ""]
    for n, pair in enumerate(train, start=1):
        parts += [f"Example {n} input:", render(pair["input"]), f"Example {n} output:",
                  render(pair["output"]), ""]
    parts += ["Test input:", render(test_input)]
    return "\n".join(parts)


def run_transform(answer: str, inputs: Sequence[Grid]) -> tuple[list[Grid | None] | None, str]:
    code = extract_code(answer)
    if "def transform" not in code:
        return None, "no transform(grid) function in the answer"
    result = run_python(_RUNNER.format(code=code, inputs=json.dumps(list(inputs))), LIMITS)
    if not result.ok:
        return None, result.reason
    try:
        lines = result.stdout.strip().splitlines()
        return json.loads(lines[-1]), "ran"
    except (json.JSONDecodeError, IndexError):
        return None, "the program printed no grids"


def parse_grid(text: str) -> Grid | None:
    """A grid written in the answer: JSON `[[...], ...]`, else rows of digits."""
    m = re.search(r"\[\s*\[.*\]\s*\]", text or "", re.DOTALL)
    if m:
        try:
            g = json.loads(m.group(0))
            if isinstance(g, list) and all(isinstance(r, list) for r in g):
                return [[int(c) for c in r] for r in g]
        except (ValueError, TypeError):
            pass
    rows = [re.findall(r"\d", ln) for ln in (text or "").splitlines()]
    rows = [[int(c) for c in r] for r in rows if r]
    return rows or None


def make_verifier(train: Sequence[dict[str, Any]]) -> Any:
    inputs = [p["input"] for p in train]
    outputs = [p["output"] for p in train]

    def verify(answer: str) -> float:
        got, _ = run_transform(answer, inputs)
        if not got:
            return 0.0
        return sum(g == o for g, o in zip(got, outputs, strict=False)) / len(outputs)

    return verify


def score_test(answer: str, item: Item) -> tuple[bool, str]:
    want = json.loads(item.expected or "null")
    if "def transform" in extract_code(answer):
        got, why = run_transform(answer, [item.payload["test_input"]])
        if got is None:
            return False, why
        grid = got[0]
    else:
        grid = parse_grid(answer)
    if grid is None:
        return False, "no grid in the answer"
    if grid == want:
        return True, "grid matches"
    shape = f"{len(grid)}x{len(grid[0]) if grid else 0}"
    return False, f"grid differs ({shape} vs {len(want)}x{len(want[0]) if want else 0})"
