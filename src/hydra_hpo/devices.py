"""GPUs per trial: which devices this machine shows, how many jobs they allow, and which job holds which.

Hydra-free. A job gets its devices as ``CUDA_VISIBLE_DEVICES`` (the sweeper passes it through
``hydra.job.env_set``, which Hydra applies in the job's own process before the task runs). A pool hands
each job in flight its own group of ``gpus_per_trial`` devices; with ``trials_per_gpu > 1`` a group is
shared by that many jobs, never more.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from hydra_hpo.errors import JobConfigError, SettingsError

__all__ = ["FAKE_GPUS_ENV", "visible_devices", "GpuPlan", "plan_gpus", "DevicePool", "check_cuda_process"]

# For tests only: pretend this many GPUs (ids 0..N-1) are visible, without asking CUDA.
FAKE_GPUS_ENV = "HYDRA_HPO_FAKE_GPUS"


def visible_devices(environ: Mapping[str, str] | None = None, count: int | None = None) -> list[str]:
    """The GPU ids jobs may use: ``CUDA_VISIBLE_DEVICES`` when set (ids or UUIDs, kept as written),
    else ``0..count-1`` with ``count`` from :data:`FAKE_GPUS_ENV` or ``torch.cuda.device_count()``."""
    environ = os.environ if environ is None else environ
    if count is None and environ.get(FAKE_GPUS_ENV, "").strip():
        count = int(environ[FAKE_GPUS_ENV])
    if count is None and "CUDA_VISIBLE_DEVICES" in environ:
        ids = []
        for item in environ["CUDA_VISIBLE_DEVICES"].split(","):
            item = item.strip()
            if not item or item.startswith("-"):  # CUDA ignores everything from an invalid entry on
                break
            ids.append(item)
        return ids
    if count is None:
        count = _cuda_device_count()
    return [str(i) for i in range(count)]


def _cuda_device_count() -> int:
    # No NVIDIA device node on Linux: no CUDA device, and no need to import torch (seconds) to learn it.
    if sys.platform.startswith("linux") and not any(Path("/dev").glob("nvidia[0-9]*")):
        return 0
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count())  # uses NVML where it can: does not initialize CUDA here


@dataclass(frozen=True)
class GpuPlan:
    """What the GPUs allow: device groups (one per job slot group) and the resolved settings."""

    devices: tuple[str, ...]
    gpus_per_trial: int
    trials_per_gpu: int
    n_workers: int

    @property
    def groups(self) -> list[tuple[str, ...]]:
        """Disjoint groups of ``gpus_per_trial`` devices (leftover devices stay unused)."""
        k = self.gpus_per_trial
        if k == 0:
            return []
        return [self.devices[i:i + k] for i in range(0, len(self.devices) - k + 1, k)]

    @property
    def slots(self) -> int:
        """How many jobs the devices allow at once (0: trials use no GPU, no limit from here)."""
        return len(self.groups) * self.trials_per_gpu


def plan_gpus(gpus_per_trial: int | str, trials_per_gpu: int, n_workers: int, workers_auto: bool,
              devices: list[str]) -> GpuPlan:
    """Resolve ``hpo.gpus_per_trial=auto`` (1 with GPUs, else 0) and ``hpo.n_workers=auto`` (as many jobs as
    the GPUs allow; without GPUs ``n_workers`` as given), and refuse what the devices cannot hold."""
    per_trial = (1 if devices else 0) if gpus_per_trial == "auto" else int(gpus_per_trial)
    plan = GpuPlan(tuple(devices), per_trial, trials_per_gpu, n_workers)
    if per_trial == 0:
        return plan
    if per_trial > len(devices):
        shown = f" ({','.join(devices)})" if devices else ""
        raise SettingsError(f"hpo.gpus_per_trial={per_trial} but this machine shows {len(devices)} GPU(s){shown}; "
                            f"set hpo.gpus_per_trial=0 to train on CPU")
    if workers_auto:
        return GpuPlan(plan.devices, per_trial, trials_per_gpu, plan.slots)
    if n_workers > plan.slots:
        raise SettingsError(f"hpo.n_workers={n_workers} exceeds the {plan.slots} jobs the GPUs allow "
                            f"({len(devices)} GPUs, hpo.gpus_per_trial={per_trial}, "
                            f"hpo.trials_per_gpu={trials_per_gpu}); lower hpo.n_workers, raise hpo.trials_per_gpu "
                            f"or set hpo.gpus_per_trial=0")
    return plan


class DevicePool:
    """Hands each job in flight a group of devices; a group holds at most ``trials_per_gpu`` jobs at once.

    ``acquire`` prefers the least used group (then the first), and blocks while every group is full
    (a job abandoned past its timeout keeps its devices until its launch returns). Thread-safe.
    """

    def __init__(self, groups: list[tuple[str, ...]], trials_per_gpu: int = 1) -> None:
        if not groups:
            raise ValueError("a device pool needs at least one device group")
        self.groups = list(groups)
        self.capacity = trials_per_gpu
        self._users = [0] * len(groups)
        self._held: dict[int, int] = {}  # job_idx -> group index
        self._cond = threading.Condition()

    def acquire(self, job_idx: int, block: bool = True, timeout: float | None = None) -> tuple[str, ...]:
        """The devices of job ``job_idx`` (the same ones again if it already holds some)."""
        with self._cond:
            if job_idx in self._held:
                return self.groups[self._held[job_idx]]
            ok = self._cond.wait_for(lambda: min(self._users) < self.capacity, timeout if block else 0)
            if not ok:
                raise RuntimeError(f"no free GPU for job {job_idx}: all {len(self.groups)} device groups hold "
                                   f"{self.capacity} job(s)")
            index = min(range(len(self.groups)), key=lambda i: (self._users[i], i))
            self._users[index] += 1
            self._held[job_idx] = index
            return self.groups[index]

    def release(self, job_idx: int) -> None:
        """Give back the devices of job ``job_idx`` (no-op when it holds none)."""
        with self._cond:
            index = self._held.pop(job_idx, None)
            if index is not None:
                self._users[index] -= 1
                self._cond.notify_all()

    def held(self) -> dict[int, tuple[str, ...]]:
        """Job number -> its devices, for every job holding some."""
        with self._cond:
            return {job: self.groups[i] for job, i in self._held.items()}


class DeviceAssigner:
    """Per-job ``CUDA_VISIBLE_DEVICES`` overrides for launchers that run jobs on this machine.

    ``in_process``: the jobs run one after another in one process (Hydra's basic launcher), where CUDA,
    once initialized, cannot move to other devices: every job gets the first group. With
    ``gpus_per_trial=0`` every job gets ``CUDA_VISIBLE_DEVICES=""`` (the GPUs stay free, Lightning's
    ``accelerator=auto`` picks the CPU).
    """

    KEY = "++hydra.job.env_set.CUDA_VISIBLE_DEVICES"

    def __init__(self, plan: GpuPlan, in_process: bool = False) -> None:
        self.plan = plan
        self.in_process = in_process
        groups = plan.groups
        self.pool = DevicePool(groups, plan.trials_per_gpu) if groups and not in_process else None

    def devices(self, job_idx: int) -> tuple[str, ...]:
        if self.plan.gpus_per_trial == 0:
            return ()
        if self.pool is None:
            return self.plan.groups[0]
        return self.pool.acquire(job_idx)

    def overrides(self, job_idx: int) -> list[str]:
        """Acquire job ``job_idx``'s devices; the override that gives them to its process."""
        value = ",".join(self.devices(job_idx))
        return [f"{self.KEY}='{value}'"]  # quoted: Hydra would read "0,1" as a sweep over 0 and 1

    def release(self, job_idx: int) -> None:
        if self.pool is not None:
            self.pool.release(job_idx)


_pinned: list[str | None] = []  # CUDA_VISIBLE_DEVICES when this process first ran a job before CUDA started


def check_cuda_process(environ: Mapping[str, str] | None = None, initialized: bool | None = None) -> None:
    """In a reused worker process (joblib/loky), fail loudly when CUDA was initialized by an earlier job
    under other ``CUDA_VISIBLE_DEVICES`` than this job's: CUDA cannot switch devices in a process, so the
    job would silently share the earlier job's GPU."""
    environ = os.environ if environ is None else environ
    current = environ.get("CUDA_VISIBLE_DEVICES")
    if initialized is None:
        torch = sys.modules.get("torch")
        initialized = bool(torch is not None and torch.cuda.is_initialized())
    if not initialized:
        _pinned[:] = [current]
        return
    if _pinned and _pinned[0] != current:
        raise JobConfigError(
            f"this worker process (pid {os.getpid()}) started CUDA with CUDA_VISIBLE_DEVICES={_pinned[0]!r}, "
            f"this job was given {current!r}, and CUDA cannot switch devices in a process: use "
            "hydra/launcher=submitit_local (a fresh process per job) for several GPU groups, or one GPU group "
            "(hpo.gpus_per_trial equal to the GPU count) with joblib")
