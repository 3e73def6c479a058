"""Stopping a job's process: the job announces itself, a stop request raises JobStopped inside it, a deaf job
is killed (a real subprocess; events are triggered by the files the job writes, never by sleeps)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hydra_hpo.executors.job_process import JobProcesses, process_start

CHILD = textwrap.dedent("""
    import signal, sys, time
    from omegaconf import OmegaConf
    from hydra_hpo.executors.job_process import JobProcessCallback, JobStopped
    callback = JobProcessCallback(sys.argv[1], sweeper_pid=-1)
    config = OmegaConf.create({"hydra": {"job": {"num": int(sys.argv[2])}}})
    callback.on_job_start(config=config, task_function=None)
    if sys.argv[3] == "deaf":
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    try:
        time.sleep(600)
    except JobStopped as error:
        print("stopped:", error, flush=True)
    callback.on_job_end(config=config, job_return=None)
""")


def start_job(jobs_dir: Path, num: int, how: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(jobs_dir), str(num), how], stdout=subprocess.PIPE,
                            text=True)
    processes = JobProcesses(jobs_dir)
    deadline = time.monotonic() + 120  # only a bound on a hang: the test goes on as soon as the job announces itself
    while processes.info(num) is None:
        assert proc.poll() is None and time.monotonic() < deadline, "the job never announced its process"
        time.sleep(0.02)
    return proc


def test_a_stop_request_raises_inside_the_job_which_then_ends_cleanly(tmp_path):
    proc = start_job(tmp_path, 7, "listen")
    processes = JobProcesses(tmp_path)
    info = processes.info(7)
    assert info["pid"] == proc.pid and info["started"] <= time.time()
    assert info["process_start"] == process_start(proc.pid)  # names this process, not whoever gets its pid later
    assert processes.request_stop(7)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "stopped: job 7 stopped by the sweeper" in out
    assert processes.info(7) is None  # the job removed its file at its end
    processes.forget(7)
    assert list(tmp_path.iterdir()) == []


def test_a_job_deaf_to_the_stop_request_is_killed(tmp_path):
    proc = start_job(tmp_path, 3, "deaf")
    processes = JobProcesses(tmp_path)
    processes.request_stop(3)
    assert processes.kill(3)
    proc.communicate(timeout=120)
    assert proc.returncode == -9


def test_nothing_is_signalled_for_a_job_that_is_not_running(tmp_path):
    processes = JobProcesses(tmp_path)
    assert not processes.request_stop(5) and not processes.kill(5)
    # a job file naming this very process (the basic launcher runs jobs in the sweeper) is never signalled
    (tmp_path / "6.json").write_text(f'{{"pid": {os.getpid()}, "host": "{socket.gethostname()}", "started": 0}}')
    assert not processes.request_stop(6) and not processes.kill(6)


def test_a_pid_reused_by_another_process_is_never_signalled(tmp_path):
    # A job killed before it could remove its file leaves its pid behind; once the kernel gives that pid to
    # another process, the file's process start time no longer matches and nothing is sent.
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        start = process_start(other.pid)
        assert start is not None and start == process_start(other.pid)
        stale = {"pid": other.pid, "host": socket.gethostname(), "started": 0, "process_start": str(int(start) - 1)}
        (tmp_path / "8.json").write_text(json.dumps(stale))
        processes = JobProcesses(tmp_path)
        assert not processes.request_stop(8) and not processes.kill(8)
        assert other.poll() is None  # untouched
        (tmp_path / "8.json").write_text(json.dumps({**stale, "process_start": start}))  # its own record
        assert processes.kill(8)
        other.wait(timeout=120)
        assert other.returncode == -9
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()

