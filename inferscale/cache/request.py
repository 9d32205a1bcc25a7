"""The cache keys of one request, built by the cache from what the request asks for.

The engine hands over the request (messages, parameters, strategy and its config, models, router,
tunables, partition); `RequestScope` decides what each level's key is made of, so what may be
shared between requests is written down in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..registry import ModelSpec
from ..settings import Tunables
from ..types import Message
from .exact import cache_key
from .scope import Query, build_query


@dataclass(frozen=True)
class RequestScope:
    messages: tuple[Message, ...]
    params: dict[str, Any]
    strategy: str
    strategy_config: dict[str, Any]  # the strategy's config as JSON
    models: tuple[str, ...]  # explicit models, when the user chose
    router: str
    available: tuple[str, ...]  # every available model id: a new model is a new scope
    tunables: Tunables
    namespace: str = ""
    # The stored router the `learned` router decides with (`artefact.current_version`): a retrained
    # router routes differently, so answers routed by the previous one are not served for it.
    router_version: str = ""

    @property
    def _partition(self) -> dict[str, str]:
        # Joins every key only when set, so unpartitioned entries keep their keys.
        return {"namespace": self.namespace} if self.namespace else {}

    def _parts(self) -> dict[str, Any]:
        t = self.tunables
        return {
            "params": self.params, "strategy": self.strategy, "models": list(self.models),
            "router": self.router,
            "router_config": [t.complexity_thresholds, t.budget_usd, t.fixed_models, t.ensemble_k,
                              *([t.learned_threshold, t.learned_lambda, self.router_version]
                                if self.router == "learned" else [])],
            "strategy_config": [self.strategy_config, t.call_budget],
            "available": list(self.available),
            **self._partition,
        }

    def l4_key(self) -> str:
        """The final result: everything that can change the answer."""
        return cache_key("L4", messages=list(self.messages), **self._parts())

    def l1_query(self) -> Query:
        """The semantic lookup: the conversation, compared within the same scope."""
        return build_query(list(self.messages), **self._parts())

    def l2_key(self, prompt: str, system: str | None, version: int) -> str:
        """A prompt's analysis: a pure function of its text."""
        return cache_key("L2", kind="analysis", version=version, prompt=prompt, system=system,
                         **self._partition)

    def l3_key(self, spec: ModelSpec, messages: list[Message], params: dict[str, Any], sample: int) -> str:
        """One model's answer to one call; `sample` > 0 keeps repeated samples apart."""
        return cache_key("L3", model=spec.id, litellm_model=spec.model, api_base=spec.api_base,
                         messages=messages, params=params, **({"sample": sample} if sample else {}),
                         **self._partition)
