"""The run config: one typed tree, checked once, errors that name the setting's path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ragrouter.config import RunConfig, feature_configs
from ragrouter.encoder import EncoderConfig
from ragrouter.typed_config import ConfigError
from ragrouter_cli import main as cli

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"routers": {"ragrouter": {"max_tokns": 3}}}, "routers.ragrouter.max_tokns: unknown key; did you mean encoder.max_tokens?"),
        ({"routers": {"ragrouter": {"encoder": {"max_tokns": 3}}}}, "routers.ragrouter.encoder.max_tokns: unknown key; did you mean max_tokens?"),
        ({"routers": {"ragrouter": {"epochs": 3}}}, "routers.ragrouter.epochs: unknown key; did you mean training.epochs?"),
        ({"encodr": {}}, "encodr: unknown key; did you mean encoder?"),
        ({"encoder": {"dtype": "half"}}, "encoder.dtype: must be one of auto, bfloat16, float32, qint8; got str 'half'"),
        ({"routers": {"knn": {"k": "many"}}}, "routers.knn.k: expected int, got str 'many'"),
        ({"routers": {"knnn": {}}}, "routers.knnn: unknown router 'knnn'; known: bert, causal_llm, knn"),
        ({"routers": {"ragrouter": {"k": 3}}}, "routers.ragrouter: k must be at least 20, got 3"),
        ({"sources": [{"name": "x", "kind": "table", "path": "a.csv"}]}, "sources[0]: source 'x': a 'table' source needs strong_column"),
        ({"protocols": [{"name": "X", "kind": "kfold", "source": "nope"}]}, "protocols[0] (X): names sources ['nope']"),
        ({"registration": {"strong_fraction": 2}}, "registration: strong_fraction must be in [0, 1], got 2.0"),
        ({"labels": {"threshold": -0.1}}, "labels: threshold must be >= 0"),
        ({"promotion": {"scored_folds": 9}}, "promotion.scored_folds: protocol P1: scored_folds must be between 1 and folds (5), got 9"),
        ({"promotion": {"guarded": ["CPT90"]}}, "promotion.guarded: ['CPT90'] cannot be guarded; choose among ['APGR', 'CPT50', 'CPT20', 'CPT80']"),
        ({"promotion": {"min_queries": 0}}, "promotion.min_queries: must be >= 1, got 0"),
        ({"promotion": {"baseline": "knnn"}}, "promotion.baseline: routers.knnn: unknown router 'knnn'"),
    ],
)
def test_a_bad_setting_fails_with_its_path(parameters, message):
    with pytest.raises(ConfigError) as error:
        RunConfig.from_dict(parameters)
    assert str(error.value).startswith(message), str(error.value)


def test_defaults_live_in_one_place_and_configs_state_only_what_differs():
    default = RunConfig.from_dict({})
    assert [s.name for s in default.sources] == ["mmlu", "gsm8k"] and [p.name for p in default.protocols] == ["P1", "P2", "P3", "P4"]
    assert list(default.routers) == ["ragrouter"] and default.registration.router == "ragrouter"
    training = RunConfig.from_dict(yaml.safe_load((CONFIGS / "training.yaml").read_text())["parameters"])
    assert training.sources == default.sources and training.routers["ragrouter"].config == default.routers["ragrouter"].config
    for path in CONFIGS.glob("*.yaml"):
        text = path.read_text()
        # no file restates a default: the source list and protocols come from ragrouter/config.py
        # unless the file changes them (a sample, a subset of protocols)
        parameters = yaml.safe_load(text)["parameters"]
        run = RunConfig.from_dict(parameters)
        if "sources" in parameters:
            assert run.sources != default.sources, path.name
        if "protocols" in parameters:
            assert run.protocols != default.protocols, path.name
        if "encoder" in parameters:
            assert run.encoder != default.encoder, path.name


def test_the_config_round_trips_and_routers_share_one_feature_set_per_encoder():
    run = RunConfig.from_dict(
        {"encoder": {"max_tokens": 128}, "routers": {"knn": {}, "mf": {}, "ragrouter": {}, "int8": {"router": "knn", "encoder": {"dtype": "qint8"}}, "random": {}}}
    )
    again = RunConfig.from_dict(run.to_dict())
    assert again.to_dict() == run.to_dict()
    sets = feature_configs(list(run.routers.values()))
    shared = sets[EncoderConfig(max_tokens=128).identity]
    assert shared.token_states and shared.parse is not None  # what ragrouter needs, knn and mf read its pooled part
    assert len(sets) == 2 and run.routers["random"].feature_key is None


def test_ablations_merge_their_changes_into_the_ragrouter_entry():
    run = RunConfig.from_dict(
        {"routers": {"ragrouter": {"k": 30, "network": {"hidden": 16}}}, "ablations": {"no-syntax": {"network": {"syntax": False}}}}
    ).with_ablations()
    variant = run.routers["ragrouter-no-syntax"]
    assert variant.kind == "ragrouter" and variant.config.k == 30
    assert (variant.config.network.hidden, variant.config.network.syntax) == (16, False)


def test_the_cli_prints_the_checked_config_and_stops_bad_ones_without_a_traceback(tmp_path, capsys):
    assert cli(["config", "-c", str(CONFIGS / "training_small.yaml")]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["routers"]["ragrouter"]["encoder"]["max_tokens"] == 128 and printed["sources"][0]["sample_fraction"] == 0.06
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  routers:\n    ragrouter: {max_tokns: 3}\n")
    assert cli(["run", "training", "-c", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {bad}: routers.ragrouter.max_tokns: unknown key; did you mean encoder.max_tokens?\n"
    done = subprocess.run([str(Path(sys.executable).with_name("ragrouter")), "config", "-c", str(tmp_path / "none.yaml")], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr == f"error: {tmp_path / 'none.yaml'}: no such run config\n"
