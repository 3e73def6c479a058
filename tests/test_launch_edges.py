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


@pytest.fixture(autouse=True)
def _clean_hydra():
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()


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
