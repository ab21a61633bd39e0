"""Which library files a step depends on: what makes a library upgrade re-run cached steps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from zenml.utils import source_utils

import ragrouter.source_closure as closure
import steps

LIBRARY = Path(closure.__file__).resolve().parent


def _names(paths: list[Path], root: Path = LIBRARY) -> set[str]:
    return {path.relative_to(root).as_posix() for path in paths}


def test_train_router_depends_on_the_router_code_it_reaches_through_function_level_imports():
    files = _names(closure.library_source_files(Path(steps.__file__).parent / "train_router.py"))
    # the routers are reached through the registry's entry points, RAGRouter's parts through its package
    assert {"__init__.py", "training.py", "routers/registry.py", "routers/ragrouter/router.py", "routers/knn.py",
            "routers/ragrouter/linear_experts.py", "routers/ragrouter/fusion.py", "features/syntax.py", "encoder.py"} <= files


def test_make_splits_does_not_depend_on_models_or_routers():
    files = _names(closure.library_source_files(Path(steps.__file__).parent / "make_splits.py"))
    assert "splits.py" in files and "data/records.py" in files
    assert not any(name.startswith(("routers/", "features/")) or name == "encoder.py" for name in files)


def test_relative_imports_packages_and_non_module_names(tmp_path, monkeypatch):
    package = tmp_path / "lib" / "mylib"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .inner import helper\n")
    (package / "sub" / "inner.py").write_text("def helper():\n    from ..tools import tool\n    return tool\n")
    (package / "tools.py").write_text("import os\ntool = os.sep\n")
    (package / "unused.py").write_text("")
    monkeypatch.setattr(closure, "LIBRARY_ROOT", package)
    monkeypatch.setattr(closure, "LIBRARY", "mylib")
    step_file = tmp_path / "step.py"
    step_file.write_text("import numpy\nfrom mylib.sub import helper\n")
    assert _names(closure.library_source_files(step_file), package) == {
        "__init__.py", "sub/__init__.py", "sub/inner.py", "tools.py"
    }


@pytest.mark.parametrize("name", ["ingest_data", "make_labels", "extract_features", "build_index", "train_router", "score_out_of_fold", "register_router"])
def test_cached_steps_key_on_their_library_files(name):
    policy = getattr(steps, name).configuration.cache_policy
    root = source_utils.get_source_root()
    dependencies = {Path(os.path.normpath(os.path.join(root, path))) for path in policy.file_dependencies}
    step_file = Path(steps.__file__).parent / f"{name}.py"
    assert dependencies == set(closure.library_source_files(step_file))
    assert all(path.is_file() for path in dependencies)
