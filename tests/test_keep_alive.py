"""hpo.keep_alive: the handoff protocol, the simulator's cost model, the setting, and real sweeps (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hydra_hpo.errors import SettingsError
from hydra_hpo.executors.simulator import SimulatedExecutor
from hydra_hpo.handoff import JobSide, SweeperSide
from hydra_hpo.schedulers import ASHAScheduler
from hydra_hpo.settings import HPOSettings
from hydra_hpo.tuner import Tuner
from test_simulator import TINY, TINY_SPACE, ScriptedSearcher

ROOT = Path(__file__).resolve().parents[1]


def _wait_in_thread(side: JobSide, job_idx: int, output_dir: str) -> tuple[threading.Thread, dict]:
    """The job announces itself here (so the sweeper sees it at once), then waits in a thread."""
    side.announce(job_idx, output_dir)
    got: dict = {}
    thread = threading.Thread(target=lambda: got.update(side.wait()), daemon=True)
    thread.start()
    return thread, got


def test_a_parked_job_is_claimed_and_handed_its_next_segment(tmp_path):
    sweeper = SweeperSide(tmp_path)
    sweeper.announce()
    thread, got = _wait_in_thread(JobSide(tmp_path, 7), 7, "/out/7")
    assert sweeper.parked(7)["job_idx"] == 7 and sweeper.parked(7)["output_dir"] == "/out/7"
    assert sweeper.claim(7)
    assert sweeper.parked(7) is None  # a claimed job is not reported again
    assert not sweeper.claim(7)  # nor claimed twice
    sweeper.send(7, {"action": "continue", "job_idx": 9, "resource": 3, "output_dir": "/out/9"})
    thread.join(60)  # a guard against a hang: the message ends the wait
    assert got == {"action": "continue", "job_idx": 9, "resource": 3, "output_dir": "/out/9"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweeper.json"]  # nothing left behind


def test_a_released_job_is_told_to_stop(tmp_path):
    sweeper = SweeperSide(tmp_path)
    thread, got = _wait_in_thread(JobSide(tmp_path, 3), 5, "/out/5")
    assert sweeper.parked(3)["job_idx"] == 5  # the segment it ended, not the process's first job
    assert sweeper.release(3)
    thread.join(60)
    assert got == {"action": "stop"}


def test_a_job_that_stops_waiting_cannot_be_claimed_afterwards(tmp_path):
    # no wait at all: the job gives up at its first look; the sweeper's late claim fails (it starts a new process)
    got = JobSide(tmp_path, 4, wait_seconds=0.0).park(4, "/out/4")
    assert got["action"] == "stop" and "no word" in got["reason"]
    sweeper = SweeperSide(tmp_path)
    assert sweeper.parked(4) is None and not sweeper.claim(4) and not sweeper.release(4)


def test_a_job_whose_sweeper_died_stops_waiting(tmp_path):
    got = JobSide(tmp_path, 2, sweeper_alive=lambda: False).park(2, "/out/2")
    assert got["action"] == "stop" and "died" in got["reason"]


def test_a_job_stops_waiting_when_the_sweep_removed_its_jobs_folder(tmp_path):
    jobs = tmp_path / "jobs"
    side = JobSide(jobs, 1)
    side.announce(1, "/out/1")
    for path in jobs.iterdir():  # the sweep ended and removed the folder before it answered
        path.unlink()
    got = side.wait()
    assert got["action"] == "stop" and "removed" in got["reason"]


def _stopping_asha(keep_alive: bool) -> tuple[SimulatedExecutor, object]:
    executor = SimulatedExecutor(TINY, TINY_SPACE, n_workers=1, job_overhead_seconds=8.0, keep_alive=keep_alive,
                                 continue_overhead_seconds=0.5)
    scheduler = ASHAScheduler(ScriptedSearcher(), n_trials=4, r_min=1, r_max=4, eta=2, type="stopping")
    return executor, Tuner(scheduler, executor).run()


def test_simulator_charges_the_start_up_once_per_process_with_keep_alive():
    with_ka, outcome = _stopping_asha(True)
    without, outcome_without = _stopping_asha(False)
    # same decisions, same segments: only their cost differs
    assert [(a.trial_id) for a in with_ka.assignments] == [a.trial_id for a in without.assignments]
    assert outcome.best.value == outcome_without.best.value
    segments = len(with_ka.assignments)
    trials = len({a.trial_id for a in with_ka.assignments})
    # one worker, stopping type: a trial's continuation is the very next job, so each trial starts one process
    assert with_ka.n_continued == segments - trials > 0
    trained = sum(r.seconds for record in outcome.trials.values() for r in record.segments)
    assert with_ka.now == pytest.approx(trained + 8.0 * trials + 0.5 * (segments - trials))
    assert without.now == pytest.approx(trained + 8.0 * segments)


def test_simulator_without_keep_alive_never_continues():
    executor, _ = _stopping_asha(False)
    assert executor.n_continued == 0


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_keep_alive_setting_is_true_false_or_auto(value):
    with pytest.raises(SettingsError, match=r"hpo.keep_alive=.*must be true, false or auto"):
        HPOSettings.from_mapping({"keep_alive": value})


def _train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def _segments(sweep: Path) -> list[dict]:
    return [e for e in map(json.loads, (sweep / "journal.jsonl").read_text().splitlines())
            if e["event"] == "segment_finished"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_stopping_asha_starts_one_process_per_trial(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    extra = ["hydra.launcher.timeout_min=10"] if launcher == "submitit_local" else []
    proc = _train("-m", "hpo=asha", "hpo.type=stopping", "model=mlp", "search_space=mlp", f"hydra/launcher={launcher}",
                  *extra, "hpo.n_workers=2", "hpo.n_trials=6", "trainer=fast", "trainer.max_epochs=9",
                  f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]  # and it returned: no process was left waiting
    segments = _segments(sweep)
    assert all(s["status"] == "completed" for s in segments)
    trials = {s["trial_id"] for s in segments}
    launched = [s for s in segments if (Path(s["output_dir"]) / ".hydra").is_dir()]
    continued = [s for s in segments if not (Path(s["output_dir"]) / ".hydra").is_dir()]
    # a trial's next rung always follows at once (continuations first), so each trial is one Hydra job
    assert len(launched) == len(trials) and continued
    by_trial: dict[int, list[dict]] = {}
    for s in segments:
        by_trial.setdefault(s["trial_id"], []).append(s)
    for s in continued:
        result = json.loads((Path(s["output_dir"]) / "result.json").read_text())
        assert result["continued"] is True and result["status"] == "completed"
        assert result["epochs_trained"] == s["resource"] - s["previous_resource"]
        earlier = [e for e in by_trial[s["trial_id"]] if e["resource"] == s["previous_resource"]]
        assert len(earlier) == 1 and s["curve"][: s["previous_resource"]] == earlier[0]["curve"]  # it went on
        assert result["pid"] == json.loads((Path(earlier[0]["output_dir"]) / "result.json").read_text())["pid"]
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert summary.n_jobs == len(segments)
    assert summary.busy_seconds == pytest.approx(summary.train_seconds + summary.overhead_seconds, abs=2e-3)
    assert not (sweep / ".hpo_jobs").exists()


@pytest.mark.slow
def test_without_keep_alive_every_segment_is_its_own_job(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _train("-m", "hpo=asha", "hpo.type=stopping", "hpo.keep_alive=false", "model=mlp", "search_space=mlp",
                  "hydra/launcher=joblib", "hpo.n_workers=2", "hpo.n_trials=4", "trainer=fast",
                  "trainer.max_epochs=3", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    segments = _segments(sweep)
    assert len(segments) > 4 and all((Path(s["output_dir"]) / ".hydra").is_dir() for s in segments)


@pytest.mark.slow
def test_keep_alive_true_with_the_basic_launcher_is_one_line(tmp_path):
    proc = _train("-m", "hpo=asha", "hpo.keep_alive=true", "hpo.n_trials=2", f"hydra.sweep.dir={tmp_path / 's'}",
                  cwd=tmp_path)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "hpo.keep_alive=true" in lines[0] and "joblib" in lines[0]
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").glob("[0-9]*"))
