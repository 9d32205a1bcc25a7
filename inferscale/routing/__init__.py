"""Routing: score a prompt, then decide which models and strategy serve it."""

from .base import Router, RouteRequest
from .policies import ROUTERS, get_router

__all__ = ["ROUTERS", "RouteRequest", "Router", "get_router"]
