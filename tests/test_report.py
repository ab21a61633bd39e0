"""Report files: markdown formatting, CSV columns, readable PNGs, and the `latest` link."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from support import score_rows
from ragrouter.evaluation.metrics import evaluate_scores
from ragrouter.evaluation.report import plot_curves, results_markdown, update_latest_link, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def scores_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = []
    for protocol, n in (("P1", 60), ("P4 transfer", 50)):
        strong = (rng.random(n) < 0.75).astype(float)
        weak = (rng.random(n) < 0.55).astype(float)
        for router, score in (("random", rng.random(n)), ("length", strong - weak + rng.normal(0, 1, n))):
            parts.append(score_rows(protocol, router, score, strong, weak))
    return pd.concat(parts, ignore_index=True)


def test_markdown_formats_percentages_and_sections() -> None:
    table = pd.DataFrame(
        {
            "protocol": ["P2", "P1"],
            "router": ["knn", "ridge"],
            "APGR": [0.67849, 0.5],
            "CPT20": [0.0512, 0.2],
            "CPT50": [0.287, 0.5],
            "CPT80": [0.70349, float("nan")],
            "APGR_routellm": [0.6612, 0.5],
            "n": [100, 80],
        }
    )
    text = results_markdown(table)
    assert text.index("## P1 (n=80)") < text.index("## P2 (n=100)")
    assert "| knn | 0.678 | 5.1% | 28.7% | 70.3% | 0.661 |" in text
    assert "| ridge | 0.500 | 20.0% | 50.0% | n/a | 0.500 |" in text


def test_plot_names_routers_with_their_apgr(scores_frame: pd.DataFrame) -> None:
    table = evaluate_scores(scores_frame)
    figure = plot_curves(scores_frame, "P1")
    axes = figure.axes[0]
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    for row in table[table["protocol"] == "P1"].itertuples():
        assert f"{row.router} (APGR {row.APGR:.3f})" in labels
    assert any(label.startswith("oracle") for label in labels)
    assert any(label.startswith("weak only") for label in labels)
    assert "P1" in axes.get_title() and "n=60" in axes.get_title()
    with pytest.raises(ValueError, match="no scores"):
        plot_curves(scores_frame, "P9")


def test_write_report_files(scores_frame: pd.DataFrame, tmp_path: Path) -> None:
    table = evaluate_scores(scores_frame)
    paths = write_report(table, scores_frame, tmp_path / "run")
    assert set(paths) == {"table.md", "table.csv", "scores.csv", "curves_P1.png", "curves_P4_transfer.png"}
    assert all(path.is_file() for path in paths.values())
    written = pd.read_csv(paths["table.csv"])
    assert list(written.columns) == ["protocol", "router", "APGR", "CPT20", "CPT50", "CPT80", "APGR_routellm", "n"]
    assert len(written) == 4
    scores = pd.read_csv(paths["scores.csv"])
    assert list(scores.columns) == ["id", "protocol", "fold", "router", "score", "strong_quality", "weak_quality"]
    # The CSV alone is enough to recompute the table.
    np.testing.assert_allclose(evaluate_scores(scores)["APGR"], table["APGR"])
    for name in ("curves_P1.png", "curves_P4_transfer.png"):
        assert paths[name].read_bytes()[:8] == PNG_SIGNATURE
        image = imread(paths[name])
        assert image.shape[0] > 300 and image.shape[1] > 300
        assert image.std() > 0  # not a blank canvas


def test_latest_link_follows_the_newest_run(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    first, second = root / "run-1", root / "run-2"
    first.mkdir(parents=True)
    second.mkdir()
    (second / "table.md").write_text("second")
    update_latest_link(root, first)
    link = update_latest_link(root, second)
    assert link == root / "latest"
    assert not os.path.isabs(os.readlink(link))
    assert link.resolve() == second.resolve()
    assert (link / "table.md").read_text() == "second"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "run-1", "run-2"]  # no temporary links left
    with pytest.raises(ValueError, match="does not exist"):
        update_latest_link(root, root / "run-3")
