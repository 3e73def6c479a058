"""Edge cases of launching jobs through Hydra: list and dict choices reach the job as values."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import ListConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).parent / "stub_app"))
import stub  # noqa: E402

pytestmark = pytest.mark.usefixtures("clean_hydra")


def test_list_choices_reach_the_job_as_lists(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["stub.py", "-m", f"hydra.sweep.dir={tmp_path}", "hpo.n_trials=6",
                                      "hidden=choice([16,16],[32,32,'a b'])"])
    stub.main()
    seen = []
    for job_dir in sorted(p for p in tmp_path.iterdir() if (p / "times.json").exists()):
        job_config = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
        assert isinstance(job_config.hidden, ListConfig), job_config.hidden
        received = json.loads((job_dir / "times.json").read_text())["config"]["hidden"]
        assert received in ([16, 16], [32, 32, "a b"])
        seen.append(received)
    assert len(seen) == 6 and len({json.dumps(s) for s in seen}) == 2
    best = OmegaConf.load(tmp_path / "best_config.yaml")
    assert isinstance(best.hidden, ListConfig)


STUB = Path(__file__).parent / "stub_app" / "stub.py"
LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"],
}


def run_stub(sweep_dir: Path, *overrides: str, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(STUB), "-m", f"hydra.sweep.dir={sweep_dir}", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"sweep failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def trial_rows(sweep_dir: Path) -> dict[int, dict]:
    with open(sweep_dir / "trials.csv") as f:
        return {int(row["trial_id"]): row for row in csv.DictReader(f)}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_a_timed_out_job_is_stopped_before_its_retry_starts(tmp_path, launcher):
    # trial 1 hangs far longer than the test could wait for; its retry must not start beside it
    run_stub(tmp_path, *LAUNCHERS[launcher], "hpo.n_workers=2", "hpo.n_trials=4", "+behaviour.1=hang",
             "+hang_seconds=600", "+hang_once=true", "hpo.trial_timeout=1", "hpo.max_retries=1")
    rows = trial_rows(tmp_path)
    assert all(row["status"] == "completed" for row in rows.values()), rows
    jobs = [int(j) for j in rows[1]["jobs"].split()]
    assert len(jobs) == 2  # the timed-out job and its retry
    stopped = json.loads((tmp_path / str(jobs[0]) / "stopped.json").read_text())
    assert "JobStopped" in stopped["error"]  # the job itself was stopped, not left running
    retry = json.loads((tmp_path / str(jobs[1]) / "times.json").read_text())
    assert retry["shared_checkpoint"] is False and retry["start"] >= stopped["at"]
    events = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    timed_out = [e for e in events if e["event"] == "segment_finished" and e["status"] == "timeout"]
    assert [e["job_idx"] for e in timed_out] == [jobs[0]]
    assert not (tmp_path / ".hpo_jobs").exists()


@pytest.mark.slow
def test_a_timed_out_job_deaf_to_the_stop_signal_is_killed_before_its_retry_starts(tmp_path):
    run_stub(tmp_path, *LAUNCHERS["submitit_local"], "hpo.n_workers=2", "hpo.n_trials=3", "+behaviour.1=hang",
             "+hang_seconds=600", "+hang_once=true", "+ignore_stop=true", "hpo.trial_timeout=1", "hpo.max_retries=1")
    rows = trial_rows(tmp_path)
    assert all(row["status"] == "completed" for row in rows.values()), rows
    first, second = (int(j) for j in rows[1]["jobs"].split())
    assert not (tmp_path / str(first) / "stopped.json").exists()  # it never reacted: it was killed
    retry = json.loads((tmp_path / str(second) / "times.json").read_text())
    assert retry["shared_checkpoint"] is False


def _journal(sweep_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (sweep_dir / "journal.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("launcher,n_jobs", [("joblib", 100), ("submitit_local", 24)])  # a process per submitit job
def test_many_jobs_launched_from_eight_threads_each_get_their_own_config_log_and_result(tmp_path, launcher, n_jobs):
    options = [o.replace("n_jobs=2", "n_jobs=8") for o in LAUNCHERS[launcher]]
    proc = run_stub(tmp_path, *options, "hpo.n_workers=8", f"hpo.n_trials={n_jobs}", "sleep=[0.05,0.0,0.1]")
    events = _journal(tmp_path)
    configs = {e["trial_id"]: e["config"] for e in events if e["event"] == "trial_started"}
    finished = {e["job_idx"]: e for e in events if e["event"] == "segment_finished"}
    assert len(configs) == n_jobs and len(finished) == n_jobs
    for job_idx, event in finished.items():
        trial = event["trial_id"]
        job_dir = tmp_path / str(job_idx)
        job_config = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
        hydra_config = OmegaConf.load(job_dir / ".hydra" / "hydra.yaml")
        assert job_config.trial.id == trial and hydra_config.hydra.job.num == job_idx
        assert job_config.x == configs[trial]["x"] and job_config.act == configs[trial]["act"]
        received = json.loads((job_dir / "times.json").read_text())
        assert received["trial"] == trial and received["config"]["x"] == configs[trial]["x"]
        expected = (configs[trial]["x"] - 0.3) ** 2 + (0.1 if configs[trial]["act"] == "tanh" else 0.0)
        assert event["status"] == "completed" and event["value"] == pytest.approx(expected, rel=1e-12)
        log_lines = [line for line in (job_dir / "stub.log").read_text().splitlines() if "stub job" in line]
        assert log_lines and all(f"trial={trial} num={job_idx}" in line for line in log_lines), log_lines
    # the sweeper's own log kept every report line (logging is configured again by every launch)
    reports = [line for line in (proc.stdout + proc.stderr).splitlines() if "] trial " in line and "[job " in line]
    assert len(reports) == n_jobs
    # the jobs did overlap: up to 8 at once
    times = sorted((json.loads(p.read_text())["start"], json.loads(p.read_text())["end"])
                   for p in tmp_path.glob("*/times.json"))
    assert any(s2 < e1 for (s1, e1), (s2, e2) in zip(times, times[1:]))


def test_resume_through_the_sweeper_with_more_workers_and_trials(tmp_path, monkeypatch):
    def sweep(*overrides):
        GlobalHydra.instance().clear()
        monkeypatch.setattr(sys, "argv", ["stub.py", "-m", f"hydra.sweep.dir={tmp_path}", "hpo.scheduler=asha",
                                          "+hpo.r_min=1", "+hpo.eta=2", "trainer.max_epochs=4", *overrides])
        stub.main()

    sweep("hpo.n_trials=6", "hpo.n_workers=2")
    first = _journal(tmp_path)
    sweep("hpo.n_trials=9", "hpo.n_workers=3", "hpo.resume=true")
    events = _journal(tmp_path)
    starts = [e for e in events if e["event"] == "sweep_started"]
    assert [e["n_workers"] for e in starts] == [2, 3] and starts[1]["first_batch"] > 0
    assert not any(e["event"] == "recorded_results_unused" for e in events)
    # the recorded jobs were not run again: every job number of the first run appears once
    finished = [e["job_idx"] for e in events if e["event"] == "segment_finished"]
    assert len(finished) == len(set(finished))
    assert {e["job_idx"] for e in first if e["event"] == "segment_finished"} <= set(finished)
    assert OmegaConf.load(tmp_path / "optimization_results.yaml").n_trials == 9
