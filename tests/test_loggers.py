"""logger=csv|tensorboard|mlflow: a real ASHA sweep per logger, its runs read back with each tool's own reader."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hydra_hpo.errors import JobConfigError
from hydra_hpo.training.callbacks import CurveRecorder
from hydra_hpo.training.loggers import trial_loggers
from hydra_hpo.training.resultfile import read_result
from hydra_hpo.training.runner import train

ROOT = Path(__file__).resolve().parents[1]

# 3 trials, 1 then 2 epochs: ASHA (eta=2) promotes the best first-rung trial, whose second job resumes it
SWEEP = ["-m", "hpo=asha", "hpo.n_trials=3", "hpo.n_workers=1", "hpo.r_min=1", "hpo.eta=2", "hpo.r_max=2",
         "trainer=fast"]


def sweep(tmp_path: Path, *args: str) -> tuple[Path, dict[int, dict]]:
    """Run the sweep; return its directory and each trial's last result.json (the one with the longest curve)."""
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *SWEEP, *args, f"hydra.sweep.dir={out}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    summary = OmegaConf.load(out / "optimization_results.yaml")
    assert summary.n_trials == 3 and summary.n_failures == 0
    last: dict[int, dict] = {}
    segments: dict[int, int] = {}
    for path in sorted(out.glob("[0-9]*/result.json"), key=lambda p: int(p.parent.name)):
        result = json.loads(path.read_text())
        segments[result["trial_id"]] = segments.get(result["trial_id"], 0) + 1
        last[result["trial_id"]] = result
    assert max(segments.values()) >= 2, "ASHA promoted nothing: no trial continued in a second segment"
    return out, last


def trial_lrs(out: Path) -> dict[int, float]:
    with open(out / "trials.csv", newline="") as handle:
        return {int(row["trial_id"]): float(row["model.lr"]) for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_csv_logger_writes_one_file_per_trial_continuing_across_segments(tmp_path):
    out, last = sweep(tmp_path, "logger=csv")
    lrs = trial_lrs(out)
    for trial_id, result in last.items():
        run = out / "csv" / f"trial_{trial_id}"
        with open(run / "metrics.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        epochs = [row for row in rows if row["validation_error"]]
        assert [int(row["step"]) for row in epochs] == list(range(1, len(result["curve"]) + 1))
        assert [float(row["validation_error"]) for row in epochs] == pytest.approx(result["curve"])
        finals = [float(row["final/validation_error"]) for row in rows if row["final/validation_error"]]
        assert finals[-1] == pytest.approx(result["value"])
        assert OmegaConf.load(run / "hparams.yaml")["model.lr"] == pytest.approx(lrs[trial_id])


@pytest.mark.slow
def test_tensorboard_logger_one_run_per_trial_with_epoch_steps_and_hparams(tmp_path):
    pytest.importorskip("tensorboard", reason="pip install -e '.[loggers]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    out, last = sweep(tmp_path, "logger=tensorboard")
    lrs = trial_lrs(out)
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == sorted(f"trial_{t}" for t in last)
    for trial_id, result in last.items():
        events = EventAccumulator(str(out / "tensorboard" / f"trial_{trial_id}"))
        events.Reload()
        curve = events.Scalars("validation_error")
        # a promoted trial's second job appends to the same run: steps 1, 2, ... with no restart at 0
        assert [e.step for e in curve] == list(range(1, len(result["curve"]) + 1))
        assert [e.value for e in curve] == pytest.approx(result["curve"], rel=1e-6)
        final = events.Scalars("final/validation_error")
        assert final[-1].step == len(result["curve"]) and final[-1].value == pytest.approx(result["value"], rel=1e-6)
        hparams = events.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
        assert start.session_start_info.hparams["model.lr"].number_value == pytest.approx(lrs[trial_id])
        experiment = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/experiment"]).experiment
        assert [m.name.tag for m in experiment.metric_infos] == ["final/validation_error"]


@pytest.mark.slow
def test_mlflow_logger_parent_run_and_a_child_run_per_trial_in_a_file_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="pip install -e '.[loggers]'")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    out, last = sweep(tmp_path, "logger=mlflow", f"logger.tracking_uri=file:{store}",
                      "logger.experiment_name=loggers-test")
    lrs = trial_lrs(out)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses its file store without it
    client = MlflowClient(f"file:{store}")
    experiment = client.get_experiment_by_name("loggers-test")
    runs = client.search_runs([experiment.experiment_id])
    parent_id = (out / "mlflow_parent_run_id").read_text().strip()
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in parents] == [parent_id]
    assert parents[0].info.status == "FINISHED"  # as of the last job's end
    children = {int(r.data.tags["hydra_hpo.trial_id"]): r for r in runs if r.info.run_id != parent_id}
    assert sorted(children) == sorted(last)
    for trial_id, result in last.items():
        run = children[trial_id]
        assert run.data.tags["mlflow.parentRunId"] == parent_id
        assert run.info.run_name == f"trial_{trial_id}" and run.info.status == "FINISHED"
        assert float(run.data.params["model.lr"]) == pytest.approx(lrs[trial_id])
        # the sweeper's own keys (seed, trial.*, the resource trainer.max_epochs, hpo.*, logger.*) are no params
        assert set(run.data.params) == {"model.lr", "trainer"}
        history = sorted(client.get_metric_history(run.info.run_id, "validation_error"), key=lambda m: m.step)
        assert [m.step for m in history] == list(range(1, len(result["curve"]) + 1))
        assert [m.value for m in history] == pytest.approx(result["curve"])
        assert run.data.metrics["final/validation_error"] == pytest.approx(result["value"])


def config(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=["trainer=fast", *overrides])


def run_job(out: Path, *overrides: str) -> dict:
    """train() as one job with ``out`` as its output directory (outside Hydra: the working directory)."""
    out.mkdir()
    cwd = os.getcwd()
    os.chdir(out)
    try:
        train(config(*overrides))
    finally:
        os.chdir(cwd)
    return read_result(out)


def test_logger_none_is_the_default_and_adds_no_callback():
    cfg = config()
    assert cfg.logger.name == "none"
    assert trial_loggers(cfg, CurveRecorder(cfg.metric)) == []


@pytest.mark.parametrize("every", [0, -5, True, 2.5])
def test_a_bad_log_every_n_steps_is_one_line_naming_the_key(every):
    cfg = config("logger=csv")
    cfg.logger.log_every_n_steps = every
    with pytest.raises(JobConfigError, match=r"^logger.log_every_n_steps=.*positive integer, or null") as error:
        trial_loggers(cfg, CurveRecorder(cfg.metric))
    assert "\n" not in str(error.value)


def test_csv_run_continues_across_segments_with_epoch_steps(tmp_path):
    common = ["logger=csv", f"logger.save_dir={tmp_path / 'csv'}", "trial.id=7",
              f"trial.checkpoint_dir={tmp_path / 'ck'}", "seed=3"]
    run_job(tmp_path / "job0", *common, "trainer.max_epochs=2")
    result = run_job(tmp_path / "job1", *common, "trainer.max_epochs=3")
    assert result["epochs_trained"] == 1
    with open(tmp_path / "csv" / "trial_7" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = [row for row in rows if row["validation_error"]]
    assert [int(row["step"]) for row in epochs] == [1, 2, 3]  # one row per epoch, none per step
    assert [float(row["validation_error"]) for row in epochs] == pytest.approx(result["curve"])
    finals = [(int(row["step"]), float(row["final/validation_error"])) for row in rows if row["final/validation_error"]]
    assert finals == [(2, pytest.approx(result["curve"][1])), (3, pytest.approx(result["value"]))]


def test_log_every_n_steps_hands_the_logger_to_lightning(tmp_path):
    run_job(tmp_path / "job", "logger=csv", f"logger.save_dir={tmp_path / 'csv'}", "logger.log_every_n_steps=5",
            "trainer.max_epochs=2")
    with open(tmp_path / "csv" / "run" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Lightning logs the epoch's metrics at the global step (trainer=fast: 10 steps per epoch), 0-based
    assert [int(row["step"]) for row in rows if row["validation_error"]] == [9, 19]


def _open_parent(barrier, uri: str, sweep_dir: str, queue) -> None:
    from hydra_hpo.training.loggers import mlflow_parent_run

    barrier.wait()  # all processes ask at once: the lock must leave one parent run
    queue.put(mlflow_parent_run(uri, "race", Path(sweep_dir)))


@pytest.mark.slow
def test_concurrent_first_jobs_share_one_mlflow_parent_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="pip install -e '.[loggers]'")
    import multiprocessing

    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_open_parent, args=(barrier, uri, str(tmp_path), queue)) for _ in range(4)]
    for process in processes:
        process.start()
    answers = {queue.get(timeout=300) for _ in processes}
    for process in processes:
        process.join(timeout=60)
    assert len(answers) == 1
    experiment_id, run_id = answers.pop()
    assert [r.info.run_id for r in MlflowClient(uri).search_runs([experiment_id])] == [run_id]
    assert (tmp_path / "mlflow_parent_run_id").read_text().strip() == run_id
