"""Find and stop a running job's process: every job announces its process in a small file at start.

A Hydra callback (:class:`JobProcessCallback`, added to the launcher's callbacks by the sweeper) runs in
the job's own process on every launcher: at job start it writes ``<jobs_dir>/<job number>.json`` (pid,
host, Slurm job id, start time, the kernel's start time of the process) and installs a ``SIGUSR1`` handler; at job end it removes the file.

To stop a job, the sweeper writes ``<job number>.stop`` and sends ``SIGUSR1``: the handler raises
:class:`JobStopped` in the job only if the stop file names *its* job, so a signal that arrives late at a
pool worker (joblib) already running another job does nothing. The job then ends like a failed job and
the worker lives on. A job that does not react (stuck in native code) is killed with ``SIGKILL``: the
job's process ends (under joblib this also breaks the pool's other running jobs, as any worker death does).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

log = logging.getLogger(__name__)

JOBS_DIR = ".hpo_jobs"


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, as the kernel counts it (``/proc/<pid>/stat`` field 22, clock ticks
    since boot), or None where there is no ``/proc`` (macOS) or no such process. A pid is reused once its
    process has ended; the pair (pid, start) names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]  # fields after "pid (comm) ": state is field 3


class JobStopped(Exception):
    """Raised inside a job that the sweeper stopped (``hpo.trial_timeout``)."""


def _job_num(config: Any) -> int | None:
    try:
        return int(config.hydra.job.num)
    except (AttributeError, TypeError, ValueError):
        return None


class JobProcessCallback(Callback):
    """Hydra callback: the job announces its process to the sweeper and accepts stop requests."""

    def __init__(self, jobs_dir: str, sweeper_pid: int) -> None:
        super().__init__()
        self.jobs_dir = str(jobs_dir)
        self.sweeper_pid = sweeper_pid  # jobs of the basic launcher run in the sweeper: never signal it
        self._previous: Any = None

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        num = _job_num(config)
        if num is None or os.getpid() == self.sweeper_pid:
            return
        if threading.current_thread() is threading.main_thread():
            stop_file = Path(self.jobs_dir) / f"{num}.stop"

            def stop(signum: int, frame: Any) -> None:
                if stop_file.exists():
                    raise JobStopped(f"job {num} stopped by the sweeper (hpo.trial_timeout)")

            self._previous = signal.signal(signal.SIGUSR1, stop)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                "started": time.time(), "process_start": process_start(os.getpid())}
        path = Path(self.jobs_dir) / f"{num}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, path)

    def on_job_end(self, config: Any, **kwargs: Any) -> None:
        num = _job_num(config)
        if num is None or os.getpid() == self.sweeper_pid:
            return
        (Path(self.jobs_dir) / f"{num}.json").unlink(missing_ok=True)
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            # a stop request racing with the job's end must not kill a pool worker (SIGUSR1's default action)
            signal.signal(signal.SIGUSR1, signal.SIG_IGN if self._previous == signal.SIG_DFL else self._previous)
            self._previous = None


class JobProcesses:
    """The sweeper's side: when did a job start, ask it to stop, kill it."""

    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = Path(jobs_dir)  # created by the first job that announces itself

    def info(self, job_idx: int) -> dict | None:
        """The running job's process (pid, host, start time), or None if it has not started or has ended."""
        try:
            return json.loads((self.jobs_dir / f"{job_idx}.json").read_text())
        except (OSError, ValueError):
            return None

    def _signal(self, job_idx: int, signum: int) -> bool:
        info = self.info(job_idx)
        if info is None or info.get("host") != socket.gethostname() or int(info["pid"]) == os.getpid():
            return False
        if info.get("process_start") is not None and process_start(int(info["pid"])) != info["process_start"]:
            return False  # the job's process has ended (killed before it could remove its file); the pid may
            # belong to another process by now, which must never get the signal
        try:
            os.kill(int(info["pid"]), signum)
        except ProcessLookupError:
            return False
        return True

    def request_stop(self, job_idx: int) -> bool:
        """Ask the job to stop (it raises :class:`JobStopped`); False when its process cannot be reached."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        (self.jobs_dir / f"{job_idx}.stop").write_text("stop\n")
        return self._signal(job_idx, signal.SIGUSR1)

    def kill(self, job_idx: int) -> bool:
        """SIGKILL the job's process if it still runs the job (``scancel`` for a Slurm job on another host);
        False when there is nothing this machine can kill."""
        info = self.info(job_idx)
        if info is not None and info.get("host") != socket.gethostname() and info.get("slurm_job_id"):
            if shutil.which("scancel"):
                return subprocess.run(["scancel", str(info["slurm_job_id"])], check=False).returncode == 0
            return False
        return self._signal(job_idx, signal.SIGKILL)

    def forget(self, job_idx: int) -> None:
        for suffix in (".json", ".stop"):
            (self.jobs_dir / f"{job_idx}{suffix}").unlink(missing_ok=True)
