"""The trial runner: result.json, resume across segments, and every way a job can end."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from hydra_hpo.training.models import SoftmaxRegression
from hydra_hpo.training.resultfile import read_result, write_result
from hydra_hpo.training.runner import train

ROOT = Path(__file__).resolve().parents[1]


def config(*overrides):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=["trainer=fast", *overrides])


def run(tmp_path, name, *overrides):
    """train() with the working directory (the output directory outside Hydra) set to tmp_path/name."""
    out = tmp_path / name
    out.mkdir()
    cwd = os.getcwd()
    os.chdir(out)
    try:
        value = train(config(*overrides))
    finally:
        os.chdir(cwd)
    return value, read_result(out)


def test_result_file_fields(tmp_path):
    value, result = run(tmp_path, "a", "seed=3", "trial.id=7", "trainer.max_epochs=2")
    assert result["status"] == "completed" and result["error"] is None
    assert result["metric"] == "validation_error"
    assert result["value"] == value == result["curve"][-1] == result["metrics"]["validation_error"]
    assert len(result["curve"]) == len(result["epoch_seconds"]) == result["epochs"] == result["epochs_trained"] == 2
    assert 0 < result["epoch_seconds"][0] < result["epoch_seconds"][1] and result["seconds"] > 0
    assert {"train_loss", "validation_error"} <= set(result["metrics"])
    assert result["trial_id"] == 7 and result["seed"] == 3
    assert not list(tmp_path.glob("a/lightning_logs")) and not list(tmp_path.glob("a/*.ckpt"))


def test_result_says_where_the_job_trained(tmp_path):
    _, result = run(tmp_path, "a", "trainer.accelerator=cpu")
    assert result["device"] == "cpu"
    assert result["cuda_visible_devices"] == os.environ.get("CUDA_VISIBLE_DEVICES") == ""  # conftest hides GPUs


def test_resume_continues_the_curve_and_matches_an_uninterrupted_run(tmp_path):
    checkpoints = f"trial.checkpoint_dir={tmp_path / 'ck'}"
    _, first = run(tmp_path, "first", checkpoints, "trainer.max_epochs=2", "seed=5")
    assert (tmp_path / "ck" / "last.ckpt").is_file()
    _, second = run(tmp_path, "second", checkpoints, "trainer.max_epochs=4", "seed=5")
    _, whole = run(tmp_path, "whole", "trainer.max_epochs=4", "seed=5")
    assert second["status"] == "completed"
    assert len(second["curve"]) == second["epochs"] == 4 and second["epochs_trained"] == 2
    assert second["curve"][:2] == first["curve"]
    assert second["epoch_seconds"][:2] == first["epoch_seconds"]
    assert second["seconds"] == pytest.approx(second["epoch_seconds"][3] - second["epoch_seconds"][1])
    assert second["curve"] == pytest.approx(whole["curve"], abs=1e-9)
    assert second["metrics"]["train_loss"] == pytest.approx(whole["metrics"]["train_loss"], rel=1e-5)


def test_segment_already_trained_reports_the_recorded_curve(tmp_path):
    checkpoints = f"trial.checkpoint_dir={tmp_path / 'ck'}"
    _, done = run(tmp_path, "done", checkpoints, "trainer.max_epochs=3")
    stamp = (tmp_path / "ck" / "last.ckpt").stat().st_mtime_ns
    value, again = run(tmp_path, "again", checkpoints, "trainer.max_epochs=2")
    assert again["status"] == "completed" and again["epochs_trained"] == 0 and again["seconds"] == 0
    assert again["curve"] == done["curve"][:2] and value == done["curve"][1] and again["epochs"] == 2
    assert (tmp_path / "ck" / "last.ckpt").stat().st_mtime_ns == stamp


def test_diverged_run_returns_nan(tmp_path):
    value, result = run(tmp_path, "a", "model.lr=inf", "trainer.max_epochs=3")
    assert math.isnan(value)
    assert result["status"] == "diverged" and result["value"] is None
    assert "training loss" in result["error"] and result["epochs"] == 0
    raw = json.loads((tmp_path / "a" / "result.json").read_text())
    assert raw["value"] is None  # JSON has no NaN


def test_exception_is_recorded_and_reraised(tmp_path, monkeypatch):
    def broken(self, batch, batch_idx):
        raise RuntimeError("boom")

    monkeypatch.setattr(SoftmaxRegression, "training_step", broken)
    with pytest.raises(RuntimeError, match="boom"):
        run(tmp_path, "a")
    result = read_result(tmp_path / "a")
    assert result["status"] == "failed" and result["error"] == "RuntimeError: boom" and result["value"] is None


def test_job_that_dies_mid_trial_resumes_from_its_last_finished_epoch(tmp_path, monkeypatch):
    checkpoints = f"trial.checkpoint_dir={tmp_path / 'ck'}"
    real_step = SoftmaxRegression.training_step

    def dies_in_third_epoch(self, batch, batch_idx):
        if self.trainer.current_epoch == 2:
            raise RuntimeError("killed")
        return real_step(self, batch, batch_idx)

    monkeypatch.setattr(SoftmaxRegression, "training_step", dies_in_third_epoch)
    with pytest.raises(RuntimeError):
        run(tmp_path, "dies", checkpoints, "trainer.max_epochs=3")
    dead = read_result(tmp_path / "dies")
    assert dead["status"] == "failed" and dead["epochs"] == 2
    monkeypatch.setattr(SoftmaxRegression, "training_step", real_step)
    _, resumed = run(tmp_path, "resumed", checkpoints, "trainer.max_epochs=3")
    _, whole = run(tmp_path, "whole", "trainer.max_epochs=3")
    assert resumed["epochs_trained"] == 1 and resumed["curve"][:2] == dead["curve"]
    assert resumed["curve"] == pytest.approx(whole["curve"], abs=1e-9)


def test_threads_setting(tmp_path):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        run(tmp_path, "a", "threads=null")
        assert torch.get_num_threads() == 2  # null: left as it is
        run(tmp_path, "b", "threads=1")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_missing_metric_names_what_the_run_logs(tmp_path):
    with pytest.raises(ValueError, match=r"metric 'accuracy' not produced; the run logs: \[.*'validation_error'"):
        run(tmp_path, "a", "metric=accuracy")
    result = read_result(tmp_path / "a")
    assert result["status"] == "config_error" and "'train_loss'" in result["error"]


def test_timeout_stops_the_job(tmp_path):
    with pytest.raises(TimeoutError, match="trial.timeout"):
        run(tmp_path, "a", "trial.timeout=0.000001", "trainer.max_epochs=5")
    result = read_result(tmp_path / "a")
    assert result["status"] == "timeout" and result["epochs"] == 0


class AutoModel(L.LightningModule):
    """A user's module in automatic optimization that logs its metric per step (Lightning's usual way)."""

    def __init__(self, lr=0.1, num_outputs=10):
        super().__init__()
        self.lr = lr
        self.layer = torch.nn.Linear(64, num_outputs)

    def forward(self, x):
        return self.layer(x.flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("accuracy", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def test_users_automatic_optimization_module(tmp_path):
    checkpoints = f"trial.checkpoint_dir={tmp_path / 'ck'}"
    target = "model._target_=test_runner.AutoModel"
    value, result = run(tmp_path, "a", target, "metric=accuracy", "trainer.max_epochs=2", checkpoints)
    assert result["status"] == "completed" and len(result["curve"]) == 2 and 0 <= value <= 1
    _, resumed = run(tmp_path, "b", target, "metric=accuracy", "trainer.max_epochs=3", checkpoints)
    assert resumed["curve"][:2] == result["curve"] and resumed["epochs_trained"] == 1
    value, diverged = run(tmp_path, "c", target, "metric=accuracy", "model.lr=inf")
    assert diverged["status"] == "diverged" and math.isnan(value)


def test_result_file_round_trip(tmp_path):
    path = write_result(tmp_path, {"metric": "m", "value": math.nan, "status": "diverged", "curve": [0.5, math.inf]})
    assert path == tmp_path / "result.json"
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    result = read_result(tmp_path)
    assert result["value"] is None and result["curve"][0] == 0.5 and math.isnan(result["curve"][1])
    assert read_result(tmp_path / "nothing") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "result.json").write_text('{"metric": "m"}')
    with pytest.raises(ValueError, match=r"bad.*result\.json lacks the keys \['value', 'status'\]"):
        read_result(tmp_path / "bad")


@pytest.mark.slow
def test_train_py_single_run_writes_result(tmp_path):
    out = tmp_path / "run"
    subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "trainer=fast", f"hydra.run.dir={out}"],
        cwd=tmp_path, check=True, capture_output=True, timeout=300,
    )
    result = read_result(out)
    assert result["status"] == "completed" and len(result["curve"]) == 1


def test_result_splits_the_jobs_time_into_training_and_overhead(tmp_path):
    checkpoints = f"trial.checkpoint_dir={tmp_path / 'ck'}"
    _, first = run(tmp_path, "first", checkpoints, "trainer.max_epochs=2")
    _, second = run(tmp_path, "second", checkpoints, "trainer.max_epochs=3")
    for result in (first, second):
        assert result["train_seconds"] == result["seconds"] > 0
        phases = result["phases"]
        assert {"setup", "data", "model", "trainer", "fit_start_and_restore", "epochs", "checkpoint_save",
                "fit_other", "result"} <= set(phases)
        assert phases["epochs"] == pytest.approx(result["train_seconds"], abs=1e-5)
        # the phases are consecutive stretches of the job: together they are its wall time
        assert sum(phases.values()) == pytest.approx(result["job_seconds"], abs=1e-4)
        assert result["overhead_seconds"] == pytest.approx(result["job_seconds"] - result["train_seconds"])
        assert phases["checkpoint_save"] > 0 and result["overhead_seconds"] >= phases["checkpoint_save"]
    assert second["process_job"] == first["process_job"] + 1  # the same process ran both
