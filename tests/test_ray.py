"""Sweeps on a local Ray instance through hydra-ray-launcher (``pip install -e '.[ray]'``; slow: Ray starts
in seconds to tens of seconds)."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from test_launchers import STUB, job_times, max_in_flight, run_stub

ray = pytest.importorskip("ray", reason="Ray is not installed here: pip install -e '.[ray]' (hydra-ray-launcher)")
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="hydra-ray-launcher is not installed: "
                    "pip install -e '.[ray]'")

from hydra_hpo.executors.ray_support import is_ray_launcher, ray_session  # noqa: E402
from stub_app.stub import finished_trials, wait_until  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_dir():
    """Ray's temp folder for one test: a short path (Ray's socket paths must stay under 108 characters) that
    every Ray process of the test names on its command line."""
    folder = tempfile.mkdtemp(prefix="hpo-ray-", dir="/tmp")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def ray_overrides(ray_dir: str) -> list[str]:
    return ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false", f"+hydra.launcher.ray.init._temp_dir={ray_dir}"]


def ray_processes(ray_dir: str) -> list[int]:
    """Live processes of the Ray instance living in ``ray_dir``: every one (raylet, GCS, agents, workers)
    names the folder on its command line or keeps a log file open in it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid() or not alive(int(entry.name)):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if ray_dir in cmdline or any(path.startswith(ray_dir) for path in open_files(entry)):
            found.append(int(entry.name))
    return found


def open_files(proc: Path) -> list[str]:
    """What a process's file descriptors point to (a descriptor closed meanwhile is skipped)."""
    paths = []
    try:
        fds = list((proc / "fd").iterdir())
    except OSError:
        return paths
    for fd in fds:
        try:
            paths.append(os.readlink(fd))
        except OSError:
            pass
    return paths


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status


def make_launcher(ray_dir: str):
    from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher

    cfg = OmegaConf.create({"init": {"num_cpus": 1, "include_dashboard": False, "_temp_dir": ray_dir}, "remote": {}})
    return RayLauncher(ray=cfg)


def test_ray_session_starts_ray_once_and_shuts_it_down(ray_dir):
    assert not ray.is_initialized()
    with ray_session(object()):  # any other launcher: Ray is not touched
        assert not ray.is_initialized()

    launcher = make_launcher(ray_dir)
    assert is_ray_launcher(launcher)
    with pytest.raises(KeyboardInterrupt):
        with ray_session(launcher):
            assert ray.is_initialized()
            # the launcher's own default (as its launch() sets it) is what Ray was started with
            assert launcher.ray_cfg.init.object_store_memory == 78643200
            raise KeyboardInterrupt  # Ctrl-C during the sweep
    assert not ray.is_initialized()

    ray.init(num_cpus=1, include_dashboard=False, _temp_dir=ray_dir)  # the user's own session: left running
    try:
        with ray_session(launcher):
            assert ray.is_initialized()
        assert ray.is_initialized()
    finally:
        ray.shutdown()


def test_wrong_ray_init_key_is_one_clear_error(ray_dir):
    from hydra_hpo.errors import UserError

    launcher = make_launcher(ray_dir)
    launcher.ray_cfg.init.bogus_key = 1
    with pytest.raises(UserError, match=r"hydra\.launcher\.ray\.init=.*bogus_key"):
        with ray_session(launcher):
            pass
    assert not ray.is_initialized()


def test_async_sweep_on_ray_reuses_workers_and_shuts_down(tmp_path, ray_dir):
    # Before ray_session, the two first launches raced to start Ray and one trial failed with "Perhaps you
    # called ray.init twice by accident?". Trial 0 waits until trial 2 has started: jobs overlap without a
    # batch barrier (as for joblib in test_launchers.py).
    proc = run_stub(tmp_path, *ray_overrides(ray_dir), "hpo.n_workers=2", "hpo.n_trials=8", "+wait_for.0=2")
    summary = OmegaConf.load(tmp_path / "optimization_results.yaml")
    times = job_times(tmp_path)
    assert sorted(times) == list(range(8)) and summary.n_trials == 8 and summary.n_failures == 0, proc.stdout[-3000:]
    assert "ray.init twice" not in proc.stdout + proc.stderr
    assert times[0]["waited"] is True, times[0]
    assert times[2]["start"] < times[0]["end"]
    # at most n_workers at once; not exactly 2: under load trial 0's recorded start may follow trial 2's end (the
    # progress-triggered wait above already proves there is no batch barrier), as in test_launchers.py
    assert max_in_flight(list(times.values())) <= 2
    jobs_per_process = collections.Counter(t["pid"] for t in times.values())
    assert max(jobs_per_process.values()) >= 2, jobs_per_process  # a worker process ran several jobs
    assert not any(alive(pid) for pid in jobs_per_process), "Ray workers outlived the sweep"
    assert not ray_processes(ray_dir), "Ray processes outlived the sweep"


def test_interrupted_ray_sweep_resumes(tmp_path, ray_dir):
    # Ctrl-C once two segments are journaled while trial 3 is still running (it waits for the summary, which
    # an interrupted sweep writes too); the sweep stops Ray and says how to resume; the resumed sweep (a new
    # Ray instance) finishes every trial.
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, str(STUB), "-m", f"hydra.sweep.dir={sweep}", *ray_overrides(ray_dir), "hpo.n_workers=2",
           "hpo.n_trials=6", "+behaviour.3=hang", "+hang_seconds=120"]
    # its own process group, to which Ctrl-C goes as in a terminal: the sweeper and Ray's processes alike
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert wait_until(lambda: len(finished_trials(sweep / "journal.jsonl")) >= 2
                          and (sweep / "trial_3.started").exists(), 240), "the sweep made no progress"
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "hpo.resume=true" in out, out[-3000:]
    assert wait_until(lambda: not ray_processes(ray_dir), 60), \
        f"Ray processes outlived the interrupted sweep: {ray_processes(ray_dir)}"
    events = [json.loads(line) for line in (sweep / "journal.jsonl").read_text().splitlines()]
    assert any(e["event"] == "segment_interrupted" and e["trial_id"] == 3 for e in events)

    run_stub(sweep, *ray_overrides(ray_dir), "hpo.n_workers=2", "hpo.n_trials=6", "hpo.resume=true",
             "+behaviour.3=run")  # trial 3 runs normally this time
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert summary.n_trials == 6 and summary.n_failures == 0, summary
    assert not ray_processes(ray_dir)


def test_killed_ray_sweep_resumes(tmp_path, ray_dir):
    # The sweeper is killed outright (SIGKILL, as by the OOM killer) while trial 3 runs: nothing of ours can
    # run, Ray's head processes and workers end with their driver, and a resumed sweep starts a new Ray
    # instance and finishes every trial. (Ray leaves its dashboard and runtime-env agents behind in that case;
    # the test ends them.)
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, str(STUB), "-m", f"hydra.sweep.dir={sweep}", *ray_overrides(ray_dir), "hpo.n_workers=2",
           "hpo.n_trials=6", "+behaviour.3=hang", "+hang_seconds=120"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: len(finished_trials(sweep / "journal.jsonl")) >= 2
                          and (sweep / "trial_3.started").exists(), 240), "the sweep made no progress"
        proc.kill()
        proc.wait(timeout=60)
        # Ray's head (raylet, GCS) and its workers, the hanging trial's included, end with the driver
        assert wait_until(lambda: not [p for p in ray_processes(ray_dir) if not _is_agent(p)], 60), \
            f"Ray processes outlived the killed sweep: {ray_processes(ray_dir)}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in ray_processes(ray_dir):  # what Ray left behind: its agents (they may ignore SIGTERM)
            os.kill(pid, signal.SIGKILL)

    run_stub(sweep, *ray_overrides(ray_dir), "hpo.n_workers=2", "hpo.n_trials=6", "hpo.resume=true",
             "+behaviour.3=run")
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert summary.n_trials == 6 and summary.n_failures == 0, summary
    assert summary.trial_statuses.completed == 6, summary


def _is_agent(pid: int) -> bool:
    try:
        return "Agent" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    except OSError:
        return False
