"""Live events of a request, for the dashboard: what `Engine.aask(on_event=...)` receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..types import MemberResult, StepTiming


@dataclass(frozen=True)
class Event:
    """A live event for the dashboard: kind is started | token (streaming text) | finished |
    failed | step. `call_id` tells apart several calls to one model (samples, judge calls) and
    `role` says what the call is for in its strategy ("sample 2", "judge 1", "tier 1", "node 3")."""

    kind: str
    model: str | None = None
    text: str = ""
    member: MemberResult | None = None
    step: StepTiming | None = None
    call_id: int | None = None
    role: str = ""


OnEvent = Callable[[Event], Any]


class Emit:
    """Calls the UI callback; a callback that raises is dropped, never fails the request."""

    def __init__(self, on_event: OnEvent | None) -> None:
        self._cb = on_event
        self.live = on_event is not None

    def __call__(self, event: Event) -> None:
        if self._cb is not None:
            try:
                self._cb(event)
            except Exception:  # noqa: BLE001 - a broken UI callback must not fail the request
                self._cb = None
                self.live = False
