"""One promotion at a time per registered model, whatever the registry's store.

- sqlite:///path/db: an exclusive `fcntl.flock` on `db.promotion.lock` beside the database;
- postgresql://... (any driver MLflow accepts, e.g. postgresql+psycopg://): a session-level
  `pg_advisory_lock` keyed by the model name, held on a connection of its own, so every
  process promoting into that database, on any machine, waits its turn;
- a file store (a path, file://): a lock file in the store's folder;
- anything else (an http(s) tracking server): a lock file in $RAGROUTER_CACHE_DIR (default
  the user's cache folder), which serialises the promotions started from this machine only
  (docs/promotion.md).
The lock is released when the process dies (flock, and PostgreSQL's session end), so a run
killed while holding it never blocks the next one.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import mlflow

logger = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 600.0
POLL_S = 0.1


def lock_file(registry_uri: str) -> Path | None:
    """The lock file of a registry, None where the registry's database holds the lock."""
    scheme = urlparse(registry_uri).scheme
    if registry_uri.startswith("sqlite:///"):
        database = Path(registry_uri[len("sqlite:///") :]).resolve()
        return database.with_name(database.name + ".promotion.lock")
    if scheme.startswith("postgresql"):
        return None
    if scheme in ("", "file"):
        store = Path(urlparse(registry_uri).path if scheme else registry_uri).resolve()
        store.mkdir(parents=True, exist_ok=True)
        return store / ".promotion.lock"
    cache = Path(os.environ.get("RAGROUTER_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ragrouter")
    cache.mkdir(parents=True, exist_ok=True)
    return cache / f"promotion-{hashlib.sha256(registry_uri.encode()).hexdigest()[:16]}.lock"


@contextmanager
def promotion_lock(model_name: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    """Hold the registry's promotion lock for `model_name`; TimeoutError after `timeout_s`."""
    uri = mlflow.get_registry_uri()
    path = lock_file(uri)
    if path is None:
        with _advisory_lock(uri, model_name, timeout_s):
            yield
        return
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another promotion of {model_name!r} has held {path} for over {timeout_s:.0f} s") from None
                time.sleep(POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(uri: str, model_name: str, timeout_s: float) -> Iterator[None]:
    import sqlalchemy

    key = zlib.crc32(f"ragrouter.promotion:{model_name}".encode())
    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f"SET lock_timeout = {int(timeout_s * 1000)}"))
            try:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            except sqlalchemy.exc.OperationalError as error:
                raise TimeoutError(f"another promotion of {model_name!r} has held its PostgreSQL advisory lock for over {timeout_s:.0f} s") from error
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()
