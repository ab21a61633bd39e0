"""The ZenML-free comparison CLI (RouteLLM's router_strategy_comparison.py equivalent)."""

from __future__ import annotations

import pandas as pd
import pytest

from ragrouter.compare import main


def test_compare_cli_writes_the_report_for_each_dataset_and_strategy(routellm_data, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--datasets", "GSM8K", "--strategies", "random", "knn", "--output_dir", str(out),
            "--data-root", str(routellm_data), "--sample-fraction", "0.1", "--max-tokens", "64"]
    assert main(args) == 0
    table = pd.read_csv(out / "table.csv")
    assert sorted(zip(table["protocol"], table["router"])) == [("gsm8k", "knn"), ("gsm8k", "random")]
    assert table[["APGR", "CPT50"]].notna().all().all()
    scores = pd.read_csv(out / "scores.csv")
    assert scores.groupby("router")["id"].nunique().eq(scores["id"].nunique()).all()
    assert (out / "curves_gsm8k.png").read_bytes().startswith(b"\x89PNG")
    assert "report:" in capsys.readouterr().out


def test_compare_cli_rejects_unknown_strategies(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--strategies", "oracle", "--output-dir", str(tmp_path)])
    assert exit_.value.code == 2
    assert "invalid choice: 'oracle'" in capsys.readouterr().err
