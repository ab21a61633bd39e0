"""Scheduled runs on one machine: entries in the user's crontab, each marked `# ragrouter:<id>`.

A stack whose orchestrator cannot schedule (the local one) retrains through cron. An entry
runs a command line in a fixed folder, with the environment that names the stores (ZenML,
MLflow) carried over from the process that created it, under `flock -n` (a run still going
when the next one is due is not doubled: the next one is skipped), appending its output to a
log file. Only lines carrying the marker are ever changed; every other line of the crontab is
kept as it was, in its place.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ragrouter.errors import RAGRouterError

MARKER = "# ragrouter:"
# What a scheduled run needs to find the same stores and caches as the shell that created it;
# nothing else of that shell (and no credential) is written into the crontab.
CARRIED_ENVIRONMENT = (
    "MLFLOW_TRACKING_URI",
    "ZENML_CONFIG_PATH",
    "ZENML_REPOSITORY_PATH",
    "ZENML_ANALYTICS_OPT_IN",
    "HF_HUB_OFFLINE",
    "TOKENIZERS_PARALLELISM",
    "RAGROUTER_CACHE_DIR",
    "PYTHONPATH",
)
_NICKNAMES = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually")
_FIELD = re.compile(r"^[\w*/,-]+$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_URI_PASSWORD = re.compile(r"^[a-z0-9+]+://[^/@]*:[^/@]*@")


@dataclass(frozen=True)
class CronEntry:
    schedule_id: str
    cron: str
    command: str  # what cron hands to sh, marker excluded


def check_cron(cron: str) -> str:
    """A five-field cron expression or a nickname (@daily), else an error naming --cron."""
    fields = cron.split()
    if (len(fields) == 1 and fields[0] in _NICKNAMES) or (len(fields) == 5 and all(_FIELD.match(f) for f in fields)):
        return " ".join(fields)
    raise RAGRouterError(f"--cron: expected five fields (minute hour day month weekday) or one of {', '.join(_NICKNAMES)}, got {cron!r}")


def check_id(schedule_id: str) -> str:
    if not _ID.match(schedule_id):
        raise RAGRouterError(f"schedule id: letters, digits, '.', '_' and '-' only, got {schedule_id!r}")
    return schedule_id


def scheduled_command(argv: list[str], workdir: Path, log: Path, lock: Path) -> str:
    """The shell line of an entry: in `workdir`, with the carried environment and the venv's
    bin folder first on PATH, `argv` under `flock -n lock`, output appended to `log`."""
    environment = {name: os.environ[name] for name in CARRIED_ENVIRONMENT if os.environ.get(name)}
    if _URI_PASSWORD.match(environment.get("MLFLOW_TRACKING_URI", "")):
        raise RAGRouterError("MLFLOW_TRACKING_URI holds a password, which a crontab line would keep in clear: give it without the password")
    environment["PATH"] = f"{Path(argv[0]).parent}:/usr/local/bin:/usr/bin:/bin"
    assignments = " ".join(f"{name}={shlex.quote(value)}" for name, value in environment.items())
    run = " ".join(shlex.quote(part) for part in argv)
    return f"cd {shlex.quote(str(workdir))} && {assignments} flock -n {shlex.quote(str(lock))} {run} >> {shlex.quote(str(log))} 2>&1"


def read_crontab() -> list[str]:
    """The user's crontab, line by line; empty when the user has none."""
    done = subprocess.run([_crontab(), "-l"], capture_output=True, text=True)
    if done.returncode != 0:
        if "no crontab" in done.stderr.lower():
            return []
        raise RAGRouterError(f"crontab -l failed: {done.stderr.strip()}")
    return done.stdout.splitlines()


def list_entries() -> list[CronEntry]:
    entries = []
    for line in read_crontab():
        if MARKER in line and not line.lstrip().startswith("#"):
            body, schedule_id = line.rsplit(MARKER, 1)
            fields = body.split()
            cron_length = 1 if fields[0].startswith("@") else 5
            entries.append(CronEntry(schedule_id.strip(), " ".join(fields[:cron_length]), " ".join(fields[cron_length:])))
    return entries


def install_entry(schedule_id: str, cron: str, command: str) -> CronEntry:
    """Add an entry; an id already in the crontab is refused (delete it first)."""
    check_id(schedule_id)
    cron = check_cron(cron)
    if any(entry.schedule_id == schedule_id for entry in list_entries()):
        raise RAGRouterError(f"schedule {schedule_id!r} is already in the crontab: `ragrouter schedule delete {schedule_id}` first")
    # cron turns an unescaped % into a newline
    _write_crontab([*read_crontab(), f"{cron} {command.replace('%', chr(92) + '%')} {MARKER}{schedule_id}"])
    return CronEntry(schedule_id, cron, command)


def delete_entry(schedule_id: str) -> bool:
    """Remove the entry with this id; False when there is none. Other lines stay as they were."""
    lines = read_crontab()
    kept = [line for line in lines if not line.rstrip().endswith(f"{MARKER}{schedule_id}")]
    if len(kept) == len(lines):
        return False
    _write_crontab(kept)
    return True


def _write_crontab(lines: list[str]) -> None:
    done = subprocess.run([_crontab(), "-"], input="".join(f"{line}\n" for line in lines), capture_output=True, text=True)
    if done.returncode != 0:
        raise RAGRouterError(f"crontab refused the new table: {done.stderr.strip()}")


def _crontab() -> str:
    found = shutil.which("crontab")
    if found is None:
        raise RAGRouterError("the `crontab` command is not installed (Debian: apt-get install cron)")
    return found
