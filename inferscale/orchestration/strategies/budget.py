"""A per-request budget of model calls and dollars, enforced before every call.

A call reserves its predicted cost up front and settles its real cost when it ends, so concurrent
calls cannot jointly overshoot the dollar cap on predictions. (A real cost above its prediction
can still overshoot by that difference; the next call then sees the real total.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class Budget:
    max_calls: int | None = None
    max_usd: float | None = None
    calls: int = 0  # calls allowed so far
    spent_usd: float = 0.0  # real cost of finished calls
    reserved_usd: float = 0.0  # predicted cost of calls still running
    denied: int = 0  # calls refused

    def reserve(self, predicted_usd: float) -> bool:
        """Admit one more call predicted to cost `predicted_usd`, or refuse it."""
        over_calls = self.max_calls is not None and self.calls >= self.max_calls
        over_usd = self.max_usd is not None and (
            self.spent_usd + self.reserved_usd + predicted_usd > self.max_usd + 1e-12
        )
        if over_calls or over_usd:
            self.denied += 1
            return False
        self.calls += 1
        self.reserved_usd += predicted_usd
        return True

    def settle(self, predicted_usd: float, actual_usd: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - predicted_usd)
        if math.isfinite(actual_usd):
            self.spent_usd += actual_usd

    @property
    def exhausted(self) -> bool:
        return self.denied > 0

    def describe(self) -> str:
        calls = f"{self.calls}/{self.max_calls}" if self.max_calls is not None else f"{self.calls}"
        calls += " calls"
        usd = f"${self.spent_usd:.6f}" + (f"/${self.max_usd:.6f}" if self.max_usd is not None else "")
        return f"{calls}, {usd}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "max_calls": self.max_calls,
            "spent_usd": self.spent_usd,
            "max_usd": self.max_usd,
            "denied": self.denied,
        }
