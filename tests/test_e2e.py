"""End-to-end sweeps of the real training path on digits, as a user runs them (subprocesses, slow)."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def train(*args: str, cwd: Path, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def job_results(sweep_dir: Path) -> dict[int, dict]:
    return {int(p.parent.name): json.loads(p.read_text()) for p in sweep_dir.glob("[0-9]*/result.json")}


def test_random_sweep_on_digits_and_rerun_of_the_best(tmp_path):
    sweep = tmp_path / "sweep"
    train("-m", "hpo=random", "hpo.n_trials=4", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    results = job_results(sweep)
    assert sorted(results) == [0, 1, 2, 3]
    for res in results.values():
        assert res["status"] == "completed" and res["metric"] == "validation_error"
        assert 0.0 <= res["value"] <= 1.0 and len(res["curve"]) == 1 and res["epochs_trained"] == 1
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert summary.n_trials == 4 and summary.n_failures == 0
    assert summary.best_value == pytest.approx(min(r["value"] for r in results.values()))
    assert len((sweep / "trials.csv").read_text().splitlines()) == 5
    for name in ("journal.jsonl", "incumbent.png", "curves.png", "best_config.yaml"):
        assert (sweep / name).exists(), name
    # the best configuration runs again unchanged, with the trial's seed: same validation error
    rerun = tmp_path / "rerun"
    train("--config-path", str(sweep), "--config-name", "best_config", f"hydra.run.dir={rerun}", cwd=tmp_path)
    again = json.loads((rerun / "result.json").read_text())
    assert again["value"] == pytest.approx(summary.best_value, abs=1e-6)


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_random_sweep_with_parallel_launchers(tmp_path, launcher):
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else ["hydra.launcher.timeout_min=10"]
    train("-m", "hpo=random", "hpo.n_trials=4", "hpo.n_workers=2", "trainer.max_epochs=1", f"hydra/launcher={launcher}",
          *extra, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    results = job_results(tmp_path / "sweep")
    assert len(results) == 4 and all(r["status"] == "completed" for r in results.values())
    summary = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert summary.n_trials == 4 and summary.n_jobs == 4
    # busy time = training (the jobs' epochs) + overhead; each job held its worker at least as long as it ran
    assert summary.train_seconds == pytest.approx(sum(r["train_seconds"] for r in results.values()), abs=2e-3)
    assert summary.busy_seconds == pytest.approx(summary.train_seconds + summary.overhead_seconds, abs=2e-3)
    finished = [json.loads(line) for line in (tmp_path / "sweep" / "journal.jsonl").read_text().splitlines()]
    for event in (e for e in finished if e["event"] == "segment_finished"):
        assert event["finished"] - event["started"] >= results[event["job_idx"]]["job_seconds"]


def test_successive_halving_resumes_promoted_trials_from_checkpoints(tmp_path):
    sweep = tmp_path / "sweep"
    # d2l's rungs 2, 4, 8, 10 (r_min=2, eta=2, r_max=trainer.max_epochs=10); one round of 8 configurations
    train("-m", "hpo=successive_halving", "hpo.n_trials=8", "trainer=fast", "trainer.max_epochs=10",
          f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    results = job_results(sweep)
    trained = sum(r["epochs_trained"] for r in results.values())
    assert trained == 16 + 8 + 8 + 2 == 34  # retraining promoted trials from scratch: 16 + 16 + 16 + 10 = 58
    assert OmegaConf.load(sweep / "optimization_results.yaml").epochs_total == 34
    by_trial: dict[int, list[dict]] = {}
    for _, res in sorted(results.items()):
        by_trial.setdefault(res["trial_id"], []).append(res)
    assert sorted(len(v) for v in by_trial.values()) == [1, 1, 1, 1, 2, 2, 3, 4]
    for segments in by_trial.values():
        for earlier, later in zip(segments, segments[1:]):
            # a promoted trial's curve continues its earlier epochs
            assert later["curve"][: len(earlier["curve"])] == earlier["curve"]
            assert later["epochs_trained"] == len(later["curve"]) - len(earlier["curve"])
    # checkpoints of trials that ended are deleted
    assert not any((sweep / "checkpoints").glob("trial_*/*.ckpt"))
    # trials.csv says where each trial was stopped
    with open(sweep / "trials.csv") as f:
        ended = sorted((row["status"], int(row["epochs"])) for row in csv.DictReader(f))
    assert ended == [("completed", 10), *[("stopped", 2)] * 4, *[("stopped", 4)] * 2, ("stopped", 8)]


def _final_state(sweep: Path) -> tuple[dict, float]:
    rows = (sweep / "trials.csv").read_text().splitlines()[1:]
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    return {int(r.split(",")[0]): r for r in rows}, summary.best_value


def _count_finished(journal: Path) -> int:
    text = journal.read_text() if journal.exists() else ""
    return text.count('"segment_finished"')


def _segments_in_flight(journal: Path) -> set[tuple]:
    """(trial, from, to) of every segment the journal shows started and not finished (a torn last line is
    skipped)."""
    started, finished = set(), set()
    for line in (journal.read_text() if journal.exists() else "").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        key = (event.get("trial_id"), event.get("previous_resource"), event.get("resource"))
        if event.get("event") == "segment_started":
            started.add(key)
        elif event.get("event") == "segment_finished":
            finished.add(key)
    return started - finished


def _kill_after_finished_segments(cmd: list[str], cwd: Path, journal: Path, threshold: int, log: Path,
                                  in_flight: bool = False) -> int:
    """Run ``cmd`` and SIGKILL its whole process group as soon as the journal holds ``threshold``
    segment_finished lines (and, with ``in_flight``, a segment started and not finished); returns the count
    seen at the kill. The trigger is progress, not time, so the kill lands at the same point of the sweep on
    a fast or a slow machine."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        hang_guard = time.monotonic() + 600  # fails a sweep that stopped making progress; never the trigger
        try:
            while ((seen := _count_finished(journal)) < threshold
                   or (in_flight and not _segments_in_flight(journal))):
                if proc.poll() is not None:
                    raise AssertionError(f"sweep ended ({proc.returncode}) after {seen} of {threshold} segments "
                                         f"without being killed:\n{log.read_text()[-3000:]}")
                assert time.monotonic() < hang_guard, f"no progress: {seen} of {threshold} segments"
                time.sleep(0.01)  # polling interval only: the trigger is the journal line
            assert proc.poll() is None, "the sweep ended before the kill"
            os.killpg(proc.pid, signal.SIGKILL)  # the sweeper and its job processes, as an OOM kill or preemption
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    return seen


def test_sweep_killed_at_random_moments_resumes_without_redoing_work(tmp_path):
    args = ["-m", "hpo=successive_halving", "hpo.n_trials=4", "hpo.r_min=1", "hpo.eta=2", "trainer=fast",
            "trainer.max_epochs=4", "hpo.n_workers=2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    reference = tmp_path / "reference"
    train(*args, f"hydra.sweep.dir={reference}", cwd=tmp_path)
    ref_rows, ref_best = _final_state(reference)
    total = _count_finished(reference / "journal.jsonl")
    assert total == 4 + 2 + 1  # rungs 1, 2, 4: every kill below leaves at least one segment to run

    sweep = tmp_path / "killed"
    journal = sweep / "journal.jsonl"
    # kill points: after the k-th finished segment (counted over all runs), k drawn from a seeded RNG
    points = sorted(random.Random(1234).sample(range(1, total - 1), 3))
    seen = 0
    kills = []
    for attempt, k in enumerate(points):
        cmd = [sys.executable, str(ROOT / "train.py"), *args, f"hydra.sweep.dir={sweep}"]
        if attempt:
            cmd.append("hpo.resume=true")
        threshold = max(k, seen + 1)  # each resumed run finishes at least one new segment before its kill
        assert threshold < total
        seen = _kill_after_finished_segments(cmd, tmp_path, journal, threshold, tmp_path / f"attempt{attempt}.log")
        assert '"sweep_finished"' not in journal.read_text()
        kills.append(seen)
    assert len(kills) == 3 and kills == sorted(set(kills)), kills  # three kills, each after new progress
    train(*args, f"hydra.sweep.dir={sweep}", "hpo.resume=true", cwd=tmp_path)
    rows, best = _final_state(sweep)
    assert sorted(rows) == sorted(ref_rows) == [0, 1, 2, 3]  # every trial exactly once
    assert best == pytest.approx(ref_best, abs=1e-6)
    # no finished segment was trained twice: the epochs trained by completed jobs add up to the reference's
    done = [r for r in job_results(sweep).values() if r["status"] == "completed"]
    ref_done = [r for r in job_results(reference).values() if r["status"] == "completed"]
    # (a killed job's finished epochs are in its checkpoint; the rerun trains only the rest)
    assert sum(r["epochs_trained"] for r in done) <= sum(r["epochs_trained"] for r in ref_done)
    finished = [json.loads(line) for line in (sweep / "journal.jsonl").read_text().splitlines()
                if '"segment_finished"' in line]
    keys = [(e["trial_id"], e["resource"]) for e in finished if e["status"] == "completed"]
    assert len(keys) == len(set(keys))


def test_a_metric_the_run_does_not_produce_stops_the_sweep_at_the_first_result(tmp_path):
    sweep = tmp_path / "sweep"
    proc = train("-m", "hpo.n_trials=3", "trainer=fast", "metric=val_acc", f"hydra.sweep.dir={sweep}", cwd=tmp_path,
                 check=False)
    assert proc.returncode != 0
    assert "'val_acc' not produced" in proc.stderr and "validation_error" in proc.stderr, proc.stderr[-2000:]
    assert len(job_results(sweep)) == 1  # detected at the first result: no further job started
    assert (sweep / "trials.csv").exists()  # what was computed is kept


def test_asha_with_joblib_promotes_trials_that_continue_their_curves(tmp_path):
    sweep = tmp_path / "sweep"
    train("-m", "hpo=asha", "hpo.n_trials=6", "hpo.n_workers=2", "hpo.r_min=1", "hpo.eta=2", "trainer=fast",
          "trainer.max_epochs=4", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}",
          cwd=tmp_path)
    results = job_results(sweep)
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert summary.n_trials == 6 and summary.n_failures == 0
    assert sum(r["epochs_trained"] for r in results.values()) == summary.epochs_total
    by_trial: dict[int, list[dict]] = {}
    for _, res in sorted(results.items()):
        by_trial.setdefault(res["trial_id"], []).append(res)
    promoted = [segments for segments in by_trial.values() if len(segments) > 1]
    assert promoted, "ASHA promoted nothing"
    for segments in promoted:
        for earlier, later in zip(segments, segments[1:]):
            assert later["curve"][: len(earlier["curve"])] == earlier["curve"]


@pytest.mark.parametrize("preset", ["bohb", "tpe", "gp", "mobster", "hypertune", "mobster_stopping"])
def test_model_based_preset_sweeps_and_resumes_with_its_decisions(tmp_path, preset):
    """The model is on after 3 results; a resumed sweep with a larger budget replays the recorded trials
    (the tuner checks each replayed configuration against the journal) and adds new ones."""
    sweep = tmp_path / "sweep"
    common = ["-m", f"hpo={preset}", "hpo.n_workers=2", "hpo.searcher_options.n_startup=3", "trainer=fast",
              "trainer.max_epochs=3", "model=mlp", "search_space=mlp", "hydra/launcher=joblib",
              "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}"]
    train(*common, "hpo.n_trials=6", cwd=tmp_path)
    first = OmegaConf.load(sweep / "optimization_results.yaml")
    assert first.n_trials == 6 and first.n_failures == 0
    train(*common, "hpo.n_trials=9", "hpo.resume=true", cwd=tmp_path)
    second = OmegaConf.load(sweep / "optimization_results.yaml")
    assert second.n_trials == 9 and second.n_failures == 0
    journal = [json.loads(line) for line in (sweep / "journal.jsonl").read_text().splitlines()]
    started = [e for e in journal if e["event"] == "trial_started"]
    assert sorted(e["trial_id"] for e in started) == list(range(9))  # the first 6 were not started again


@pytest.mark.parametrize("preset", ["tpe", "gp", "bohb", "mobster", "mobster_stopping"])
def test_model_based_preset_killed_mid_sweep_resumes_with_the_recorded_decisions(tmp_path, preset):
    """The user's command (joblib, 2 workers) killed once the model has decided trials, then resumed: the
    resumed sweep makes every decision the killed one made (each recorded configuration is suggested again,
    each recorded result is asked for again and taken, nothing trained twice), starts again the jobs that
    were in flight at the kill, and completes; resuming the finished journal once more replays the whole
    sweep without running a job. (With 2 asynchronous workers the jobs after the kill restart on a new
    clock, so their results may come back in another order than in a run never killed; the in-process
    tests in test_model_based.py show that a resumed sweep on one worker equals the uninterrupted one.)"""
    sweep = tmp_path / "sweep"
    journal = sweep / "journal.jsonl"
    args = ["-m", f"hpo={preset}", "model=mlp", "search_space=mlp", "hydra/launcher=joblib", "hpo.n_workers=2",
            "hydra.launcher.n_jobs=2", "hpo.n_trials=6", "hpo.searcher_options.n_startup=3", "trainer=fast",
            "trainer.max_epochs=3", f"hydra.sweep.dir={sweep}"]
    threshold = 4  # results before the kill: the model (on after 3) has decided the trials then in flight
    cmd = [sys.executable, str(ROOT / "train.py"), *args]
    # killed once the model has decided a job that is still running (the 4th result and the next start can be
    # journaled in either order)
    _kill_after_finished_segments(cmd, tmp_path, journal, threshold, tmp_path / "killed.log", in_flight=True)
    killed = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    assert not any(e["event"] == "sweep_finished" for e in killed)
    configs = {e["trial_id"]: e["config"] for e in killed if e["event"] == "trial_started"}
    finished = {(e["trial_id"], e["previous_resource"], e["resource"]) for e in killed
                if e["event"] == "segment_finished"}
    in_flight = {(e["trial_id"], e["previous_resource"], e["resource"]) for e in killed
                 if e["event"] == "segment_started"} - finished
    assert len(finished) >= threshold and in_flight

    train(*args, "hpo.resume=true", cwd=tmp_path)
    events = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    resumed = events[len(killed):]
    # the recorded decisions came again: a configuration suggested otherwise would have stopped the resume
    # ("cannot resume: trial N was recorded with config ..."), a recorded result not asked for again is
    # reported, and one asked for with other resources would have run again
    started = [e["trial_id"] for e in events if e["event"] == "trial_started"]
    assert sorted(started) == list(range(6)) and set(configs) <= set(started)
    assert [e["replayed"] for e in resumed if e["event"] == "replay_finished"] == [len(finished)]
    assert not any(e["event"] == "recorded_results_unused" for e in resumed)
    restarted = {(e["trial_id"], e["previous_resource"], e["resource"]) for e in resumed
                 if e["event"] == "segment_started"}
    assert in_flight <= restarted and not finished & restarted  # the interrupted jobs again, no finished one
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert summary.n_trials == 6 and summary.n_failures == 0

    # the finished journal replays to the very same sweep: every decision again, no job run
    again = tmp_path / "again"
    shutil.copytree(sweep, again)
    train(*args[:-1], f"hydra.sweep.dir={again}", "hpo.resume=true", cwd=tmp_path)
    replay = [json.loads(line) for line in (again / "journal.jsonl").read_text().splitlines()][len(events):]
    assert not any(e["event"] in ("segment_started", "trial_started", "recorded_results_unused") for e in replay)
    assert OmegaConf.load(again / "optimization_results.yaml").best_value == summary.best_value
