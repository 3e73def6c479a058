"""The tuning loop with a fake executor: bookkeeping, failures, retries, stop rules, journal, resume."""

from __future__ import annotations

import math

import pytest

from fakes import FakeExecutor, quadratic
from hydra_hpo.journal import Journal, JournalError
from hydra_hpo.resume import ResumeLog
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import SEARCHERS, build_searcher
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.trial import COMPLETED, DIVERGED, FAILED, trial_seed
from hydra_hpo.tuner import Tuner

SPACE = SearchSpace({"x": Float("x", 0.0, 1.0)})


def make_tuner(n_trials=8, workers=2, scheduler="fifo", outcome=quadratic, journal=None, resume=None,
               crash_after=None, seed=0, **kwargs):
    searcher = build_searcher("random", SPACE, seed=seed)
    options = {} if scheduler == "fifo" else {"r_min": 1, "eta": 2}
    sched = build_scheduler(scheduler, searcher, n_trials, 4, **options)
    executor = FakeExecutor(workers, outcome, crash_after=crash_after)
    tuner = Tuner(sched, executor, searcher=searcher, seed=seed, journal=journal, resume=resume,
                  fingerprint={"space": SPACE.to_structured(), "scheduler": scheduler}, **kwargs)
    return tuner, executor


def test_fifo_runs_every_trial_once_and_finds_the_best():
    tuner, executor = make_tuner(n_trials=8, workers=3)
    outcome = tuner.run()
    assert len(outcome.trials) == 8 and len(executor.submitted) == 8
    values = {tid: rec.value for tid, rec in outcome.trials.items()}
    assert outcome.best.value == min(values.values())
    assert outcome.best.trial_id == min(values, key=values.get)
    assert all(rec.status == COMPLETED for rec in outcome.trials.values())
    assert outcome.epochs_total == 8 * 4
    # each job carries the trial's derived seed and a fresh job number
    assert sorted(j.job_idx for j in executor.submitted) == list(range(8))
    assert all(j.seed == trial_seed(0, j.trial_id) for j in executor.submitted)
    # equal job lengths on 3 workers: only the tail leaves workers idle
    assert outcome.utilization == pytest.approx(8 * 4 / (3 * 12))


def test_mode_max_is_normalized_once():
    tuner, _ = make_tuner(n_trials=6, mode="max")
    outcome = tuner.run()
    assert outcome.best.value == max(rec.value for rec in outcome.trials.values())


def failing_every_third(job):
    if job.trial_id % 3 == 1:
        return FAILED, None, 1.0
    if job.trial_id % 3 == 2:
        return COMPLETED, math.nan, 1.0
    return quadratic(job)


def test_failed_and_diverged_trials_are_recorded_and_the_sweep_goes_on():
    tuner, _ = make_tuner(n_trials=9, outcome=failing_every_third, max_failure_rate=1.0)
    outcome = tuner.run()
    statuses = [outcome.trials[t].status for t in sorted(outcome.trials)]
    assert statuses == [COMPLETED, FAILED, DIVERGED] * 3
    assert outcome.failures == 6
    assert outcome.best.trial_id % 3 == 0


def test_max_failure_rate_is_judged_over_the_whole_sweep():
    tuner, executor = make_tuner(n_trials=9, workers=1, outcome=failing_every_third, max_failure_rate=0.3)
    outcome = tuner.run()
    # fewer than 10 trials: judged over all 9, 0.3 * 9 = 2.7 failures allowed: the third failure stops the
    # sweep (trial 4 is the third failed one)
    assert outcome.failures == 3
    assert len(executor.submitted) == 5
    assert "3 of 5 trials started failed" in outcome.stop_reason and "max_failure_rate=0.3" in outcome.stop_reason


def failing_from(first_failure):
    def outcome(job):
        return (FAILED, None, 1.0) if job.trial_id >= first_failure else quadratic(job)
    return outcome


@pytest.mark.parametrize("budget", [{"budget_epochs": 400}, {"budget_seconds": 400.0}])
def test_max_failure_rate_fires_with_unbounded_trials(budget):
    # a time or epoch budget and unbounded trials: judged over the trials started, not over n_trials
    tuner, executor = make_tuner(n_trials=10**6, workers=1, outcome=failing_from(10), max_failure_rate=0.5,
                                 **budget)
    outcome = tuner.run()
    # trials 0-9 complete, every later one fails: 11 failures of 21 started is the first rate above 0.5
    assert len(executor.submitted) == 21 and outcome.failures == 11
    assert "11 of 21 trials started failed" in outcome.stop_reason
    assert outcome.epochs_total == 10 * 4 < 400  # the budget did not stop it


def test_max_failure_rate_waits_for_ten_started_trials():
    # the first trials all fail: the rate counts over at least 10 trials, so 0.5 allows 5 failures first
    tuner, executor = make_tuner(n_trials=10**6, workers=1, outcome=failing_from(0), max_failure_rate=0.5,
                                 budget_epochs=400)
    outcome = tuner.run()
    assert len(executor.submitted) == 6 and outcome.failures == 6
    assert "6 of 6 trials started failed" in outcome.stop_reason


def test_max_failure_rate_zero_stops_at_the_first_failure_and_one_never_stops():
    tuner, executor = make_tuner(n_trials=10**6, workers=1, outcome=failing_from(3), max_failure_rate=0.0,
                                 budget_epochs=400)
    outcome = tuner.run()
    assert len(executor.submitted) == 4 and outcome.failures == 1
    tuner, executor = make_tuner(n_trials=30, workers=1, outcome=failing_from(0), max_failure_rate=1.0)
    outcome = tuner.run()
    assert len(executor.submitted) == 30 and outcome.failures == 30


def test_retries_rerun_a_failed_job():
    attempts = {}

    def flaky(job):
        attempts[job.trial_id] = attempts.get(job.trial_id, 0) + 1
        return (FAILED, None, 1.0) if attempts[job.trial_id] == 1 else quadratic(job)

    tuner, executor = make_tuner(n_trials=3, workers=1, outcome=flaky, max_retries=1)
    outcome = tuner.run()
    assert all(rec.status == COMPLETED for rec in outcome.trials.values())
    assert len(executor.submitted) == 6
    assert [len(rec.segments) for rec in outcome.trials.values()] == [2, 2, 2]


def test_budget_in_epochs_stops_starting_jobs():
    tuner, executor = make_tuner(n_trials=50, workers=1, budget_epochs=12)
    outcome = tuner.run()
    assert outcome.epochs_total == 12 and len(executor.submitted) == 3


def test_journal_records_every_event_in_order(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    tuner, _ = make_tuner(n_trials=4, scheduler="successive_halving", journal=journal)
    tuner.run()
    events = Journal(tmp_path / "journal.jsonl").read()
    kinds = [e["event"] for e in events]
    assert kinds[0] == "sweep_started" and kinds[-1] == "sweep_finished"
    assert kinds.count("trial_started") == 4
    assert kinds.count("segment_started") == kinds.count("segment_finished")
    assert "promoted" in kinds
    assert kinds.count("trial_completed") + kinds.count("trial_failed") == 4
    # a segment's result is journaled before the trial it ends is marked completed
    for tid in range(4):
        last_finish = max(i for i, e in enumerate(events) if e["event"] == "segment_finished" and e["trial_id"] == tid)
        done = next(i for i, e in enumerate(events) if e["event"] == "trial_completed" and e["trial_id"] == tid)
        assert last_finish < done


def test_torn_last_journal_line_is_ignored(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.append("a", x=1)
    journal.append("b", x=2)
    journal.close()
    with open(path, "a") as f:
        f.write('{"event": "c", "x"')  # the process died mid-write
    events = Journal(path).read()
    assert [e["event"] for e in events] == ["a", "b"]
    Journal(path).append("d")
    assert [e["event"] for e in Journal(path).read()] == ["a", "b", "d"]


def test_corrupt_line_in_the_middle_is_an_error(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"event": "a"}\nnot json\n{"event": "b"}\n')
    with pytest.raises(JournalError, match="line 2"):
        Journal(path).read()


@pytest.mark.parametrize("scheduler,workers", [("fifo", 2), ("successive_halving", 1), ("asha", 2)])
@pytest.mark.parametrize("crash_after", [1, 4, 7])
def test_resume_after_a_kill_redoes_nothing_and_makes_the_same_decisions(tmp_path, scheduler, workers, crash_after):
    reference, ref_exec = make_tuner(n_trials=8, workers=workers, scheduler=scheduler)
    expected = reference.run()

    path = tmp_path / "journal.jsonl"
    crashed, _ = make_tuner(n_trials=8, workers=workers, scheduler=scheduler, journal=Journal(path),
                            crash_after=crash_after)
    with pytest.raises(SystemExit):
        crashed.run()
    events = Journal(path).read()
    finished_before = sum(e["event"] == "segment_finished" for e in events)
    assert finished_before == crash_after

    resumed, executor = make_tuner(n_trials=8, workers=workers, scheduler=scheduler, journal=Journal(path),
                                   resume=ResumeLog(events))
    outcome = resumed.run()
    # nothing that finished is run again: the resumed sweep only runs the rest
    assert len(executor.submitted) == len(ref_exec.submitted) - crash_after
    assert outcome.best.value == expected.best.value and outcome.best.trial_id == expected.best.trial_id
    assert {t: r.config for t, r in outcome.trials.items()} == {t: r.config for t, r in expected.trials.items()}
    assert outcome.epochs_total == expected.epochs_total
    # job numbers continue after the highest recorded one
    recorded_max = max(e["job_idx"] for e in events if "job_idx" in e)
    assert min(j.job_idx for j in executor.submitted) > recorded_max
    all_events = Journal(path).read()
    assert sum(e["event"] == "trial_started" for e in all_events) == 8


def test_resume_refuses_another_sweeps_journal(tmp_path):
    path = tmp_path / "journal.jsonl"
    first, _ = make_tuner(n_trials=2, journal=Journal(path))
    first.run()
    other, _ = make_tuner(n_trials=2, scheduler="asha", journal=Journal(path), resume=ResumeLog(Journal(path).read()))
    with pytest.raises(JournalError, match="another sweep's journal"):
        other.run()


def test_resume_with_a_different_seed_is_refused(tmp_path):
    path = tmp_path / "journal.jsonl"
    first, _ = make_tuner(n_trials=3, journal=Journal(path))
    first.run()
    log = ResumeLog(Journal(path).read())
    log.fingerprint = None  # even without a fingerprint, the recorded configs must match
    other, _ = make_tuner(n_trials=3, seed=1, journal=Journal(path), resume=log)
    with pytest.raises(JournalError, match="trial 0 was recorded"):
        other.run()


@pytest.mark.parametrize("searcher_name", sorted(SEARCHERS))
@pytest.mark.parametrize("scheduler_name", ["fifo", "successive_halving", "hyperband", "asha"])
def test_every_searcher_plugs_into_every_scheduler(searcher_name, scheduler_name):
    space = SearchSpace({"x": Float("x", 0.0, 1.0)})
    searcher = build_searcher(searcher_name, space, seed=1)
    options = {} if scheduler_name == "fifo" else {"r_min": 1, "eta": 2}
    scheduler = build_scheduler(scheduler_name, searcher, 5, 4, **options)
    outcome = Tuner(scheduler, FakeExecutor(2), searcher=searcher, seed=1).run()
    assert len(outcome.trials) == 5
    assert all(space.contains(record.config) for record in outcome.trials.values())
    assert outcome.best is not None and outcome.best.value == min(
        s.value for r in outcome.trials.values() for s in r.segments if s.value is not None)


def csv_rows(outcome) -> list[dict]:
    import csv
    import io

    from hydra_hpo.results import trials_table

    return list(csv.DictReader(io.StringIO(trials_table(outcome))))


def test_trials_say_how_they_ended_in_trials_csv_and_the_summary(tmp_path):
    from hydra_hpo.results import summary_dict

    journal = Journal(tmp_path / "journal.jsonl")
    # successive halving over epochs 1, 2, 4 with 4 trials: 2 stop at 1 epoch, 1 at 2, 1 goes on to 4
    tuner, _ = make_tuner(n_trials=4, scheduler="successive_halving", journal=journal)
    outcome = tuner.run()
    rows = csv_rows(outcome)
    assert sorted((row["status"], row["epochs"]) for row in rows) == [
        ("completed", "4"), ("stopped", "1"), ("stopped", "1"), ("stopped", "2")]
    assert summary_dict(outcome, "loss", "min")["trial_statuses"] == {"completed": 1, "stopped": 3}
    assert outcome.failures == 0
    ends = [e for e in Journal(tmp_path / "journal.jsonl").read() if e["event"] == "trial_completed"]
    assert sorted(e["status"] for e in ends) == ["completed", "stopped", "stopped", "stopped"]


def test_asha_promotion_trials_left_at_a_rung_are_paused():
    tuner, _ = make_tuner(n_trials=6, workers=2, scheduler="asha", outcome=failing_every_third)
    outcome = tuner.run()
    rows = {int(row["trial_id"]): row for row in csv_rows(outcome)}
    for trial_id, record in outcome.trials.items():
        if trial_id % 3 == 0:  # trains well: reached r_max = 4, or was never promoted that far
            expected = COMPLETED if record.resource == 4 else "paused"
        else:
            expected = FAILED if trial_id % 3 == 1 else DIVERGED
        assert rows[trial_id]["status"] == record.status == expected
    assert "paused" in {row["status"] for row in rows.values()}
    assert outcome.failures == 4  # paused trials are not failures


def test_callbacks_hear_each_result_and_each_trial_end_once():
    from hydra_hpo.tuner import TunerCallback

    class Ends(TunerCallback):  # overrides one hook; the other one is the base class's no-op
        def __init__(self):
            self.ended = []

        def on_trial_end(self, record, tuner):
            self.ended.append((record.trial_id, record.status))

    ends = Ends()
    tuner, _ = make_tuner(n_trials=8, scheduler="successive_halving", callbacks=[ends])
    outcome = tuner.run()
    assert sorted(ends.ended) == sorted((t, r.status) for t, r in outcome.trials.items())
    assert {status for _, status in ends.ended} == {"completed", "stopped"}
