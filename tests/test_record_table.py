"""The table recorder (benchmarks/record_table.py): sharded recording merges into the same table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recorder():
    spec = importlib.util.spec_from_file_location("record_table", REPO / "benchmarks" / "record_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_shards_merge_into_the_unsharded_table(recorder, tmp_path) -> None:
    whole, sharded = tmp_path / "whole.jsonl", tmp_path / "sharded.jsonl"
    common = ["--configs", "5", "--epochs", "2"]
    assert recorder.main(common + ["--out", str(whole)]) == 0
    assert recorder.main(["--configs", "1", "--epochs", "2", "--out", str(sharded)]) == 0  # rows already there
    for shard in ("1/2", "0/2"):
        assert recorder.main(common + ["--out", str(sharded), "--shard", shard]) == 0
    shard_rows = rows(recorder.shard_path(sharded, 1, 2))
    assert [row["index"] for row in shard_rows] == [1, 3]  # index % 2 == 1, after the row in --out
    assert recorder.main(common + ["--out", str(sharded), "--merge", "2"]) == 0

    expected, merged = rows(whole), rows(sharded)
    assert [r["config"] for r in merged] == [r["config"] for r in expected]
    # the same seeded training: identical curves (elapsed is measured CPU time, so only its shape is checked)
    assert [r["val_error"] for r in merged] == [r["val_error"] for r in expected]
    assert all(len(r["elapsed"]) == 2 and 0 < r["elapsed"][0] <= r["elapsed"][1] for r in merged)
    assert all("index" not in r for r in merged)
    # merging again adds nothing
    assert recorder.main(common + ["--out", str(sharded), "--merge", "2"]) == 0
    assert len(rows(sharded)) == 5


def test_merge_stops_at_a_gap(recorder, tmp_path) -> None:
    out = tmp_path / "table.jsonl"
    assert recorder.main(["--configs", "4", "--epochs", "1", "--out", str(out), "--shard", "1/2"]) == 0
    assert recorder.main(["--configs", "4", "--epochs", "1", "--out", str(out), "--merge", "2"]) == 0
    assert not out.exists() or rows(out) == []  # index 0 (shard 0) is missing: nothing can be appended
    assert recorder.main(["--configs", "4", "--epochs", "1", "--out", str(out), "--shard", "0/2"]) == 0
    assert recorder.main(["--configs", "4", "--epochs", "1", "--out", str(out), "--merge", "2"]) == 0
    assert len(rows(out)) == 4


def test_bad_shard_is_refused(recorder) -> None:
    with pytest.raises(SystemExit):
        recorder.main(["--shard", "2/2"])


def test_lenet_rows_train_the_lenet_of_the_model_config(recorder, tmp_path) -> None:
    space = REPO / "conf" / "search_space" / "lenet_digits.yaml"
    out = tmp_path / "lenet.jsonl"
    args = ["--model", "lenet", "--image-size", "28", "--space", str(space), "--configs", "2", "--epochs", "2"]
    assert recorder.main(args + ["--out", str(out)]) == 0
    table = rows(out)
    assert [r["config"] for r in table] == recorder.sample_configs(recorder.load_space(space), 2, seed=0)
    assert all(len(r["val_error"]) == 2 and len(r["elapsed"]) == 2 for r in table)

    # the row is the curve of conf/model/lenet.yaml's class with the sampled model.* args, at 28x28 pixels
    config = table[0]["config"]
    model, data = recorder._model_and_data(config, seed=1, model="lenet", image_size=28)
    assert type(model).__name__ == "LeNet" and tuple(data.x_train.shape[1:]) == (1, 28, 28)
    assert (model.lr, model.momentum, model.weight_decay) == (
        config["model.lr"], config["model.momentum"], config["model.weight_decay"])
    assert type(model.net[1]).__name__ == {"relu": "ReLU", "tanh": "Tanh"}[config["model.activation"]]
    errors, _ = recorder.train_curve(config, 2, recorder.trial_seed(0, 0), "lenet", 28)
    assert [recorder.round_sig(e) for e in errors] == table[0]["val_error"]


def test_unknown_model_is_named(recorder, tmp_path, capsys) -> None:
    out = tmp_path / "t.jsonl"
    assert recorder.main(["--model", "resnet", "--configs", "1", "--epochs", "1", "--out", str(out)]) == 2
    assert "--model 'resnet'" in capsys.readouterr().err and not out.exists()


def test_lenet_defaults_are_d2l_plain_sgd() -> None:
    from hydra_hpo.training.models import LeNet

    model = LeNet()
    model.materialize(torch.zeros(2, 1, 28, 28))
    optimizer = model.configure_optimizers()
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.1, 0.0, 0.0)
    assert type(model.net[1]).__name__ == "Sigmoid"
    with pytest.raises(ValueError, match="model.activation='gelu'"):
        LeNet(activation="gelu")
