"""Test isolation: ZenML, MLflow and caches live in a temporary folder per test session.

The environment is set before ZenML or MLflow are imported, so nothing touches ~/.config
or the project's own stores.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "routellm"
_STATE = Path(tempfile.mkdtemp(prefix="ragrouter-tests-"))
os.environ.update(
    {
        "ZENML_CONFIG_PATH": str(_STATE / "zenml-config"),
        # No repository there: a developer's own `.zen` in the project root is never used.
        "ZENML_REPOSITORY_PATH": str(_STATE / "zenml-repository"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_LOGGING_VERBOSITY": "WARN",
        "MLFLOW_TRACKING_URI": f"sqlite:///{_STATE / 'mlflow.db'}",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "RAGROUTER_CACHE_DIR": str(_STATE / "cache"),
        "HF_DATASETS_CACHE": str(_STATE / "hf-datasets"),  # hf_dataset sources (load_dataset)
    }
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_STATE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """A served RAGRouter pins torch's threads when it loads; the next test has the default again."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mlflow_postgres_server(tmp_path_factory: pytest.TempPathFactory):
    """One MLflow server on a PostgreSQL database of its own for the session (dropped after)."""
    from mlflow_postgres import mlflow_on_postgres

    with mlflow_on_postgres(tmp_path_factory.mktemp("mlflow-postgres")) as server:
        yield server


@pytest.fixture
def postgres_database():
    """The URL of a fresh database of its own on the local PostgreSQL server, dropped afterwards."""
    import secrets

    import psycopg
    from psycopg import sql

    server = "postgresql://postgres@127.0.0.1:5432"
    try:
        admin = psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.skip(f"no PostgreSQL server at {server}")
    name = f"ragrouter_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite"])
def tracking_store(request):
    """MLFLOW_TRACKING_URI for a test: the sqlite store, or an MLflow server on PostgreSQL where a
    test is marked `support.SQLITE_AND_POSTGRES`."""
    from ragrouter.registry.tracking import configure_tracking

    if request.param == "sqlite":
        yield configure_tracking()
        return
    server = request.getfixturevalue("mlflow_postgres_server")
    previous = os.environ["MLFLOW_TRACKING_URI"]
    os.environ["MLFLOW_TRACKING_URI"] = server.uri
    configure_tracking()
    try:
        yield server.uri
    finally:
        os.environ["MLFLOW_TRACKING_URI"] = previous
        configure_tracking()


@pytest.fixture(scope="session")
def state_dir() -> Path:
    return _STATE


@pytest.fixture(scope="session")
def routellm_data() -> Path:
    """The RouteLLM ground truth: the project's data/ link if set up, else ../shared."""
    for candidate in (PROJECT_ROOT / "data" / "routellm", SHARED_DATA):
        if (candidate / "mmlu").is_dir():
            return candidate
    pytest.skip("RouteLLM data not found: run `make data`")


@pytest.fixture(scope="session")
def mmlu_vectors(routellm_data: Path):
    """About 280 MMLU records (a 2% sample) and their prompts as Queries holding the default
    encoder's sentence vectors, encoded once for the tests of routers that retrieve."""
    from ragrouter.data.ingest import ingest_sources
    from ragrouter.data.sources import SourceConfig
    from ragrouter.encoder import EncoderConfig
    from ragrouter.routers import Queries

    source = SourceConfig.from_dict(
        {"name": "mmlu", "kind": "routellm_mmlu", "path": str(routellm_data / "mmlu"), "conflicting_duplicates": "drop", "sample_fraction": 0.02}
    )
    records, _ = ingest_sources([source])
    queries = Queries(records.prompts)
    queries.vectors(EncoderConfig())
    return records, queries
