"""Model health: a model that fails K calls within a window is cooled down for a while.

Like LiteLLM's router cooldowns, but small: the tracker only counts and answers "is this model
cooling down?". Strategies skip a cooling model while another routed model is healthy, so a request
is answered whenever at least one routed model works; when every model is cooling they are tried
anyway (a cooldown is a preference, never a reason to fail a request outright).

The tracker lives on the engine (shared by every request in the process). Cooldowns are handed to
`on_cooldown` so the monitor can persist them: `inferscale stats` runs in another process.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from ..errors import FailureKind
from ..types import Cooldown

# Failures that say nothing about the model's health: the prompt, the budget or our own skip.
NOT_HEALTH_ERRORS = frozenset({
    FailureKind.CONTEXT,
    "BadRequestError",
    "UnsupportedParamsError",
    FailureKind.COOLING_DOWN,
    FailureKind.BUDGET,
    FailureKind.CANCELLED,
})


__all__ = ["NOT_HEALTH_ERRORS", "Cooldown", "HealthTracker", "OnCooldown"]

OnCooldown = Callable[[Cooldown], None]


class HealthTracker:
    """Thread-safe failure counts per model; `cooling(model)` tells whether to skip it."""

    def __init__(self, failures: int = 3, window_s: float = 60.0, cooldown_s: float = 30.0,
                 on_cooldown: OnCooldown | None = None, clock: Callable[[], float] = time.time) -> None:
        if failures < 1 or window_s <= 0 or cooldown_s < 0:
            raise ValueError("cooldown needs failures >= 1, window_s > 0 and cooldown_s >= 0")
        self.failures, self.window_s, self.cooldown_s = failures, window_s, cooldown_s
        self._on_cooldown = on_cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}
        self._until: dict[str, float] = {}

    def restore(self, cooldowns: list[Cooldown]) -> None:
        """Adopt cooldowns persisted by an earlier process (expired ones are ignored)."""
        now = self._clock()
        with self._lock:
            for c in cooldowns:
                if c.until > now:
                    self._until[c.model] = max(c.until, self._until.get(c.model, 0.0))

    def cooling(self, model: str) -> float | None:
        """Epoch second the model's cooldown ends, or None when it may be called."""
        with self._lock:
            until = self._until.get(model)
            if until is None:
                return None
            if until <= self._clock():
                del self._until[model]
                return None
            return until

    def record(self, model: str, error_class: str | None, error: str | None = None) -> Cooldown | None:
        """Count one finished call; returns the Cooldown it started, if any."""
        if error_class is None or error_class in NOT_HEALTH_ERRORS:
            return None
        now = self._clock()
        with self._lock:
            recent = self._recent.setdefault(model, deque())
            recent.append(now)
            while recent and recent[0] < now - self.window_s:
                recent.popleft()
            if len(recent) < self.failures or self._until.get(model, 0.0) > now:
                return None
            cd = Cooldown(model, now + self.cooldown_s, len(recent), error_class, (error or "")[:300])
            self._until[model] = cd.until
            recent.clear()
        if self._on_cooldown is not None:
            self._on_cooldown(cd)
        return cd

    def snapshot(self) -> dict[str, float]:
        """Models cooling down right now → the epoch second their cooldown ends."""
        now = self._clock()
        with self._lock:
            return {m: u for m, u in self._until.items() if u > now}
