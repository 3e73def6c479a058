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


def job_times(sweep_dir: Path) -> dict[int, dict]:
    """Each job's own record (start, end, waited), by job number."""
    return {int(p.parent.name): json.loads(p.read_text()) for p in sweep_dir.glob("[0-9]*/times.json")}


def max_in_flight(times: list[dict]) -> int:
    """The most jobs running at one moment, from the jobs' own start and end times."""
    events = sorted([(t["start"], 1) for t in times] + [(t["end"], -1) for t in times], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_async_sweep_starts_a_job_while_another_still_runs(tmp_path, launcher):
    # Trial 0 waits until trial 2 has started: without a batch barrier, trial 1 ends, trial 2 starts on the
    # freed worker and trial 0 then ends. With a barrier trial 2 could never start first (trial 0 would give
    # up: waited=False). Progress decides it, not how long anything takes. (Utilization, a speed figure, is
    # printed by benchmarks/async_utilization.py.)
    run_stub(tmp_path / "async", *LAUNCHERS[launcher], "hpo.n_workers=2", "hpo.n_trials=8", "+wait_for.0=2")
    summary = OmegaConf.load(tmp_path / "async" / "optimization_results.yaml")
    times = job_times(tmp_path / "async")
    assert sorted(times) == list(range(8)) and summary.n_trials == 8 and summary.n_failures == 0
    assert times[0]["waited"] is True, times[0]
    assert times[2]["start"] < times[0]["end"]  # a job started after another ended, beside a running one
    # never more than n_workers in flight (exactly 2 is not guaranteed: under load job 0's own launch may start
    # only after job 2 ran; its successful wait for trial 2 above is what proves there is no batch barrier)
    assert max_in_flight(list(times.values())) <= 2

    run_stub(tmp_path / "batch", *LAUNCHERS[launcher], "hpo.n_workers=2", "hpo.n_trials=8", "hpo.executor=batch")
    times = job_times(tmp_path / "batch")
    assert sorted(times) == list(range(8))
    # blocking batches of n_workers consecutive jobs: no job starts before every job of the batch before it ended
    for i, earlier in times.items():
        for j, later in times.items():
            if j // 2 > i // 2:
                assert later["start"] >= earlier["end"], (i, j, times)
    assert max_in_flight(list(times.values())) <= 2


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_failed_and_killed_jobs_are_recorded(tmp_path, launcher):
    # trial 3 kills itself only once the sweep has recorded trials 0, 1 and 2: with joblib the kill breaks the
    # pool, and which jobs run beside it must not depend on how fast they are (waiting for 0 and 2 only, a
    # loaded machine once ran trial 1's failing job late enough for the broken pool to report it as killed)
    proc = run_stub(tmp_path, *LAUNCHERS[launcher], "hpo.n_workers=2", "hpo.n_trials=5", "+behaviour.1=fail",
                    "+behaviour.3=kill", "+after.3=[0,1,2]")
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
    # Trial 1 hangs until the sweep has written its summary, so only the timeout can end it. The timeout
    # (plus the executor's 10 s grace) is far above a stub job's start-up (about 2 s here), so the other
    # jobs finish in time on a machine several times slower.
    run_stub(tmp_path, *LAUNCHERS["submitit_local"], "hpo.n_workers=2", "hpo.n_trials=4", "+behaviour.1=hang",
             "hpo.trial_timeout=10")
    rows = {int(r.split(",")[0]): r for r in (tmp_path / "trials.csv").read_text().splitlines()[1:]}
    assert ",timeout," in rows[1] and "hpo.trial_timeout=10" in rows[1]
    assert all(",completed," in rows[t] for t in (0, 2, 3)), rows


def test_ctrl_c_marks_jobs_interrupted_writes_the_summary_and_resumes(tmp_path):
    import os
    import signal
    import time

    # the first two trials run until interrupted; Ctrl-C comes once both jobs have started (progress)
    cmd = [sys.executable, str(STUB), "-m", f"hydra.sweep.dir={tmp_path}", *LAUNCHERS["joblib"],
           "hpo.n_workers=2", "hpo.n_trials=6", "+behaviour.0=hang", "+behaviour.1=hang"]
    # SIGINT back to its default in the sweep: a shell's background job (pytest ... &) ignores SIGINT, and a
    # Python started with SIGINT ignored never raises KeyboardInterrupt
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    hang_guard = time.monotonic() + 300  # fails a sweep that never starts its jobs; never the trigger
    try:
        while not all((tmp_path / f"trial_{t}.started").exists() for t in (0, 1)):
            assert proc.poll() is None, proc.communicate()[0][-2000:]
            assert time.monotonic() < hang_guard, "the first two jobs never started"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0, out[-2000:]
    rows = (tmp_path / "trials.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and all(",interrupted," in r for r in rows), rows
    assert "segment_interrupted" in (tmp_path / "journal.jsonl").read_text()
    run_stub(tmp_path, *LAUNCHERS["joblib"], "hpo.n_workers=2", "hpo.n_trials=6", "hpo.resume=true")
    rows = (tmp_path / "trials.csv").read_text().splitlines()[1:]
    assert len(rows) == 6 and all(",completed," in r for r in rows), rows
