"""An MLflow server (infra/mlflow_server.sh) on a PostgreSQL database of its own, for tests.

The database and its role (a login with a password) are created for the test session and
dropped afterwards. The password reaches the server only through a pgpass file named by
PGPASSFILE: never the command line, the URI or the log, which the tests check.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from support import free_port, venv_env, wait_until_healthy

PROJECT_ROOT = Path(__file__).resolve().parents[1]
POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@dataclass(frozen=True)
class MlflowOnPostgres:
    uri: str  # http://127.0.0.1:<port>
    database: str  # also the role's name
    password: str
    log: Path
    artifacts: Path
    pid: int


def postgres_reachable() -> bool:
    import psycopg

    try:
        psycopg.connect(f"{POSTGRES}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


@contextmanager
def mlflow_on_postgres(workdir: Path) -> Iterator[MlflowOnPostgres]:
    """A running server whose backend store is a fresh PostgreSQL database; all of it removed after."""
    import psycopg
    from psycopg import sql

    if not postgres_reachable():
        pytest.skip(f"no PostgreSQL server at {POSTGRES}")
    name = f"ragrouter_test_{os.getpid()}_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name)))
    server = None
    try:
        pgpass = workdir / "pgpass"
        pgpass.write_text(f"127.0.0.1:5432:{name}:{name}:{password}\n")
        pgpass.chmod(0o600)
        port = free_port()
        env = venv_env(
            MLFLOW_PORT=str(port),
            MLFLOW_WORKERS="1",
            MLFLOW_BACKEND_STORE_URI=f"postgresql://{name}@127.0.0.1:5432/{name}",
            PGPASSFILE=str(pgpass),
        )
        log_path = workdir / "server.log"
        with log_path.open("w") as log:
            server = subprocess.Popen([str(PROJECT_ROOT / "infra" / "mlflow_server.sh")], cwd=workdir, env=env,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        uri = f"http://127.0.0.1:{port}"
        wait_until_healthy(server, f"{uri}/health", log_path)
        yield MlflowOnPostgres(uri, name, password, log_path, workdir / "mlartifacts", server.pid)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
