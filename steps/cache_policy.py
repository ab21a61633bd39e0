"""The cache policy of the steps that run library code.

ZenML's default cache key holds a step's own code, not the `ragrouter` code it calls: a
result cached by older library code (a model bundle in an older format, scores from an older
network) would come back after an upgrade. This policy adds the library files the step
imports, transitively, so changing them re-runs the step and only the steps that use them,
and the precision `auto` computes in on the machine that runs it (bfloat16 or float32), so a
stack whose machines differ never reuses features or models computed in the other precision.
"""

from __future__ import annotations

import os
from typing import Callable

from zenml.config import CachePolicy
from zenml.utils import source_utils

from ragrouter.precision import auto_precision
from ragrouter.source_closure import library_source_files


def library_cache_policy(step_file: str, cache_func: Callable[[], str] | None = None) -> CachePolicy:
    """ZenML's default policy plus the library files `step_file` depends on (paths relative to
    the source root, so the key is the same wherever the step runs), and `cache_func` (by
    default the machine's `auto` precision; steps that record results in a store key on it)."""
    root = source_utils.get_source_root()
    files = [os.path.relpath(path, root) for path in library_source_files(step_file)]
    return CachePolicy(file_dependencies=files, cache_func=cache_func or auto_precision)
