"""Executors that run jobs through a Hydra launcher, in blocking batches or asynchronously.

Hydra's ``Launcher.launch(batch)`` blocks until the whole batch is done. The batch executor launches
up to ``n_workers`` jobs at once (right for the basic launcher, which runs jobs in this process one
after the other). The asynchronous executor gives each job its own thread that launches a one-job
batch with the job's own number, so with launchers that run jobs in other processes (joblib,
submitit, Ray) up to ``n_workers`` jobs overlap and each finished one is handed back at once.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra_hpo.devices import DeviceAssigner
from hydra_hpo.executors.base import Executor
from hydra_hpo.executors.hydra_jobs import format_value
from hydra_hpo.executors.job_process import JobProcesses
from hydra_hpo.handoff import POLL_SECONDS, SweeperSide
from hydra_hpo.trial import INTERRUPTED, TIMEOUT, Job, JobResult

log = logging.getLogger(__name__)

OverridesFn = Callable[[Job], list[str]]
# (job, hydra JobReturn or None, exception raised by launch() or None, started, finished) -> JobResult
CollectFn = Callable[[Job, Any, BaseException | None, float, float], JobResult]


class _Clock:
    """Seconds since the executor started (wall-clock, so file modification times convert to it)."""

    def __init__(self) -> None:
        self.t0 = time.time()

    def __call__(self) -> float:
        return time.time() - self.t0


def _last_write(directory: str | None) -> float | None:
    """When a job last wrote a file into its output directory (its result, its log): about when it ended."""
    if not directory or not os.path.isdir(directory):
        return None
    times = [entry.stat().st_mtime for entry in os.scandir(directory) if entry.is_file()]
    return max(times, default=None)


class HydraBatchExecutor(Executor):
    """Queues submitted jobs and launches them together when ``wait`` is called."""

    def __init__(self, launcher: Any, n_workers: int, overrides: OverridesFn, collect: CollectFn,
                 sequential: bool = True, devices: DeviceAssigner | None = None) -> None:
        super().__init__(n_workers)
        self.devices = devices  # each job's own GPUs, held while its batch runs
        self.sequential = sequential  # the launcher runs a batch's jobs one after the other
        self.launcher = launcher
        self.overrides = overrides
        self.collect = collect
        self._pending: list[Job] = []
        self._clock = _Clock()

    def submit(self, job: Job) -> None:
        self._pending.append(job)

    def num_running(self) -> int:
        return len(self._pending)

    def clock(self) -> float:
        return self._clock()

    def wait(self) -> list[JobResult]:
        results: list[JobResult] = []
        for run in _contiguous_runs(self._pending):
            started = self.clock()
            try:
                returns = self.launcher.launch([self.overrides(job) + _device_overrides(self.devices, job)
                                                for job in run], initial_job_idx=run[0].job_idx)
                error = None
            except Exception as exc:  # the launcher failed the whole batch
                returns, error = [None] * len(run), exc
            finally:
                for job in run:
                    _release(self.devices, job)
            finished = self.clock()
            for i, (job, ret) in enumerate(zip(run, returns)):
                if self.sequential:  # one after the other: spread the batch's time evenly as an estimate
                    step = (finished - started) / len(run)
                    span = (started + i * step, started + (i + 1) * step)
                    results.append(self.collect(job, ret, error, *span))
                    continue
                # In parallel: a job's worker is busy until the job ends, then idles at the batch's barrier.
                result = self.collect(job, ret, error, started, finished)
                ended = _last_write(result.output_dir)
                if ended is not None:
                    result.finished = min(finished, max(started, ended - self._clock.t0))
                results.append(result)
        self._pending = []
        return results


def _device_overrides(devices: DeviceAssigner | None, job: Job) -> list[str]:
    return devices.overrides(job.job_idx) if devices is not None else []


def _release(devices: DeviceAssigner | None, job: Job) -> None:
    if devices is not None:
        devices.release(job.job_idx)


def _contiguous_runs(jobs: Sequence[Job]) -> list[list[Job]]:
    """Split jobs into runs of consecutive job numbers (a launch numbers its jobs from initial_job_idx)."""
    runs: list[list[Job]] = []
    for job in jobs:
        if runs and runs[-1][-1].job_idx + 1 == job.job_idx:
            runs[-1].append(job)
        else:
            runs.append([job])
    return runs


class KeepAlive:
    """What the asynchronous executor needs for ``hpo.keep_alive``: the handoff files' folder (the jobs
    directory), the sweep folder (a continued segment's result goes to ``<sweep_dir>/<job number>``), the
    resource at which trials end (a job there does not wait) and the per-job timeout to pass on."""

    def __init__(self, jobs_dir: Path, sweep_dir: Path, max_resource: int, timeout: float | None = None) -> None:
        self.side = SweeperSide(jobs_dir)
        self.sweep_dir = Path(sweep_dir)
        self.max_resource = max_resource
        self.timeout = timeout

    def output_dir(self, job: Job) -> Path:
        return self.sweep_dir / str(job.job_idx)

    def overrides(self, job: Job) -> list[str]:
        """The launch override that makes a job wait after its segment (none at the last resource)."""
        if job.resource >= self.max_resource:
            return []
        return [f"++trial.handoff={format_value(str(self.side.jobs_dir))}"]

    def message(self, job: Job) -> dict[str, Any]:
        """What a waiting process is told to train next."""
        return {"action": "continue", "job_idx": job.job_idx, "resource": job.resource,
                "output_dir": str(self.output_dir(job)), "timeout": self.timeout,
                "park": job.resource < self.max_resource}


class HydraAsyncExecutor(Executor):
    """Keeps up to ``n_workers`` one-job launches in flight, each in its own thread.

    ``timeout`` (seconds) stops a job that runs too long; it is reported with status ``timeout``. The job
    itself is told its timeout and normally stops on its own first; ``grace`` seconds later the executor
    asks it to stop (``processes``, a :class:`JobProcesses`: the job raises ``JobStopped``), and
    ``kill_grace`` seconds after that kills its process. The timeout counts from the job's own start
    (a job queued in a launcher's pool is not timed), and the result is reported only once the launch
    has returned, so a retry never shares the trial's checkpoint with a job that may still be writing.
    Without ``processes`` a job past its time is abandoned (reported at once, its process left running).

    ``keep_alive`` (:class:`KeepAlive`): a job whose segment ends below ``max_resource`` reports its result and
    waits (:mod:`hydra_hpo.handoff`); ``wait`` returns that result at once. If the next job submitted is the
    same trial's next segment (same configuration, from that epoch), the waiting process trains it: no new
    launch. Any other submit, and the next ``wait``, tell the waiting processes to end first, so that no more
    than ``n_workers`` processes ever run. A continued segment writes its result.json into
    ``<sweep dir>/<its job number>``; its launch thread is the process's.
    """

    def __init__(
        self,
        launcher: Any,
        n_workers: int,
        overrides: OverridesFn,
        collect: CollectFn,
        timeout: float | None = None,
        grace: float | None = None,
        processes: JobProcesses | None = None,
        kill_grace: float = 5.0,
        devices: DeviceAssigner | None = None,
        keep_alive: "KeepAlive | None" = None,
    ) -> None:
        super().__init__(n_workers)
        self.keep_alive = keep_alive
        if keep_alive is not None:
            keep_alive.side.announce()
        self._process_of: dict[int, int] = {}  # running segment -> its process (the job number it was launched as)
        self._segment_of: dict[int, int] = {}  # process -> its segment not yet reported
        self._parked: dict[int, tuple[int, Job]] = {}  # trial -> (waiting process, the segment it reported)
        self.n_continued = 0  # segments a waiting process trained
        self.devices = devices  # each job's own GPUs, held until its launch returns (also past a timeout)
        self.launcher = launcher
        self.overrides = overrides
        self.collect = collect
        self.timeout = timeout
        # A job normally stops itself at its timeout; the grace covers its start-up and shutdown.
        self.grace = grace if grace is not None else 10.0 + 0.2 * (timeout or 0.0)
        self._clock = _Clock()
        self._done: queue.Queue = queue.Queue()
        self._running: dict[int, tuple[Job, float]] = {}
        self._abandoned: set[int] = set()
        self.processes = processes
        self.kill_grace = kill_grace
        self._stopping: dict[int, tuple[float, bool]] = {}  # job_idx -> (when asked to stop, killed)

    def clock(self) -> float:
        return self._clock()

    def num_running(self) -> int:
        return len(self._running)

    def submit(self, job: Job) -> None:
        if self.keep_alive is not None and self._continue(job):
            return
        self._release_parked()
        started = self.clock()
        self._running[job.job_idx] = (job, started)
        self._process_of[job.job_idx] = job.job_idx
        self._segment_of[job.job_idx] = job.job_idx
        thread = threading.Thread(target=self._run, args=(job, started), name=f"hpo-job-{job.job_idx}", daemon=True)
        thread.start()

    def _continue(self, job: Job) -> bool:
        """Hand ``job`` to its trial's waiting process, if there is one that can train it."""
        assert self.keep_alive is not None
        parked = self._parked.pop(job.trial_id, None)
        if parked is None:
            return False
        process, done = parked
        if not (job.previous_resource == done.resource and job.config == done.config
                and job.source_trial is None and not job.set_params):
            self.keep_alive.side.release(process)
            return False
        if not self.keep_alive.side.claim(process):  # it stopped waiting just now
            return False
        started = self.clock()
        self.keep_alive.side.send(process, self.keep_alive.message(job))
        self._running[job.job_idx] = (job, started)
        self._process_of[job.job_idx] = process
        self._segment_of[process] = job.job_idx
        self.n_continued += 1
        return True

    def _release_parked(self) -> None:
        """Tell every waiting process to end (none of them got its trial's next segment). Without keep-alive
        none ever waits: nothing to do."""
        for process, _ in self._parked.values():
            self.keep_alive.side.release(process)  # type: ignore[union-attr]
        self._parked.clear()

    def _parked_results(self) -> list[JobResult]:
        """Results of segments whose process now waits for its next one."""
        assert self.keep_alive is not None
        results = []
        for job_idx, (job, started) in list(self._running.items()):
            process = self._process_of.get(job_idx, job_idx)
            info = self.keep_alive.side.parked(process)
            if info is None or info.get("job_idx") != job_idx:
                continue
            result = self.collect(job, None, None, started, self.clock(), output_dir=Path(info["output_dir"]))
            del self._running[job_idx]
            self._process_of.pop(job_idx, None)
            self._segment_of.pop(process, None)
            if result.ok:
                self._parked[job.trial_id] = (process, job)
            else:  # (a job parks only after a completed segment)
                self.keep_alive.side.release(process)
            results.append(result)
        return results

    def _run(self, job: Job, started: float) -> None:
        try:
            try:
                overrides = self.overrides(job) + _device_overrides(self.devices, job)
                if self.keep_alive is not None:
                    overrides += self.keep_alive.overrides(job)
                returns = self.launcher.launch([overrides], initial_job_idx=job.job_idx)
            finally:  # before the result is seen: the next job may take these devices
                _release(self.devices, job)
            self._done.put((job, returns[0], None, started, self.clock()))
        except BaseException as exc:  # noqa: BLE001 - reported as the job's failure
            self._done.put((job, None, exc, started, self.clock()))

    def wait(self) -> list[JobResult]:
        self._release_parked()  # the tuner handed none of them a segment
        results: list[JobResult] = self._expired()  # also when other jobs keep finishing
        # short timeouts: Ctrl-C is seen promptly; a waiting job's result within a few milliseconds (one file
        # check per running job each round: rounds are longer when many jobs run, as on a shared file system)
        poll = 0.2 if self.keep_alive is None else POLL_SECONDS * max(1, len(self._running))
        while not results:
            if self.keep_alive is not None:
                results.extend(self._parked_results())
                if results:
                    break
            try:
                item = self._done.get(timeout=poll)
            except queue.Empty:
                results.extend(self._expired())
                continue
            results.extend(self._take(item))
            while True:
                try:
                    results.extend(self._take(self._done.get_nowait()))
                except queue.Empty:
                    break
        return results

    def _take(self, item: tuple) -> list[JobResult]:
        launched, ret, error, started, finished = item
        process = launched.job_idx
        if self.processes is not None:
            self.processes.forget(process)
        for trial_id, (waiting, _) in list(self._parked.items()):
            if waiting == process:  # it stopped waiting on its own
                del self._parked[trial_id]
        job_idx = self._segment_of.pop(process, None)
        if job_idx is None:  # its last segment was reported when it parked
            return []
        self._process_of.pop(job_idx, None)
        if job_idx in self._abandoned:
            self._abandoned.discard(job_idx)
            return []
        job, segment_started = self._running.pop(job_idx, (launched, started))
        if job_idx == process:
            result = self.collect(job, ret, error, started, finished)
        else:  # a segment the waiting process took on: its result.json is in its own folder
            result = self.collect(job, ret, error, segment_started, finished,
                                  output_dir=self.keep_alive.output_dir(job))  # type: ignore[union-attr]
        if self._stopping.pop(job_idx, None) is not None and not result.ok:  # (it may have just finished)
            result = JobResult(job=job, status=TIMEOUT, curve=result.curve, seconds=result.seconds,
                               started=result.started, finished=finished, output_dir=result.output_dir,
                               error=f"exceeded hpo.trial_timeout={self.timeout} s; stopped")
        return [result]

    def _job_started(self, job_idx: int) -> float | None:
        """When the job's process started (executor clock), None while it has not (queued in a pool); for a
        segment a waiting process took on, when it was handed over."""
        if self._process_of.get(job_idx, job_idx) != job_idx:
            return self._running[job_idx][1]
        info = self.processes.info(job_idx) if self.processes is not None else None
        return None if info is None else float(info["started"]) - self._clock.t0

    def _expired(self) -> list[JobResult]:
        if self.timeout is None:
            return []
        if self.processes is not None:
            self._stop_overdue()
            return []
        now = self.clock()
        expired = []
        for job_idx, (job, started) in list(self._running.items()):
            if now - started > self.timeout + self.grace:
                del self._running[job_idx]
                self._abandoned.add(job_idx)
                log.warning("Job %d (trial %d) exceeded hpo.trial_timeout=%s s; abandoned", job_idx, job.trial_id,
                            self.timeout)
                expired.append(JobResult(job=job, status=TIMEOUT, started=started, finished=now,
                                         error=f"exceeded hpo.trial_timeout={self.timeout} s"))
        return expired

    def _stop_overdue(self) -> None:
        assert self.processes is not None and self.timeout is not None
        now = self.clock()
        for job_idx, (job, _) in list(self._running.items()):
            if job_idx in self._stopping:
                asked, killed = self._stopping[job_idx]
                if not killed and now - asked > self.kill_grace:
                    killed = self.processes.kill(self._process_of.get(job_idx, job_idx))
                    if killed:
                        log.warning("Job %d (trial %d) did not stop; killed its process", job_idx, job.trial_id)
                    self._stopping[job_idx] = (now if not killed else asked, killed)
                continue
            started = self._job_started(job_idx)
            if started is not None and now - started > self.timeout + self.grace:
                self._stopping[job_idx] = (now, False)
                reached = self.processes.request_stop(self._process_of.get(job_idx, job_idx))
                log.warning("Job %d (trial %d) exceeded hpo.trial_timeout=%s s; %s", job_idx, job.trial_id,
                            self.timeout, "stopping it" if reached else "its process is not reachable from here; "
                            "waiting for its launcher to end it")

    def close(self) -> None:
        self._release_parked()

    def shutdown(self) -> list[JobResult]:
        self._release_parked()
        now = self.clock()
        results = [
            JobResult(job=job, status=INTERRUPTED, started=started, finished=now, error="sweep interrupted")
            for job, started in self._running.values()
        ]
        self._abandoned.update(self._running)
        self._running.clear()
        return results
