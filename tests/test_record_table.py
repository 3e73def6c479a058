"""The table recorder (benchmarks/record_table.py): sharded recording merges into the same table."""

from __future__ import annotations

import importlib.util
import json
import math
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


MLP_SPACE = REPO / "conf" / "search_space" / "mlp.yaml"


def test_measured_rows_carry_the_real_runners_metrics_and_replay(recorder, tmp_path) -> None:
    from hydra_hpo.simulate import simulate
    from hydra_hpo.table import Table

    out = tmp_path / "mo.jsonl"
    assert recorder.main(["--configs", "3", "--epochs", "2", "--measure", "--out", str(out)]) == 0
    table_rows = rows(out)
    for row in table_rows:
        assert row["inference_ms"] > 0 and row["peak_memory_mb"] > 0
        # n_params is the trainable parameters of the row's model, counted here from its layers
        model, _ = recorder._model_and_data(row["config"], seed=0)
        assert row["n_params"] == sum(p.numel() for p in model.parameters()) > 0
        assert isinstance(row["n_params"], int)

    table = Table.load(out)
    space = recorder.load_space(MLP_SPACE)
    hpo = {"searcher": "random", "scheduler": "fifo", "n_trials": 4,
           "objectives": {"validation_error": "min", "inference_ms": "min"}}
    outcome = simulate(hpo, space, table, n_workers=2, seed=0)
    segments = [(record, s) for record in outcome.trials.values() for s in record.segments]
    assert segments
    for record, segment in segments:
        row = table_rows[table.lookup_index(record.config, space)]
        assert segment.metrics["inference_ms"] == row["inference_ms"]
        assert segment.metrics["n_params"] == row["n_params"]


def test_a_diverged_row_still_gets_its_size_and_latency(recorder) -> None:
    config = {"model.lr": 1.0e6, "data.batch_size": 64, "model.momentum": 0.9, "model.activation": "relu",
              "model.num_units": 64, "model.num_layers": 2}
    row = recorder.record_row(config, 3, seed=0, measure=True)
    assert math.isnan(row["val_error"][-1]) and len(row["elapsed"]) == 3
    model, _ = recorder._model_and_data(config, seed=0)
    assert row["n_params"] == sum(p.numel() for p in model.parameters())
    assert row["inference_ms"] > 0


def test_peak_memory_is_the_rows_own_and_holds_its_training_state(recorder) -> None:
    if recorder.reset_peak_rss() is None:
        pytest.skip("the per-row peak resident memory needs Linux's /proc/self/clear_refs and glibc")
    big = {"model.lr": 0.01, "data.batch_size": 256, "model.momentum": 0.9, "model.activation": "relu",
           "model.num_units": 1024, "model.num_layers": 3}
    small = {**big, "model.num_units": 32, "model.num_layers": 1}
    first_big = recorder.record_row(big, 1, seed=0, measure=True)
    small_row = recorder.record_row(small, 1, seed=0, measure=True)
    second_big = recorder.record_row(big, 1, seed=0, measure=True)  # after other rows: not reused memory
    for row in (first_big, second_big):
        # parameters, their gradients and the momentum buffers are resident at once (float32)
        assert row["peak_memory_mb"] >= 3 * 4 * row["n_params"] / 2**20
    assert small_row["peak_memory_mb"] < 3 * 4 * first_big["n_params"] / 2**20


def test_measured_shards_merge_with_their_extras_and_do_not_mix(recorder, tmp_path, capsys) -> None:
    out = tmp_path / "mo.jsonl"
    common = ["--configs", "3", "--epochs", "1", "--out", str(out)]
    for shard in ("0/2", "1/2"):
        assert recorder.main(common + ["--measure", "--shard", shard]) == 0
    # a shard continued without --measure would mix rows with and without the extras
    assert recorder.main(["--configs", "5", "--epochs", "1", "--out", str(out), "--shard", "1/2"]) == 2
    assert "recorded with --measure" in capsys.readouterr().err
    assert recorder.main(common + ["--merge", "2"]) == 0
    merged = rows(out)
    assert len(merged) == 3 and all(set(recorder.MEASURED) <= set(r) for r in merged)
    assert recorder.main(["--configs", "4", "--epochs", "1", "--out", str(out)]) == 2  # resume without --measure
    assert "run with --measure" in capsys.readouterr().err and len(rows(out)) == 3


def test_measure_is_single_threaded(recorder, tmp_path, capsys) -> None:
    out = tmp_path / "t.jsonl"
    assert recorder.main(["--configs", "1", "--epochs", "1", "--measure", "--threads", "2", "--out", str(out)]) == 2
    assert "--threads 2 with --measure" in capsys.readouterr().err and not out.exists()
