"""Rebuild a sweep from its journal: which job results are already known, and which sweep wrote it."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict, deque
from typing import Any

from hydra_hpo.journal import JournalError
from hydra_hpo.trial import CONFIG_ERROR, Job, JobResult


def _number(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)  # "nan"/"inf" strings written by the journal parse back here


class ResumeLog:
    """The finished jobs recorded in a journal, handed back in the order they were first recorded.

    A resumed sweep runs the very same scheduler and searcher code; when they ask for a job whose
    result is recorded, the tuner takes the recorded result instead of running it again. Jobs that
    were started but never finished (in flight at a kill) have no result and run again.

    Each run of the sweep (the first one and every resume) writes ``sweep_started`` with its
    ``n_workers`` and the number of its first ``wait`` (``first_batch``): :meth:`workers_for_batch`
    tells the tuner how many jobs were in flight when each recorded batch came back, so the replay
    asks the scheduler at the same moments as the recorded runs did, whatever ``n_workers`` is now.
    """

    def __init__(self, events: list[dict]) -> None:
        self.events = events
        starts = [e for e in events if e.get("event") == "sweep_started"]
        self.fingerprint: dict | None = starts[0].get("fingerprint") if starts else None
        self._finished: dict[tuple, deque] = defaultdict(deque)
        self.trial_configs: dict[int, dict] = {}
        self.written: set[tuple] = set()
        self.max_job_idx = -1
        self.clock_offset = 0.0
        self.max_batch = -1
        self.n_results = 0
        self._runs: list[tuple[int, int]] = []  # (first batch, n_workers) of each recorded run that says so
        for position, event in enumerate(events):
            kind = event.get("event")
            if "job_idx" in event:
                self.max_job_idx = max(self.max_job_idx, int(event["job_idx"]))
            for key in ("finished", "clock"):
                if isinstance(event.get(key), (int, float)):
                    self.clock_offset = max(self.clock_offset, float(event[key]))
            if kind == "trial_started":
                self.trial_configs[int(event["trial_id"])] = event["config"]
            # a job that found the sweep misconfigured trained nothing: once that is fixed it runs again
            if kind == "segment_finished" and event.get("status") != CONFIG_ERROR:
                key = (int(event["trial_id"]), int(event["previous_resource"]), int(event["resource"]))
                self._finished[key].append((position, event))
                self.n_results += 1
                self.max_batch = max(self.max_batch, int(event.get("batch", position)))
            if kind == "sweep_started" and "n_workers" in event and "first_batch" in event:
                self._runs.append((int(event["first_batch"]), int(event["n_workers"])))
            self.written.add(self.identity(kind, event))

    @staticmethod
    def identity(kind: str | None, fields: dict) -> tuple:
        """Events that must not be written twice when a resumed sweep makes the same decision again."""
        return (kind, fields.get("trial_id"), fields.get("resource"), fields.get("job_idx"), fields.get("attempt"))

    def check_fingerprint(self, fingerprint: dict) -> None:
        """Refuse to resume a sweep directory written by a different sweep definition."""
        if self.fingerprint is None:
            return
        for key in sorted(set(fingerprint) | set(self.fingerprint)):
            mine, theirs = fingerprint.get(key), self.fingerprint.get(key)
            if mine != theirs and key == "rank_by" and theirs is None:
                raise JournalError(
                    f"cannot resume: the sweep directory's journal ranked every result by its last epoch (written "
                    f"before hpo.rank_by) but this sweep's rank_by is {mine!r}. Resume it with hpo.rank_by=last."
                )
            if mine != theirs:
                raise JournalError(
                    f"cannot resume: the sweep directory holds another sweep's journal; its {key} is "
                    f"{theirs!r} but this sweep's {key} is {mine!r}. Use a new hydra.sweep.dir or the "
                    "same settings."
                )

    def workers_for_batch(self, batch: int, current: int) -> int:
        """How many workers the run that handed back ``batch`` had; ``current`` for batches not recorded
        (or recorded by a run that did not say)."""
        if batch > self.max_batch:
            return current
        workers = current
        for first, n_workers in self._runs:
            if first <= batch:
                workers = n_workers
        return workers

    def fill_capacity(self, last_batch: int, current: int) -> int:
        """How many jobs may be in flight once recorded batch ``last_batch`` is handed back (-1: none yet).

        The run that handed back the next batch decided those jobs; at a run's boundary the killed run
        had already filled its workers before the next run could add its own, so the larger count holds.
        """
        following = last_batch + 1
        capacity = self.workers_for_batch(following, current)
        boundary = following > self.max_batch or any(first == following for first, _ in self._runs)
        if last_batch >= 0 and boundary:
            capacity = max(capacity, self.workers_for_batch(last_batch, current))
        return capacity

    def pending(self) -> list[dict]:
        """Recorded results not taken (yet): trial, resources and job number of each."""
        left = [(position, event) for queue in self._finished.values() for position, event in queue]
        return [{"trial_id": int(e["trial_id"]), "previous_resource": int(e["previous_resource"]),
                 "resource": int(e["resource"]), "job_idx": int(e["job_idx"])} for _, e in sorted(left, key=lambda x: x[0])]

    def check_trial(self, trial_id: int, config: dict) -> None:
        recorded = self.trial_configs.get(trial_id)
        if recorded is not None and recorded != config:
            raise JournalError(
                f"cannot resume: trial {trial_id} was recorded with config {recorded} but this sweep "
                f"suggests {config}; the search space, searcher or seed changed"
            )

    def take(self, job: Job) -> tuple[int, JobResult] | None:
        """The recorded result for ``job`` (consumed), with its journal position; None if not recorded."""
        queue = self._finished.get((job.trial_id, job.previous_resource, job.resource))
        if not queue:
            return None
        position, event = queue.popleft()
        value = _number(event.get("value"))
        curve = [float(v) if v is not None else math.nan for v in event.get("curve") or []]
        recorded_job = dataclasses.replace(job, job_idx=int(event["job_idx"]))
        result = JobResult(
            job=recorded_job,
            status=event["status"],
            value=value,
            curve=curve,
            seconds=float(event.get("seconds") or 0.0),
            started=float(event.get("started") or 0.0),
            finished=float(event.get("finished") or 0.0),
            error=event.get("error"),
            output_dir=event.get("output_dir"),
            metrics={k: float(v) for k, v in (event.get("metrics") or {}).items() if v is not None},
        )
        return int(event.get("batch", position)), result
