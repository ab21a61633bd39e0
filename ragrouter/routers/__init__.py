"""Routers, by registry name (see registry.ROUTERS)."""

from ragrouter.routers.base import Queries, Router, RouterConfig, TrainingSet, load_router
from ragrouter.routers.registry import ROUTERS, build_router, register_router

__all__ = ["Queries", "Router", "RouterConfig", "TrainingSet", "load_router", "ROUTERS", "build_router", "register_router"]
