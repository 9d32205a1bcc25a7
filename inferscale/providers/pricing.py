"""Predicted prices of a call, before it is made (routers and budgets use them).

A local model costs its CPU time (`Settings.cpu_hour_usd`); a remote one its registry prices per
million tokens, or litellm's offline cost map for a price the registry leaves unset.
"""

from __future__ import annotations

from ..registry import ModelSpec
from ..settings import Settings
from .llm import litellm_module, local_cost


def predicted_cost(spec: ModelSpec, tokens_in: int, tokens_out: int, settings: Settings) -> float:
    """USD for `tokens_in` prompt and `tokens_out` answer tokens on `spec`."""
    if spec.is_local:
        return local_cost(spec.latency_prior_ms / 1000, settings)
    pin, pout = spec.input_price_per_1m, spec.output_price_per_1m
    if pin is None or pout is None:
        cost_map = litellm_module(settings).model_cost
        info = cost_map.get(spec.model.split("/", 1)[-1]) or cost_map.get(spec.model, {})
        pin = pin if pin is not None else (info.get("input_cost_per_token") or 0) * 1e6
        pout = pout if pout is not None else (info.get("output_cost_per_token") or 0) * 1e6
    return (tokens_in * pin + tokens_out * pout) / 1e6
