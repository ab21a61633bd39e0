"""The code a model was trained with: the project's git commit and whether the tree held
uncommitted changes, recorded as tags of the registered version."""

from __future__ import annotations

import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
UNKNOWN = "unknown"  # not a git checkout (an installed package, a container without .git)


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version_tags() -> dict[str, str]:
    """`code.git_commit` (the HEAD commit) and `code.git_dirty` ("true" when tracked or untracked
    files differ from it, "false" when not); both `unknown` outside a git checkout."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain") if commit else None
    return {
        "code.git_commit": commit or UNKNOWN,
        "code.git_dirty": UNKNOWN if status is None else str(bool(status)).lower(),
    }
