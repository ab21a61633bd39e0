"""Routers, by registry name (see registry.py)."""

from ragrouter.routers.base import Queries, Router, RouterConfig, TrainingSet
from ragrouter.routers.registry import ROUTERS, build_router, load_router, register_router, router_names

__all__ = ["Queries", "Router", "RouterConfig", "TrainingSet", "load_router", "ROUTERS", "build_router", "register_router", "router_names"]
