"""Resuming a killed sweep with the fake executor: the same decisions with the same or another n_workers,
no recorded result dropped silently, and budgets judged on the recorded clock during replay."""

from __future__ import annotations

import pytest

from fakes import FakeExecutor, quadratic
from hydra_hpo.journal import Journal
from hydra_hpo.resume import ResumeLog
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import build_searcher
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.trial import Job
from hydra_hpo.tuner import Tuner

SPACE = SearchSpace({"x": Float("x", 0.0, 1.0)})


def uneven(job: Job):
    """Jobs of different lengths (so the order results come back in depends on the number of workers)."""
    status, value, _ = quadratic(job)
    return status, value, 1.0 + (job.trial_id * 7 % 5) * 0.3


class RecordingExecutor(FakeExecutor):
    """A fake executor that remembers the most jobs it ever ran at once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.peak = 0

    def submit(self, job: Job) -> None:
        super().submit(job)
        assert self.num_running() <= self.n_workers, "more jobs submitted than workers"
        self.peak = max(self.peak, self.num_running())


def make_tuner(workers, scheduler="asha", n_trials=12, journal=None, resume=None, crash_after=None, **kwargs):
    searcher = build_searcher("random", SPACE, seed=3)
    options = {} if scheduler == "fifo" else {"r_min": 1, "eta": 2}
    sched = build_scheduler(scheduler, searcher, n_trials, 8, **options)
    executor = RecordingExecutor(workers, uneven, crash_after=crash_after)
    decisions: list[tuple[int, int, int]] = []
    next_job = sched.next_job

    def recording_next_job():
        decision = next_job()
        if isinstance(decision, Job):
            decisions.append((decision.trial_id, decision.previous_resource, decision.resource))
        return decision

    sched.next_job = recording_next_job
    tuner = Tuner(sched, executor, seed=3, journal=journal, resume=resume,
                  fingerprint={"space": SPACE.to_structured(), "scheduler": scheduler}, **kwargs)
    return tuner, executor, decisions


def crash(tmp_path, workers, crash_after, scheduler="asha", **kwargs):
    path = tmp_path / "journal.jsonl"
    tuner, _, decisions = make_tuner(workers, scheduler, journal=Journal(path), crash_after=crash_after, **kwargs)
    with pytest.raises(SystemExit):
        tuner.run()
    return path, decisions


@pytest.mark.parametrize("scheduler", ["asha", "successive_halving", "hyperband", "fifo"])
@pytest.mark.parametrize("old,new", [(2, 2), (2, 1), (2, 4), (4, 1), (3, 2)])
@pytest.mark.parametrize("crash_after", [3, 9])
def test_resume_with_another_n_workers_replays_the_recorded_decisions(tmp_path, scheduler, old, new, crash_after):
    reference_tuner, _, reference = make_tuner(old, scheduler)
    expected = reference_tuner.run()
    path, before_kill = crash(tmp_path, old, crash_after, scheduler)
    assert before_kill == reference[: len(before_kill)]
    recorded_events = Journal(path).read()
    recorded = ResumeLog(recorded_events)

    resumed, executor, decisions = make_tuner(new, scheduler, journal=Journal(path), resume=recorded)
    outcome = resumed.run()
    # everything decided before the kill is decided again, in the same order
    assert decisions[: len(before_kill)] == before_kill
    # every recorded result was used, and nothing recorded ran again
    assert recorded.pending() == []
    events = Journal(path).read()
    assert not any(e["event"] == "recorded_results_unused" for e in events)
    ran = {(j.trial_id, j.previous_resource, j.resource) for j in executor.submitted}
    recorded_keys = {(e["trial_id"], e["previous_resource"], e["resource"]) for e in recorded_events
                     if e["event"] == "segment_finished"}
    assert len(recorded_keys) == crash_after and not ran & recorded_keys
    segments = sum(len(r.segments) for r in outcome.trials.values())
    assert segments == len(executor.submitted) + crash_after
    # the live part runs on the new number of workers, never more
    assert executor.peak <= new
    # the jobs in flight at the kill start again from scratch, so later decisions may differ; the sweep is whole
    assert len(outcome.trials) == len(expected.trials)
    assert all(record.resource > 0 for record in outcome.trials.values())


def test_more_workers_after_the_replay_are_used(tmp_path):
    path, _ = crash(tmp_path, 1, 4, "fifo")
    resumed, executor, _ = make_tuner(3, "fifo", journal=Journal(path), resume=ResumeLog(Journal(path).read()))
    resumed.run()
    assert executor.peak == 3
    started = [e for e in Journal(path).read() if e["event"] == "sweep_started"]
    assert [(e["n_workers"], e["first_batch"]) for e in started] == [(1, 0), (3, 4)]


def test_a_second_resume_replays_both_earlier_runs_with_their_own_workers(tmp_path):
    reference_tuner, _, reference = make_tuner(2, "asha")
    reference_tuner.run()
    path, first = crash(tmp_path, 2, 5)
    tuner, _, second = make_tuner(4, "asha", journal=Journal(path), resume=ResumeLog(Journal(path).read()),
                                  crash_after=6)
    with pytest.raises(SystemExit):
        tuner.run()
    assert second[: len(first)] == first == reference[: len(first)]
    log = ResumeLog(Journal(path).read())
    third, _, decisions = make_tuner(1, "asha", journal=Journal(path), resume=log)
    third.run()
    assert decisions[: len(second)] == second
    assert log.pending() == []


def test_results_no_longer_asked_for_are_reported_not_dropped(tmp_path, caplog):
    path, _ = crash(tmp_path, 2, 8, "fifo")
    log = ResumeLog(Journal(path).read())
    # fewer trials on resume: the recorded results of the trials beyond n_trials are never asked for again
    resumed, executor, _ = make_tuner(2, "fifo", n_trials=3, journal=Journal(path), resume=log)
    outcome = resumed.run()
    assert len(outcome.trials) == 3 and executor.submitted == []
    unused = [e for e in Journal(path).read() if e["event"] == "recorded_results_unused"]
    assert len(unused) == 1 and len(unused[0]["segments"]) == 5
    assert sorted(s["trial_id"] for s in unused[0]["segments"]) == [3, 4, 5, 6, 7]
    assert outcome.extra["recorded_results_unused"] == 5
    assert "5 recorded results were not asked for again" in caplog.text


@pytest.mark.parametrize("scheduler", ["fifo", "asha"])
def test_a_time_budget_is_judged_on_the_recorded_clock_during_replay(tmp_path, scheduler):
    budget = 6.0
    reference_tuner, _, reference = make_tuner(2, scheduler, budget_seconds=budget)
    expected = reference_tuner.run()
    assert "time budget" in expected.stop_reason
    # the interrupted run had no budget and ran past it; its journal's clock is far beyond the budget
    path, before_kill = crash(tmp_path, 2, 10, scheduler)
    log = ResumeLog(Journal(path).read())
    assert log.clock_offset > budget + 2
    resumed, executor, decisions = make_tuner(2, scheduler, journal=Journal(path), resume=log,
                                              budget_seconds=budget)
    outcome = resumed.run()
    assert decisions == reference
    assert outcome.best.value == expected.best.value and outcome.epochs_total == expected.epochs_total
    assert outcome.stop_reason == expected.stop_reason
    assert executor.submitted == []
