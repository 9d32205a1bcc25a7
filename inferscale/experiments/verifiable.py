"""`verifiable`: a seeded generator of easy tasks whose answer can be checked without knowing it.

Each item's verifier looks only at the candidate and the task's own data (substitute x back into the
equation, check the list is a sorted permutation of the input, redo the sum or the conversion). That
is what lets a verifier-guided best-of-n or tree search turn "any of n right" into the selected answer.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from fractions import Fraction

from ..orchestration.strategies.answers import extract_number

SYSTEM = "Answer with the final result only, no explanation."
_NUMS = re.compile(r"-?\d+(?:\.\d+)?")
# (unit, factor to the base unit, base unit) for the conversion tasks.
_UNITS = (("km", 1000, "m"), ("m", 100, "cm"), ("kg", 1000, "g"), ("h", 60, "min"), ("min", 60, "s"),
          ("l", 1000, "ml"))


def _number(answer: str) -> Fraction | None:
    raw = extract_number(answer or "")
    if raw is None:
        return None
    try:
        return Fraction(raw)
    except (ValueError, ZeroDivisionError):
        return None


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def equation(rng: random.Random) -> tuple[str, str, Callable[[str], float]]:
    a, x = rng.randint(2, 9), rng.randint(-9, 12)
    b = rng.randint(1, 20)
    c = a * x + b

    def check(answer: str) -> float:
        v = _number(answer)
        return 1.0 if v is not None and a * v + b == c else 0.0  # substitute x back

    return f"Solve for x: {a}x + {b} = {c}. Reply with the value of x only.", str(x), check


def arithmetic(rng: random.Random) -> tuple[str, str, Callable[[str], float]]:
    op = rng.choice("+-*")
    p, q = (rng.randint(10, 99), rng.randint(10, 99)) if op != "*" else (rng.randint(2, 19), rng.randint(2, 9))
    value = p + q if op == "+" else p - q if op == "-" else p * q

    def check(answer: str) -> float:
        v = _number(answer)
        return 1.0 if v is not None and v == value else 0.0  # recompute

    return f"What is {p} {op} {q}? Reply with the number only.", str(value), check


def sorting(rng: random.Random) -> tuple[str, str, Callable[[str], float]]:
    values = rng.sample(range(1, 60), rng.randint(4, 6))

    def check(answer: str) -> float:
        got = [int(float(n)) for n in _NUMS.findall(answer or "")]
        # A sorted permutation of the input: re-sort the candidate's own numbers and compare.
        return 1.0 if got == sorted(got) and sorted(got) == sorted(values) else 0.0

    listed = ", ".join(map(str, values))
    return (f"Sort these numbers in ascending order: {listed}. Reply with the sorted numbers, "
            "comma-separated.", ", ".join(map(str, sorted(values))), check)


def conversion(rng: random.Random) -> tuple[str, str, Callable[[str], float]]:
    unit, factor, base = rng.choice(_UNITS)
    amount = rng.randint(2, 30)
    value = Fraction(amount * factor)

    def check(answer: str) -> float:
        v = _number(answer)
        return 1.0 if v is not None and v == value else 0.0  # redo the conversion

    return f"Convert {amount} {unit} to {base}. Reply with the number only.", _fmt(value), check


KINDS: dict[str, Callable[[random.Random], tuple[str, str, Callable[[str], float]]]] = {
    "equation": equation, "arithmetic": arithmetic, "sort": sorting, "convert": conversion,
}
# The kind of item i: equations first in every block of four, where the probe saw the
# largest gap between "any of 8" and greedy on the embedded model.
ORDER = ("equation", "arithmetic", "sort", "convert")
DEFAULT_SIZE = 200
