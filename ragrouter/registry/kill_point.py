"""A crash-test hook: with RAGROUTER_TEST_KILL_AT=<point> set, the process kills itself with
SIGKILL when it reaches that point, so tests can check what a crash there leaves behind.

Points: `registered` (a version exists, untagged), `decided` (a decision made under the
promotion lock, nothing written), `champion-moved` (the alias moved, its history not yet).
Unset (always, outside tests) it does nothing.
"""

from __future__ import annotations

import os
import signal

KILL_AT = "RAGROUTER_TEST_KILL_AT"


def kill_point(name: str) -> None:
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
