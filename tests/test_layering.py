"""The library's layering: no import circles, nothing imported from the layers above it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LIBRARY = PROJECT_ROOT / "ragrouter"
CHECKER = PROJECT_ROOT.parent / "shared" / "tools" / "import_cycles.py"
UPPER_LAYERS = ("zenml", "pipelines", "steps", "materializers", "ragrouter_cli", "stack")


def test_the_library_has_no_import_circle():
    if not CHECKER.is_file():
        pytest.skip("../shared/tools/import_cycles.py is not beside this checkout")
    done = subprocess.run([sys.executable, str(CHECKER), "ragrouter"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_the_library_imports_nothing_from_the_layers_above_it():
    upward = []
    for path in LIBRARY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            upward += [f"{path.relative_to(PROJECT_ROOT)}: {name}" for name in names if name.split(".")[0] in UPPER_LAYERS]
    assert not upward


def test_metrics_know_nothing_of_routers():
    code = "import sys, ragrouter.evaluation.metrics; print(sorted(m for m in sys.modules if m.startswith('ragrouter.routers')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
