"""The tuning loop: scheduler <-> executor, bookkeeping, stop criteria and the journal."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from hydra_hpo.checkpoints import CheckpointStore
from hydra_hpo.errors import SettingsError, UserError
from hydra_hpo.journal import Journal
from hydra_hpo.objectives import Objectives
from hydra_hpo.records import TrialRecord, best_epoch
from hydra_hpo.resume import ResumeLog
from hydra_hpo.schedulers.base import WAIT, Scheduler
from hydra_hpo.searchers.base import Searcher
from hydra_hpo.executors.base import Executor
from hydra_hpo.trial import COMPLETED, CONFIG_ERROR, DIVERGED, INTERRUPTED, Job, JobResult, trial_seed

log = logging.getLogger(__name__)

# hpo.max_failure_rate is a fraction of the trials started, counted over at least this many trials
MIN_TRIALS_FOR_FAILURE_RATE = 10


class FatalSweepError(UserError, RuntimeError):
    """A problem with the sweep's definition (not with one trial): stop the whole sweep."""


class TunerCallback:
    """Hooks the tuner calls; subclasses override the ones they need (the defaults do nothing)."""

    def on_result(self, result: JobResult, record: TrialRecord, tuner: "Tuner") -> None:
        """A job finished (after retries were decided and the scheduler and incumbent were updated)."""

    def on_trial_end(self, record: TrialRecord, tuner: "Tuner") -> None:
        """A trial ended: it will run no more jobs; ``record.status`` says how it ended."""


@dataclass
class Incumbent:
    """The best result so far: loss-normalized ``loss``, raw ``value``, where and when it was seen."""

    loss: float
    value: float
    trial_id: int
    resource: int
    clock: float


@dataclass
class SweepOutcome:
    """What a finished (or stopped) sweep knows."""

    trials: dict[int, TrialRecord]
    best: Incumbent | None
    incumbent_trace: list[tuple[float, float]]  # (clock, best raw value so far)
    epochs_total: int
    busy_seconds: float
    wallclock: float
    n_workers: int
    stop_reason: str
    interrupted: bool = False
    failures: int = 0
    fatal: Exception | None = None  # a FatalSweepError that stopped the sweep
    objectives: Objectives | None = None  # several objectives or constraints (hydra_hpo.objectives)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def utilization(self) -> float:
        """Busy job-seconds divided by n_workers times the sweep's wall-clock seconds."""
        if self.wallclock <= 0:
            return 0.0
        return self.busy_seconds / (self.n_workers * self.wallclock)


class Tuner:
    """Drives a scheduler with an executor until the scheduler is done or a stop criterion hits.

    ``mode`` is normalized here, and only here: schedulers and searchers always minimize.
    ``searcher`` (the one the scheduler asks for configurations) hears every job's result, at every
    rung, before the scheduler does; without it nothing learns from results.
    With ``resume`` (a :class:`ResumeLog`), jobs whose results are in the journal are not run again:
    their recorded results are handed back in their recorded order and groups, with as many jobs in
    flight as the recorded run had (its ``n_workers``, even if ``n_workers`` changed since), so a seeded
    sweep makes the decisions it made before the interruption. Until the last recorded result is handed
    back the clock is the recorded one (stop rules are judged as they were). Jobs decided during the
    replay beyond the executor's own ``n_workers`` wait for a free worker. Recorded results that are never
    asked for again (fewer ``n_trials``, a stop rule) are reported: a warning, a
    ``recorded_results_unused`` journal event and ``outcome.extra["recorded_results_unused"]``.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        executor: Executor,
        *,
        searcher: Searcher | None = None,
        seed: int = 0,
        mode: str = "min",
        journal: Journal | None = None,
        resume: ResumeLog | None = None,
        fingerprint: dict | None = None,
        max_failure_rate: float = 1.0,
        max_retries: int = 0,
        budget_seconds: float | None = None,
        budget_epochs: int | None = None,
        callbacks: list[TunerCallback] | None = None,
        checkpoints: CheckpointStore | None = None,
        objectives: Objectives | None = None,
        rank_by: str = "last",
    ) -> None:
        if mode not in ("min", "max"):
            raise SettingsError(f"hpo.mode must be 'min' or 'max', got hpo.mode={mode!r}")
        if not 0.0 <= max_failure_rate <= 1.0:
            raise SettingsError(f"hpo.max_failure_rate must be in [0, 1], got {max_failure_rate}")
        if max_retries < 0:
            raise SettingsError(f"hpo.max_retries must be >= 0, got {max_retries}")
        self.scheduler = scheduler
        self.executor = executor
        self.searcher = searcher
        self.seed = seed
        self.sign = 1.0 if mode == "min" else -1.0
        self.journal = journal
        self.resume = resume
        self.fingerprint = fingerprint or {}
        self.max_failure_rate = max_failure_rate
        self.max_retries = max_retries
        self.budget_seconds = budget_seconds
        self.budget_epochs = budget_epochs
        self.callbacks = list(callbacks or [])
        self.checkpoints = checkpoints
        self.objectives = objectives  # the incumbent is the best feasible result; schedulers rank Points
        if rank_by not in ("best", "last"):
            raise SettingsError(f"hpo.rank_by must be 'best' or 'last', got {rank_by!r}")
        self.rank_by = rank_by
        self._keep_checkpoints = False  # an interrupted sweep keeps every checkpoint, to resume from

        self.trials: dict[int, TrialRecord] = {}
        self.best: Incumbent | None = None
        self.incumbent_trace: list[tuple[float, float]] = []
        self.epochs_total = 0
        self.busy_seconds = 0.0
        self._ended: set[int] = set()
        self._n_failed = 0
        self._attempts: dict[tuple, int] = {}
        self._retry_queue: list[Job] = []
        self._replayed: list[tuple[int, JobResult]] = []  # recorded results waiting to be "finished"
        self._deferred: list[Job] = []  # live jobs decided during a replay, waiting for a free worker
        self._last_batch = -1  # the last batch (group of results of one wait) handed back, recorded or live
        self._replaying = resume is not None and resume.n_results > 0
        self._replay_clock = 0.0  # the recorded clock while replaying: the last replayed result's finish
        self._next_job_idx = resume.max_job_idx + 1 if resume else 0
        self._clock_offset = resume.clock_offset if resume else 0.0
        self._batch = (max((int(e.get("batch", -1)) for e in resume.events), default=-1) + 1) if resume else 0
        self._stop_reason: str | None = None

    # ----------------------------------------------------------------- clock and journal
    def clock(self) -> float:
        """Seconds since the sweep began, including the time before a resume (the recorded clock while
        recorded results are handed back)."""
        if self._replaying:
            return self._replay_clock
        return self._clock_offset + self.executor.clock()

    def _log(self, event: str, **fields: Any) -> None:
        if self.journal is None:
            return
        if self.resume is not None and ResumeLog.identity(event, fields) in self.resume.written:
            return  # already recorded before the resume
        self.journal.append(event, **fields)

    # ----------------------------------------------------------------- the loop
    def run(self) -> SweepOutcome:
        """Run the sweep to its end; always returns what is known, even after Ctrl-C."""
        if self.resume is not None:
            self.resume.check_fingerprint(self.fingerprint)
        if self.journal is not None:
            self.journal.append("sweep_started", fingerprint=self.fingerprint, resumed=self.resume is not None,
                                n_workers=self.executor.n_workers, first_batch=self._batch,
                                clock=self._clock_offset + self.executor.clock())
        interrupted = False
        fatal: Exception | None = None
        try:
            self._loop()
        except (KeyboardInterrupt, FatalSweepError) as stop:
            interrupted = isinstance(stop, KeyboardInterrupt)
            fatal = None if interrupted else stop
            self._keep_checkpoints = True
            self._stop_reason = "interrupted (Ctrl-C)" if interrupted else str(stop)
            never_started = [JobResult(job=job, status=INTERRUPTED, started=self.clock(), finished=self.clock())
                             for job in self._deferred]
            self._deferred.clear()
            for result in [*self.executor.shutdown(), *never_started]:
                result = dataclasses.replace(result, status=INTERRUPTED, error="sweep interrupted")
                self._log("segment_interrupted", trial_id=result.job.trial_id, job_idx=result.job.job_idx,
                          resource=result.job.resource, clock=self.clock())
                self._record(result)
        finally:
            self.executor.close()
            if self.journal is not None:
                self.journal.close()  # anything unexpected (a kill) leaves the journal as it is, to resume from
        for trial_id in self.scheduler.finalize():
            self._end_trial(trial_id)
        for trial_id in list(self.trials):
            self._end_trial(trial_id)
        unused = self.resume.pending() if self.resume is not None else []
        if unused and not interrupted and fatal is None:
            log.warning("%d recorded results were not asked for again (the sweep now stops earlier or runs "
                        "fewer trials): %s", len(unused), ", ".join(
                            f"trial {u['trial_id']} epochs {u['previous_resource']}->{u['resource']}" for u in unused))
            if self.journal is not None:
                self.journal.append("recorded_results_unused", segments=unused, clock=self.clock())
        if self.journal is not None:
            self.journal.append("sweep_finished", reason=self._stop_reason or "done", clock=self.clock())
            self.journal.close()
        return SweepOutcome(
            trials=self.trials,
            best=self.best,
            incumbent_trace=self.incumbent_trace,
            epochs_total=self.epochs_total,
            busy_seconds=self.busy_seconds,
            wallclock=self.clock(),
            n_workers=self.executor.n_workers,
            stop_reason=self._stop_reason or "done",
            interrupted=interrupted,
            failures=self.n_failed_trials,
            fatal=fatal,
            objectives=self.objectives,
            extra={**({"recorded_results_unused": len(unused)} if unused else {}),
                   **(self.checkpoints.finish() if self.checkpoints is not None else {})},
        )

    def _loop(self) -> None:
        while True:
            decision: Any = None
            while self._stop_reason is None and self._free_slots() > 0:
                decision = self._next_job()
                if decision is None or decision is WAIT:
                    break
                self._submit(decision)
            if self._num_running() == 0:
                if decision is WAIT and self._stop_reason is None:
                    raise RuntimeError("the scheduler waits for results but no job is running")
                return
            for result in self._wait():
                self._handle(result)

    def _free_slots(self) -> int:
        capacity = self.executor.n_workers
        if self.resume is not None:  # as many in flight as the run that handed back the next recorded batch
            capacity = self.resume.fill_capacity(self._last_batch, capacity)
        return capacity - self._num_running()

    def _num_running(self) -> int:
        return self.executor.num_running() + len(self._replayed) + len(self._deferred)

    def _next_job(self) -> Any:
        if self._retry_queue:
            return self._retry_queue.pop(0)
        return self.scheduler.next_job()

    def _submit(self, job: Job) -> None:
        if job.job_idx < 0:
            job = dataclasses.replace(job, seed=trial_seed(self.seed, job.trial_id))
        if job.trial_id not in self.trials:
            if self.resume is not None:
                self.resume.check_trial(job.trial_id, job.config)
            self.trials[job.trial_id] = TrialRecord(job.trial_id, dict(job.config), job.seed)
            self._log("trial_started", trial_id=job.trial_id, config=job.config, seed=job.seed, clock=self.clock())
        recorded = self.resume.take(job) if self.resume is not None else None
        if recorded is not None:
            self._replayed.append(recorded)
            return
        job = dataclasses.replace(job, job_idx=self._next_job_idx)
        self._next_job_idx += 1
        if job.previous_resource > 0:
            self._log("promoted", trial_id=job.trial_id, job_idx=job.job_idx,
                      previous_resource=job.previous_resource, resource=job.resource, clock=self.clock())
        lineage = {}
        if job.source_trial is not None or job.set_params:  # PBT: the segment's own config and its source
            lineage = {"config": job.config, "source_trial": job.source_trial}
        self._log("segment_started", trial_id=job.trial_id, job_idx=job.job_idx,
                  previous_resource=job.previous_resource, resource=job.resource, seed=job.seed, clock=self.clock(),
                  **lineage)
        if job.source_trial is not None and self.checkpoints is not None:
            copied = self.checkpoints.copy(job.source_trial, job.previous_resource, job.trial_id)
            self._log("checkpoint_copied", trial_id=job.trial_id, job_idx=job.job_idx, source_trial=job.source_trial,
                      resource=job.previous_resource, bytes=copied, clock=self.clock())
        if self.executor.num_running() < self.executor.n_workers:
            self.executor.submit(job)
        else:  # a replay of a run with more workers decided it: it starts when a worker is free
            self._deferred.append(job)

    def _wait(self) -> list[JobResult]:
        if self._replayed:
            first_batch = min(batch for batch, _ in self._replayed)
            ready = [r for b, r in self._replayed if b == first_batch]
            self._replayed = [(b, r) for b, r in self._replayed if b != first_batch]
            self._last_batch = max(self._last_batch, first_batch)
            self._replay_clock = max([self._replay_clock, *(r.finished for r in ready)])
            return ready
        if self._replaying:  # every recorded result asked for is handed back: the live clock takes over
            self._replaying = False
            if self.journal is not None:
                self.journal.append("replay_finished", replayed=self.resume.n_results - len(self.resume.pending()),
                                    clock=self.clock())
        while self._deferred and self.executor.num_running() < self.executor.n_workers:
            self.executor.submit(self._deferred.pop(0))
        results = self.executor.wait()
        shifted = [
            dataclasses.replace(r, started=r.started + self._clock_offset, finished=r.finished + self._clock_offset)
            for r in results
        ]
        for result in shifted:
            self._log_finished(result, self._batch)
        self._last_batch = self._batch
        self._batch += 1
        return shifted

    def _log_finished(self, result: JobResult, batch: int) -> None:
        job = result.job
        self._log(
            "segment_finished", trial_id=job.trial_id, job_idx=job.job_idx, previous_resource=job.previous_resource,
            resource=job.resource, status=result.status, value=result.value, curve=result.curve,
            seconds=result.seconds, started=result.started, finished=result.finished, error=result.error,
            output_dir=result.output_dir, metrics=result.metrics, batch=batch,
        )

    # ----------------------------------------------------------------- results
    def _handle(self, result: JobResult) -> None:
        if result.status == COMPLETED and (result.value is None or not math.isfinite(result.value)):
            result = dataclasses.replace(result, status=DIVERGED, error=result.error or f"metric is {result.value}")
        job = result.job
        record = self._record(result)
        if result.status == CONFIG_ERROR:  # every trial would fail alike: stop at the first, no retry
            raise FatalSweepError(f"{result.error} (trial {job.trial_id}, job dir {result.output_dir})")
        if self.checkpoints is not None:
            # a recorded result's checkpoint may have moved on since: its snapshot was taken when it came in
            if result.ok and self.scheduler.copies_checkpoints and not self._replaying:
                self.checkpoints.snapshot(job.trial_id, job.resource)
            self.checkpoints.measure()  # the job has written its checkpoint; those of ending trials go below
        if not result.ok:
            key = (job.trial_id, job.previous_resource, job.resource)
            attempts = self._attempts.get(key, 0)
            if attempts < self.max_retries and self._stop_reason is None:
                self._attempts[key] = attempts + 1
                self._log("retry", trial_id=job.trial_id, resource=job.resource, attempt=attempts + 1,
                          error=result.error, clock=self.clock())
                self._retry_queue.append(dataclasses.replace(job, job_idx=-2))
                return
        loss = self._rank_loss(result) if result.ok else None
        point = self._point(result) if loss is not None and self.objectives is not None else None
        if self.searcher is not None:
            self.searcher.observe(job.trial_id, job.resource, loss, point)
        ended = self.scheduler.on_result(dataclasses.replace(result, value=loss, point=point))
        if loss is not None and (point is None or point.feasible):  # an infeasible result is never the best
            self._update_best(result)
        if self.best is not None:
            self.incumbent_trace.append((result.finished, self.best.value))
        for callback in self.callbacks:
            callback.on_result(result, record, self)
        for trial_id in ended:
            self._end_trial(trial_id)
        self._check_stop()

    def _rank_loss(self, result: JobResult) -> float:
        """What the scheduler ranks and the searcher learns (minimized): with ``rank_by="best"`` the best
        metric after any epoch the trial trained so far, the value the incumbent counts (a noisy validation
        metric that dips at epoch 3 and rises at epoch 4 ranks by its dip); else the job's last epoch."""
        if self.rank_by == "best" and self.objectives is None:
            epochs = enumerate(result.curve[:result.job.resource], 1)
            best = best_epoch([(result.job.resource, result.value), *epochs], self.sign)
            assert best is not None  # a completed job's value is finite
            return self.sign * best[0]
        return self.sign * float(result.value)

    def _point(self, result: JobResult):
        """The result's rank key; a metric the sweep needs and the run does not report stops the sweep."""
        assert self.objectives is not None
        missing = self.objectives.missing(result.metrics)
        if missing:
            raise FatalSweepError(f"metric {missing[0]!r} (hpo.objectives / hpo.constraints) not produced; the run "
                                  f"reports: {sorted(result.metrics)} (trial {result.job.trial_id}, job dir "
                                  f"{result.output_dir})")
        return self.objectives.point(result.metrics)

    def _update_best(self, result: JobResult) -> None:
        """The incumbent is the best metric after any epoch this job trained (known when the job ends):
        rerunning its configuration for that many epochs reproduces it."""
        job = result.job
        epochs = range(job.previous_resource + 1, min(job.resource, len(result.curve)) + 1)
        best = best_epoch([(job.resource, result.value), *((e, result.curve[e - 1]) for e in epochs)], self.sign)
        assert best is not None  # a completed job's value is finite
        value, epoch = best
        if self.best is None or self.sign * value < self.best.loss:
            self.best = Incumbent(self.sign * value, value, job.trial_id, epoch, result.finished)

    def _record(self, result: JobResult) -> TrialRecord:
        record = self.trials[result.job.trial_id]
        record.add(result)
        if result.status == COMPLETED:
            self.epochs_total += result.job.epochs
        self.busy_seconds += max(0.0, result.finished - result.started)
        return record

    def _end_trial(self, trial_id: int) -> None:
        if trial_id in self._ended or trial_id not in self.trials:
            return
        self._ended.add(trial_id)
        record = self.trials[trial_id]
        record.status = self._trial_status(record)
        self._n_failed += record.failed
        event = "trial_failed" if record.failed else "trial_completed"
        self._log(event, trial_id=trial_id, status=record.status, value=record.value, resource=record.resource,
                  error=record.error if record.failed else None, clock=self.clock())
        if self.checkpoints is not None and not self._keep_checkpoints:
            freed = self.checkpoints.release(trial_id)
            if freed is not None:
                self._log("checkpoint_deleted", trial_id=trial_id, bytes=freed,
                          reason=self.scheduler.end_reason(trial_id) or "the trial ended", clock=self.clock())
        for callback in self.callbacks:
            callback.on_trial_end(record, self)

    def _trial_status(self, record: TrialRecord) -> str:
        """A trial whose last job failed has that job's status; otherwise the scheduler says how it ended
        (completed, stopped, paused), or, when it does not say, ``completed``."""
        if not record.segments:
            return INTERRUPTED
        last = record.segments[-1].status
        if last != COMPLETED:
            return last
        return self.scheduler.trial_status(record.trial_id) or COMPLETED

    @property
    def n_failed_trials(self) -> int:
        return self._n_failed

    def _check_stop(self) -> None:
        if self._stop_reason is not None:
            return
        # Judged over the trials started so far, so it also fires when trials are unbounded (a time or epoch
        # budget); counted over at least MIN_TRIALS_FOR_FAILURE_RATE trials (or n_trials, if fewer) so that
        # one early failure does not stop a sweep.
        started = len(self.trials)
        allowed = self.max_failure_rate * max(started, min(MIN_TRIALS_FOR_FAILURE_RATE, self.scheduler.n_trials))
        if self.n_failed_trials > allowed:
            self._stop_reason = (
                f"{self.n_failed_trials} of {started} trials started failed, more than "
                f"hpo.max_failure_rate={self.max_failure_rate} allows"
            )
        elif self.budget_seconds is not None and self.clock() >= self.budget_seconds:
            self._stop_reason = f"time budget of {self.budget_seconds} s reached"
        elif self.budget_epochs is not None and self.epochs_total >= self.budget_epochs:
            self._stop_reason = f"budget of {self.budget_epochs} epochs reached"
        if self._stop_reason is not None:
            log.warning("Stopping the sweep: %s", self._stop_reason)
