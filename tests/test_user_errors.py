"""User errors in-process: the class tree, the one-line report, and a job's config_error stopping the tuner."""

from __future__ import annotations

import pytest

from fakes import FakeExecutor, quadratic
from hydra_hpo.errors import DatasetMissing, MetricMissing, SettingsError, UserError, exit_on_user_error
from hydra_hpo.journal import Journal, JournalError
from hydra_hpo.resume import ResumeLog
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import build_searcher
from hydra_hpo.space import Float, SearchSpace, SearchSpaceError
from hydra_hpo.table import TableError
from hydra_hpo.trial import COMPLETED, CONFIG_ERROR, FAILED
from hydra_hpo.tuner import FatalSweepError, Tuner

SPACE = SearchSpace({"x": Float("x", 0.0, 1.0)})


def test_user_errors_keep_their_builtin_bases():
    # callers that catch ValueError / RuntimeError / FileNotFoundError keep working
    for cls, base in [(SettingsError, ValueError), (SearchSpaceError, ValueError), (TableError, ValueError),
                      (MetricMissing, ValueError), (DatasetMissing, FileNotFoundError),
                      (JournalError, RuntimeError), (FatalSweepError, RuntimeError)]:
        assert issubclass(cls, UserError) and issubclass(cls, base), cls


def test_settings_errors_of_schedulers_and_searchers_are_user_errors():
    searcher = build_searcher("random", SPACE)
    with pytest.raises(SettingsError, match=r"hpo.r_min=0: must be >= 1"):
        build_scheduler("asha", searcher, 4, 8, r_min=0, eta=2)
    with pytest.raises(SettingsError, match=r"hpo.scheduler='nope'"):
        build_scheduler("nope", searcher, 4, 8)
    with pytest.raises(SettingsError, match=r"hpo.searcher='nope'"):
        build_searcher("nope", SPACE)


def test_a_user_error_is_one_line_on_stderr_and_exit_status_1(capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        with exit_on_user_error():
            raise SettingsError("hpo.eta=1: must be >= 2\n  (second line)")
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.err == "Error: hpo.eta=1: must be >= 2 (second line)\n" and captured.out == ""


def test_full_error_disabled_or_a_bug_propagate_unchanged(capsys, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(SettingsError):
        with exit_on_user_error():
            raise SettingsError("hpo.eta=1: must be >= 2")
    monkeypatch.delenv("HYDRA_FULL_ERROR")
    with pytest.raises(MetricMissing):  # inside a sweep's job: the sweeper reports it
        with exit_on_user_error(enabled=False):
            raise MetricMissing("metric 'acc' not produced")
    with pytest.raises(KeyError):  # a bug keeps its traceback
        with exit_on_user_error():
            raise KeyError("bug")
    assert capsys.readouterr().err == ""


def make_tuner(outcome, journal=None, resume=None, workers=1, n_trials=4, max_retries=0):
    scheduler = build_scheduler("fifo", build_searcher("random", SPACE, seed=0), n_trials, 4)
    executor = FakeExecutor(workers, outcome)
    tuner = Tuner(scheduler, executor, journal=journal, resume=resume, max_retries=max_retries,
                  fingerprint={"space": SPACE.to_structured()})
    return tuner, executor


def test_a_config_error_stops_the_sweep_at_the_first_result_without_retry(tmp_path):
    def misconfigured(job):
        return (CONFIG_ERROR, None, 1.0) if job.trial_id == 1 else quadratic(job)

    tuner, executor = make_tuner(misconfigured, journal=Journal(tmp_path / "journal.jsonl"), max_retries=3)
    outcome = tuner.run()
    assert isinstance(outcome.fatal, FatalSweepError) and "config_error on purpose (trial 1" in str(outcome.fatal)
    assert [job.trial_id for job in executor.submitted] == [0, 1]  # no retry, no further trial
    assert outcome.trials[0].status == COMPLETED and outcome.trials[1].status == CONFIG_ERROR
    assert outcome.stop_reason == str(outcome.fatal)


def test_a_resumed_sweep_runs_the_misconfigured_job_again(tmp_path):
    path = tmp_path / "journal.jsonl"
    broken, _ = make_tuner(lambda job: (CONFIG_ERROR, None, 1.0) if job.trial_id == 1 else quadratic(job),
                           journal=Journal(path))
    assert broken.run().fatal is not None
    events = Journal(path).read()
    assert [e["status"] for e in events if e["event"] == "segment_finished"] == [COMPLETED, CONFIG_ERROR]
    # the user fixed the configuration: the recorded trial 0 is replayed, trial 1 runs again
    fixed, executor = make_tuner(quadratic, journal=Journal(path), resume=ResumeLog(events))
    outcome = fixed.run()
    assert outcome.fatal is None and [job.trial_id for job in executor.submitted] == [1, 2, 3]
    assert all(record.status == COMPLETED for record in outcome.trials.values())


def test_an_ordinary_failure_does_not_stop_the_sweep():
    tuner, executor = make_tuner(lambda job: (FAILED, None, 1.0) if job.trial_id == 1 else quadratic(job))
    outcome = tuner.run()
    assert outcome.fatal is None and len(executor.submitted) == 4


@pytest.mark.parametrize(
    "key,value",
    [("budget_seconds", "soon"), ("budget_epochs", 2.5), ("max_failure_rate", "half"), ("trial_timeout", "1m"),
     ("resume", "yes"), ("searcher_options", 5), ("seed", True)],
)
def test_a_setting_of_the_wrong_type_names_its_key_and_value(key, value):
    from hydra_hpo.settings import HPOSettings

    with pytest.raises(SettingsError, match=rf"^hpo\.{key}={value!r}: "):
        HPOSettings.from_mapping({key: value})
