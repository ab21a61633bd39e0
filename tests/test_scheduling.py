"""Scheduled retraining: an outcome folder read by the next run, and crontab entries managed by
`ragrouter schedule` in the real crontab of this user (restored exactly afterwards)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from zenml.client import Client
from zenml.enums import ExecutionStatus

from ragrouter.data.fingerprint import fingerprint_sources
from ragrouter.data.ingest import ingest_sources
from ragrouter.data.sources import SourceConfig
from ragrouter.errors import DataValidationError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
FOREIGN_LINE = "17 4 * * 1 /usr/bin/true # someone else's job, never touched"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ragrouter_cli", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)


def _folder_source(folder: Path) -> dict:
    return {"name": "outcomes", "kind": "folder", "path": str(folder), "strong_column": "strong_quality", "weak_column": "weak_quality"}


@pytest.fixture(scope="module")
def outcomes(routellm_data: Path) -> pd.DataFrame:
    """60 real MMLU outcomes in the columns of the gateway's feedback log."""
    frame = pd.read_csv(sorted((routellm_data / "mmlu").glob("mmlu_*.csv"))[1]).head(60)
    return pd.DataFrame({"prompt": frame["prompt"], "strong_quality": frame[STRONG].astype(float), "weak_quality": frame[WEAK].astype(float)})


def test_files_dropped_in_an_outcome_folder_are_read_by_the_next_run(outcomes, tmp_path):
    folder = tmp_path / "outcomes"
    folder.mkdir()
    source = _folder_source(folder)
    records, _ = ingest_sources([SourceConfig.from_dict(source)])
    assert len(records.frame) == 0  # nothing dropped there yet: no records, no error
    empty_key = fingerprint_sources([source])

    outcomes.iloc[:30].to_csv(folder / "week1.csv", index=False)
    (folder / "notes.txt").write_text("not a table: ignored")
    first_key = fingerprint_sources([source])
    # the gateway's log format (ragrouter feedback export): JSONL with observed and created_at too
    with (folder / "feedback-week2.jsonl").open("w") as log:
        for row in outcomes.iloc[30:].itertuples():
            log.write(json.dumps({"prompt": row.prompt, "strong_quality": row.strong_quality, "weak_quality": row.weak_quality,
                                  "observed": "both", "created_at": 1.0}) + "\n")
    records, summary = ingest_sources([SourceConfig.from_dict(source)])
    assert summary.sources["outcomes"].read == 60
    assert sorted(set(records.frame["origin_file"])) == [str(folder / "feedback-week2.jsonl"), str(folder / "week1.csv")]
    assert len({empty_key, first_key, fingerprint_sources([source])}) == 3  # each new file changes the cache key

    shutil.rmtree(folder)
    with pytest.raises(DataValidationError, match="folder not found"):
        ingest_sources([SourceConfig.from_dict(source)])


@pytest.fixture
def crontab_restored():
    """The user's crontab as it was (or none), put back exactly after the test."""
    if shutil.which("crontab") is None:
        pytest.skip("the crontab command is not installed (apt-get install cron)")
    before = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    had_one = before.returncode == 0
    yield before.stdout if had_one else None
    if had_one:
        subprocess.run(["crontab", "-"], input=before.stdout, text=True, check=True)
    else:
        subprocess.run(["crontab", "-r"], capture_output=True)
    after = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    assert (after.stdout if after.returncode == 0 else None) == (before.stdout if had_one else None)


def _crontab_lines() -> list[str]:
    done = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    return done.stdout.splitlines() if done.returncode == 0 else []


def _tiny_config(tmp_path: Path, folder: Path) -> Path:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"parameters": {
        "sources": [_folder_source(folder)],
        "protocols": [{"name": "P1", "kind": "kfold", "source": "outcomes"}],
        "encoder": {"max_tokens": 32},
        "routers": {"knn": {"k": 5}},
        "registration": {"router": "knn", "model_name": "ragrouter-scheduled"},
        "reports": {"dir": str(tmp_path / "reports"), "experiment": "scheduled"},
    }}))
    return config


def test_schedule_create_list_delete_touch_only_their_own_crontab_lines(crontab_restored, tmp_path):
    subprocess.run(["crontab", "-"], input="".join(f"{line}\n" for line in [*(crontab_restored or "").splitlines(), FOREIGN_LINE]), text=True, check=True)
    before = _crontab_lines()
    config = _tiny_config(tmp_path, tmp_path)

    bad = _cli("schedule", "create", "--cron", "every day", "--config", str(config), "--id", "bad")
    assert bad.returncode == 2 and "--cron" in bad.stderr and "Traceback" not in bad.stderr
    assert _cli("schedule", "create", "--cron", "0 3 * * *", "--config", str(tmp_path / "missing.yaml")).returncode == 2
    assert _crontab_lines() == before

    created = _cli("schedule", "create", "--cron", "0 3 * * *", "--config", str(config), "--id", "nightly-test", "--log-dir", str(tmp_path / "logs"))
    assert created.returncode == 0, created.stderr[-2000:]
    lines = _crontab_lines()
    assert lines[: len(before)] == before and len(lines) == len(before) + 1
    entry = lines[-1]
    assert entry.startswith("0 3 * * * cd ") and entry.endswith("# ragrouter:nightly-test")
    assert "flock -n" in entry and "-m ragrouter_cli run training --config" in entry and str(config) in entry
    assert _cli("schedule", "create", "--cron", "5 3 * * *", "--config", str(config), "--id", "nightly-test").returncode == 2  # ids are unique
    listed = _cli("schedule", "list")
    assert listed.returncode == 0 and "nightly-test\tcrontab\t0 3 * * *" in listed.stdout

    assert _cli("schedule", "delete", "nightly-test").returncode == 0
    assert _crontab_lines() == before
    missing = _cli("schedule", "delete", "nightly-test")
    assert missing.returncode == 2 and "no schedule 'nightly-test'" in missing.stderr


def test_a_crontab_entry_fires_and_its_run_trains_on_the_outcome_folder(crontab_restored, outcomes, tmp_path):
    if subprocess.run(["pgrep", "-x", "cron"], capture_output=True).returncode != 0:
        pytest.skip("no cron daemon running on this machine: the entry's firing cannot be observed")
    folder = tmp_path / "outcomes"
    folder.mkdir()
    outcomes.to_csv(folder / "outcomes.csv", index=False)
    config = _tiny_config(tmp_path, folder)
    known = {run.id for run in Client().list_pipeline_runs(size=1000).items}
    created = _cli("schedule", "create", "--cron", "* * * * *", "--config", str(config), "--id", "every-minute-test", "--log-dir", str(tmp_path / "logs"))
    assert created.returncode == 0, created.stderr[-2000:]
    log = tmp_path / "logs" / "every-minute-test.log"
    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            runs = [run for run in Client().list_pipeline_runs(size=1000).items if run.id not in known]
            if runs and runs[0].status in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED):
                break
            time.sleep(5)
        else:
            pytest.fail(f"no scheduled run finished; its log: {log.read_text()[-2000:] if log.exists() else 'none'}")
    finally:
        assert _cli("schedule", "delete", "every-minute-test").returncode == 0
    run = Client().get_pipeline_run(runs[0].id)
    assert run.status == ExecutionStatus.COMPLETED, log.read_text()[-3000:]
    records = run.steps["ingest_data"].outputs["routing_records"][0].load()
    assert len(records.frame) == 60 and set(records.frame["origin_file"]) == {str(folder / "outcomes.csv")}
    assert log.exists()
