"""The library's source files a Python file depends on, found by reading its imports.

Why: a cached pipeline result is only valid for the library code that computed it. ZenML's
cache key holds a step's own code; adding the files of every `ragrouter` module the step
imports (directly or through other modules, function-level imports included) makes an
upgrade of that code re-run the step, while steps whose code did not change stay cached.
Files are found on disk, nothing is imported. The router registry imports routers through
entry points, not import statements: the modules it declares count as its imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY_ROOT = Path(__file__).resolve().parent
LIBRARY = LIBRARY_ROOT.name


def _module_file(name: str) -> Path | None:
    """The library file of a dotted name, None where the name is not a library module
    (e.g. `ragrouter.bundle.RouterBundle`, a class)."""
    parts = name.split(".")
    if parts[0] != LIBRARY:
        return None
    base = LIBRARY_ROOT.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _entry_point_modules() -> set[str]:
    """The router modules the registry imports by entry point (ragrouter.routers.registry)."""
    from importlib.metadata import entry_points

    return {entry.module for entry in entry_points(group="ragrouter.routers")}


def _imported_names(path: Path) -> set[str]:
    """Dotted names `path` imports, with `from a import b` read as both `a` and `a.b`."""
    if path.resolve() == LIBRARY_ROOT / "routers" / "registry.py":
        return _static_imports(path) | _entry_point_modules()
    return _static_imports(path)


def _static_imports(path: Path) -> set[str]:
    folder = path.resolve().parent  # the package relative imports start from
    package = list(folder.relative_to(LIBRARY_ROOT.parent).parts) if folder.is_relative_to(LIBRARY_ROOT) else []
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def library_source_files(path: str | Path) -> list[Path]:
    """Sorted library files that the Python file at `path` imports, transitively, with the
    packages' `__init__.py` on the way (importing a submodule runs them)."""
    found: set[Path] = set()
    pending = [Path(path)]
    while pending:
        for name in _imported_names(pending.pop()):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                module_file = _module_file(".".join(parts[:depth]))
                if module_file is not None and module_file not in found:
                    found.add(module_file)
                    pending.append(module_file)
    return sorted(found)
