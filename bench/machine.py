"""The machine a bench ran on, as its results state it."""

from __future__ import annotations

import os
import subprocess


def cpu_model() -> str:
    """lscpu's "Model name" and the cores this process may use."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown CPU"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return f"{fields.get('Model name', 'unknown CPU').strip()}, {len(os.sched_getaffinity(0))} cores"
