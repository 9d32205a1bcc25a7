"""Candidate programs: pull the code out of an answer, join it with the item's tests, run it in the
sandbox. Used by the `code` scorer (HumanEval, user JSONL items whose `expected` holds tests)."""

from __future__ import annotations

import re

from .datasets import Item
from .sandbox import Limits, run_python

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL | re.IGNORECASE)
LIMITS = Limits(cpu_s=5.0, wall_s=10.0, memory_mb=512)


def extract_code(answer: str) -> str:
    """The fenced code blocks of an answer (joined), else the answer as it is."""
    blocks = _FENCE.findall(answer or "")
    return "\n\n".join(b.strip("\n") for b in blocks) if blocks else (answer or "")


def program(answer: str, item: Item) -> str:
    """Candidate + tests as one program. With an `entry_point`, a candidate that only wrote the
    function's body is appended to the item's prompt (the function's signature and docstring)."""
    code = extract_code(answer)
    prefix = item.payload.get("prefix", "")
    entry = item.payload.get("entry_point")
    if entry and not re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
        if code.strip() and not code.startswith((" ", "\t")):  # a body written flush left
            code = "\n".join("    " + ln if ln.strip() else ln for ln in code.splitlines())
        code = prefix + code
    elif prefix:  # keep the prompt's imports for a full rewrite of the function
        imports = [ln for ln in prefix.splitlines() if ln.startswith(("import ", "from "))]
        code = "\n".join(imports) + "\n" + code
    tests = item.payload.get("tests") or item.expected or ""
    check = f"\n\ncheck({entry})\n" if entry else "\n"
    return f"{code}\n\n{tests}{check}"


def run_tests(answer: str, item: Item, limits: Limits = LIMITS) -> tuple[bool, str]:
    result = run_python(program(answer, item), limits)
    return (True, "all tests passed") if result.ok else (False, result.reason)
