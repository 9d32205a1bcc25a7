"""The row the engine writes with each finished request for the what-if replay (`request_log`,
read back by `inferscale.whatif.log`): what the cache and the router saw of the request."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from ..cache.request import RequestScope
from ..embeddings import Embedder
from ..errors import InferscaleError
from ..types import Analysis


def blob(v: np.ndarray | None) -> bytes | None:
    return None if v is None else np.asarray(v, dtype=np.float32).tobytes()


def replay_row(embedder: Embedder, prompt: str, system: str | None, scope: RequestScope,
               analysis: Analysis, strategy: str, router: str, explicit: list[str]) -> dict[str, Any] | None:
    """What the replay needs of one request. The vectors are stored only when already computed
    (memoised by the analysis or the L1 lookup): the request never waits for an embedding."""
    try:
        q, l4_key = scope.l1_query(), scope.l4_key()
    except InferscaleError:  # not a conversation the semantic level can compare: nothing to replay
        return None
    v_last = embedder.memoised([q.last])
    v_hist = embedder.memoised([q.history]) if q.history else None
    return {
        "ts": time.time(), "prompt": prompt, "system": system, "scope": q.scope_key, "l4_key": l4_key,
        "last": q.last, "history": q.history, "exact_hash": q.exact_hash,
        "v_last": blob(v_last[0] if v_last is not None else None),
        "v_hist": blob(v_hist[0] if v_hist is not None else None),
        "tokens": analysis.tokens, "complexity": analysis.score, "domain": analysis.domain,
        "capability": analysis.capability, "strategy": strategy, "router": router,
        "explicit_models": json.dumps(explicit) if explicit else None,
    }
