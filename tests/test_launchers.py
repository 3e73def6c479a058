"""Asynchronous sweeps through launchers that run jobs in other processes (subprocess runs, slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

STUB = Path(__file__).parent / "stub_app" / "stub.py"
pytestmark = pytest.mark.slow


def run_stub(sweep_dir: Path, *overrides: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(STUB), "-m", f"hydra.sweep.dir={sweep_dir}", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"sweep failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def job_times(sweep_dir: Path) -> list[tuple[float, float]]:
    times = [json.loads(p.read_text()) for p in sweep_dir.glob("*/times.json")]
    return sorted((t["start"], t["end"]) for t in times)


LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_async_sweep_keeps_workers_busy(tmp_path, launcher):
    # unequal job lengths: a batch barrier would leave one worker idle half the time
    sleeps = "sleep=[1.5,0.5,1.0,0.5]"
    run_stub(tmp_path / "async", *LAUNCHERS[launcher], "hpo.n_workers=2", "hpo.n_trials=12", sleeps)
    summary = OmegaConf.load(tmp_path / "async" / "optimization_results.yaml")
    times = job_times(tmp_path / "async")
    assert len(times) == 12 and summary.n_trials == 12 and summary.n_failures == 0
    # a new job started while another was still running, after the first jobs (no barrier)
    overlaps = [
        (s2, e1) for (s1, e1) in times for (s2, e2) in times if s1 < s2 < e1 and s2 > times[1][0] + 0.1
    ]
    assert overlaps, times
    run_stub(tmp_path / "batch", *LAUNCHERS[launcher], "hpo.n_workers=2", "hpo.n_trials=12", sleeps,
             "hpo.executor=batch")
    batch = OmegaConf.load(tmp_path / "batch" / "optimization_results.yaml")
    print(f"{launcher}: utilization async={summary.worker_utilization} batch={batch.worker_utilization}")
    assert summary.worker_utilization >= 0.9
    assert summary.worker_utilization > batch.worker_utilization + 0.1


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_failed_and_killed_jobs_are_recorded(tmp_path, launcher):
    proc = run_stub(tmp_path, *LAUNCHERS[launcher], "hpo.n_workers=2", "hpo.n_trials=5", "+behaviour.1=fail",
                    "+behaviour.3=kill")
    rows = {int(r.split(",")[0]): r for r in (tmp_path / "trials.csv").read_text().splitlines()[1:]}
    assert ",failed," in rows[1] and "fails on purpose" in rows[1]
    assert ",killed," in rows[3], proc.stdout[-2000:]
    assert all(",completed," in rows[t] for t in (0, 2)), rows
    if launcher == "joblib":
        # A SIGKILLed loky worker breaks joblib's whole pool: a job running beside it is killed too.
        assert ",completed," in rows[4] or "TerminatedWorkerError" in rows[4], rows
    else:
        assert ",completed," in rows[4], rows


def test_hung_job_is_abandoned_after_the_trial_timeout(tmp_path):
    run_stub(tmp_path, *LAUNCHERS["submitit_local"], "hpo.n_workers=2", "hpo.n_trials=4", "+behaviour.1=hang",
             "+hang_seconds=25", "hpo.trial_timeout=1")
    rows = {int(r.split(",")[0]): r for r in (tmp_path / "trials.csv").read_text().splitlines()[1:]}
    assert ",timeout," in rows[1] and "hpo.trial_timeout=1" in rows[1]
    assert all(",completed," in rows[t] for t in (0, 2, 3)), rows


def test_ctrl_c_marks_jobs_interrupted_writes_the_summary_and_resumes(tmp_path):
    import os
    import signal
    import time

    cmd = [sys.executable, str(STUB), "-m", f"hydra.sweep.dir={tmp_path}", *LAUNCHERS["joblib"],
           "hpo.n_workers=2", "hpo.n_trials=6", "sleep=[4.0]"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    journal = tmp_path / "journal.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (journal.exists() and journal.read_text().count("segment_started") >= 2):
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out[-2000:]
    rows = (tmp_path / "trials.csv").read_text().splitlines()[1:]
    assert rows and all(",interrupted," in r for r in rows), rows
    assert "segment_interrupted" in journal.read_text()
    run_stub(tmp_path, *LAUNCHERS["joblib"], "hpo.n_workers=2", "hpo.n_trials=6", "sleep=[0.2]", "hpo.resume=true")
    rows = (tmp_path / "trials.csv").read_text().splitlines()[1:]
    assert len(rows) == 6 and all(",completed," in r for r in rows), rows
