"""Auth as a FastAPI dependency: every request carries `Authorization: Bearer isk_…` unless the
server was started with `--no-auth` (loopback only). The key's id names its cache partition; its
name is the tenant recorded with every request; a key over its budget is refused before any work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .errors import GatewayError
from .keys import ApiKey


@dataclass(frozen=True)
class Tenant:
    """Who a request is for: the key (None with --no-auth), its partition and its name."""

    key: ApiKey | None

    @property
    def namespace(self) -> str:
        # Without auth every request shares the home's default partition (one local user).
        return self.key.namespace if self.key else ""

    @property
    def name(self) -> str | None:
        return self.key.name if self.key else None


def _unauthorized(message: str, code: str) -> GatewayError:
    return GatewayError(401, message, code=code)


async def require_key(request: Request) -> Tenant:
    """A valid, active key with budget left (for requests that spend)."""
    tenant = await authenticated(request)
    key = tenant.key
    if key is not None and key.over_budget:
        raise GatewayError(429, f"API key {key.name!r} is over its budget: spent ${key.spent_usd:.6f} "
                                f"of ${key.budget_usd:.6f} (budget_usd)",
                           code="budget_exceeded", param="budget_usd")
    return tenant


async def authenticated(request: Request) -> Tenant:
    """A valid, active key (for reads: the model list, metrics)."""
    state = request.app.state.gateway
    if not state.auth:
        return Tenant(None)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not token or scheme.lower() != "bearer":
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>' "
                            "(create one with `inferscale keys create NAME`)", "missing_api_key")
    key = state.keys.verify(token.strip())
    if key is None:
        # Never echo the presented key: it may be a real secret pasted into the wrong place.
        raise _unauthorized("invalid API key", "invalid_api_key")
    if not key.active:
        raise _unauthorized(f"API key {key.name!r} has been revoked", "revoked_api_key")
    return Tenant(key)


# What routes declare: `tenant: Spender` for requests that spend, `_: Reader` for reads.
Spender = Annotated[Tenant, Depends(require_key)]
Reader = Annotated[Tenant, Depends(authenticated)]
