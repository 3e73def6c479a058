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
    if launcher == "joblib":
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
