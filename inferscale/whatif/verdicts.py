"""Verdicts of the cache's verifier kept across replays of one log with different tunables.

`chat.decide` is a pure function of the two conversations, their similarities, the `VerifyConfig`,
the context model and the lexicon. A replay with other tunables asks it about the same pairs with
another config; most verdicts never read the fields that differ ("the same meaningful words" reads
`floor`, not `threshold`). So each call is made with a config that notes which fields it reads, and
its verdict is reused for any config that has the same values in every field read: what a pure
function did not read cannot change what it returned. Nothing of the decision is re-implemented.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import fields
from typing import Any

from ..cache.verify import VerifyConfig

# Read by any attribute lookup, not a field the verdict depends on.
_NEUTRAL = frozenset({"__class__"})

Reads = tuple[tuple[str, Any], ...]


def _noting(cfg: VerifyConfig) -> tuple[VerifyConfig, set[str]]:
    """An equal config that adds the name of every attribute looked up on it to the returned set
    (copies made with `dataclasses.replace` note into the same set)."""
    seen: set[str] = set()

    class Noting(type(cfg)):  # type: ignore[misc]
        def __getattribute__(self, name: str) -> Any:
            seen.add(name)
            return super().__getattribute__(name)

    return Noting(**{f.name: getattr(cfg, f.name) for f in fields(cfg)}), seen


class Verdicts:
    """`ok(key, cfg, run)`: `run(config)` once per distinct set of the values it reads; `key` names
    everything else the verdict depends on (the pair and its similarities)."""

    def __init__(self) -> None:
        self._known: dict[Hashable, list[tuple[Reads, bool]]] = {}
        self._noting: dict[VerifyConfig, tuple[VerifyConfig, set[str]]] = {}
        self._names = frozenset(f.name for f in fields(VerifyConfig))
        self._inputs: tuple[Any, ...] | None = None

    def serving(self, *inputs: Any) -> Verdicts:
        """This memo if it has been used with these same objects (the context model, the lexicon)
        or not at all; a new one otherwise."""
        if self._inputs is None:
            self._inputs = inputs
        if len(inputs) == len(self._inputs) and all(a is b for a, b in zip(inputs, self._inputs, strict=True)):
            return self
        return Verdicts().serving(*inputs)

    def ok(self, key: Hashable, cfg: VerifyConfig, run: Callable[[VerifyConfig], bool]) -> bool:
        known = self._known.get(key)
        if known is not None:
            for reads, verdict in known:
                if all(getattr(cfg, name) == value for name, value in reads):
                    return verdict
        noting = self._noting.get(cfg)
        if noting is None:
            noting = self._noting[cfg] = _noting(cfg)
        tracked, seen = noting
        seen.clear()
        verdict = run(tracked)
        read = seen - _NEUTRAL
        if not read <= self._names:  # read in some other way (a method, the instance's dict): all count
            read = set(self._names)
        reads = tuple((name, getattr(cfg, name)) for name in sorted(read))
        self._known.setdefault(key, []).append((reads, verdict))
        return verdict

    def agree(self, keys: Iterable[Hashable], was: VerifyConfig, now: VerifyConfig) -> bool:
        """Whether `ok` with `now` would return, for every key of `keys` (all asked with `was`),
        the very verdict it returned with `was`: the one it returned read only fields that `now`
        has the same values in. (False for a key never asked.)"""
        for key in keys:
            for reads, _ in self._known.get(key, ()):
                if all(getattr(was, name) == value for name, value in reads):  # what `ok` returned
                    if not all(getattr(now, name) == value for name, value in reads):
                        return False
                    break
            else:
                return False
        return True
