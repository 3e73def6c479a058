"""The live progress line (hpo.progress): its text, the tqdm bar, the log lines, and the setting."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from fakes import FakeExecutor
from hydra_hpo.errors import SettingsError
from hydra_hpo.progress import ProgressState, SweepProgress, progress_text, resolve_mode
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import build_searcher
from hydra_hpo.settings import HPOSettings
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.trial import COMPLETED, FAILED
from hydra_hpo.tuner import Tuner, TunerCallback

sys.path.insert(0, str(Path(__file__).parent / "stub_app"))
import stub  # noqa: E402

SPACE = SearchSpace({"x": Float("x", 0.0, 1.0)})


def test_text_of_a_fresh_and_of_a_running_sweep():
    assert progress_text(ProgressState(n_trials=16, metric="validation_error")) == (
        "0/16 trials ended (0 failed), 0 running | no result yet | 00:00 elapsed | 0 epochs")
    state = ProgressState(n_trials=16, ended=7, failed=1, running=2, metric="validation_error", best_value=0.03125,
                          best_trial=4, best_epochs=9, elapsed=62.4, epochs=48, budget_seconds=300,
                          budget_epochs=100)
    assert progress_text(state) == (
        "7/16 trials ended (1 failed), 2 running | best validation_error=0.03125 (trial 4, 9 epochs) | "
        "01:02 elapsed, 03:57 left of 05:00 | 48/100 epochs")
    assert state.fraction() == pytest.approx(0.48)  # the epoch budget is the furthest used
    unbounded = ProgressState(n_trials=None, ended=3, elapsed=4000.0, budget_seconds=3600)
    assert progress_text(unbounded).startswith("3 trials ended (0 failed), 0 running")
    assert "1:06:40 elapsed, 00:00 left of 1:00:00" in progress_text(unbounded)
    assert unbounded.fraction() == 1.0


def scripted(job):
    """Trial 1 fails; the others reach (x - 0.3)^2 in 2 fake seconds per epoch."""
    if job.trial_id == 1:
        return FAILED, None, 2.0
    return COMPLETED, (float(job.config["x"]) - 0.3) ** 2, 2.0


class Snapshots(TunerCallback):
    """The progress line and the tuner's own state after each result (called after the progress callback)."""

    def __init__(self, progress: SweepProgress) -> None:
        self.progress = progress
        self.seen: list[tuple[str, object, int]] = []

    def on_result(self, result, record, tuner):
        self.seen.append((self.progress.text, tuner.best, tuner.epochs_total))


def run_tuner(progress: SweepProgress, n_trials=5, workers=2, budget_epochs=None):
    searcher = build_searcher("random", SPACE, seed=0)
    scheduler = build_scheduler("fifo", searcher, n_trials, 3)
    snapshots = Snapshots(progress)
    tuner = Tuner(scheduler, FakeExecutor(workers, scripted), seed=0, budget_epochs=budget_epochs,
                  callbacks=[progress, snapshots])
    with progress:
        outcome = tuner.run()
    return outcome, snapshots.seen


def test_bar_follows_the_results_of_a_sweep():
    stream = io.StringIO()
    progress = SweepProgress("bar", metric="loss", stream=stream)
    outcome, seen = run_tuner(progress)
    assert len(seen) == 5
    for text, best, epochs in seen:  # each line shows the best and the epochs as the tuner knew them then
        if best is None:
            assert "no result yet" in text
        else:
            assert f"best loss={best.value:.4g} (trial {best.trial_id}, 3 epochs)" in text
        assert text.endswith(f"| {epochs} epochs")
    # the first result finishes trial 0 while trial 1 still runs; trial 1's failure is counted when it ends
    assert seen[0][0].startswith("0/5 trials ended (0 failed), 1 running")
    best = outcome.best
    assert progress.text.startswith("5/5 trials ended (1 failed), 0 running | ")
    assert f"best loss={best.value:.4g} (trial {best.trial_id}, 3 epochs)" in progress.text
    # 5 jobs of 3 epochs at 2 fake seconds each on 2 workers: three rounds of 6 s; the failed job trained nothing
    assert "00:18 elapsed" in progress.text and progress.text.endswith("| 12 epochs")
    drawn = stream.getvalue()
    assert "100%|" in drawn and drawn.rstrip().endswith(progress.text)


def test_bar_fills_by_the_epoch_budget():
    stream = io.StringIO()
    progress = SweepProgress("bar", metric="loss", stream=stream)
    outcome, _ = run_tuner(progress, n_trials=50, budget_epochs=9)
    assert outcome.stop_reason == "budget of 9 epochs reached"
    # jobs of 3 epochs: the bar stands at 3/9, 6/9, 9/9 of the budget (of 50 trials, only 5 ran)
    drawn = stream.getvalue()
    assert " 33%|" in drawn and " 67%|" in drawn and "100%|" in drawn
    assert progress.text.startswith("5/50 trials ended") and progress.text.endswith("| 12/9 epochs")


def test_log_mode_writes_a_line_on_each_new_best_and_at_the_end(caplog):
    progress = SweepProgress("log", metric="loss", every=100)
    with caplog.at_level(logging.INFO, logger="hydra_hpo.progress"):
        outcome, seen = run_tuner(progress, n_trials=6)
    lines = [r.getMessage() for r in caplog.records if r.name == "hydra_hpo.progress"]
    bests = {(b.trial_id, b.value) for _, b, _ in seen if b is not None}
    assert len(lines) == len(bests) + 1  # one per new best, one at the end
    assert lines[-1] == f"Progress (end): {progress.text}"
    assert lines[-1].startswith("Progress (end): 6/6 trials ended (1 failed)")


def test_off_draws_nothing(caplog):
    stream = io.StringIO()
    progress = SweepProgress("off", stream=stream)
    with caplog.at_level(logging.INFO, logger="hydra_hpo.progress"):
        run_tuner(progress)
    assert stream.getvalue() == "" and progress.text == ""
    assert not [r for r in caplog.records if r.name == "hydra_hpo.progress"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_a_bar_on_a_terminal_only():
    assert resolve_mode("auto", Terminal()) == "bar"
    assert resolve_mode("auto", io.StringIO()) == "log"
    assert resolve_mode("auto", Terminal(), in_process_jobs=True) == "log"
    assert resolve_mode("off", Terminal()) == "off"


def test_a_bad_setting_names_the_key():
    with pytest.raises(SettingsError, match=r"hpo.progress='loud': must be one of auto, bar, log, off"):
        HPOSettings.from_mapping({"progress": "loud"})


def test_a_sweep_in_log_mode_writes_progress_lines(tmp_path, monkeypatch, capsys):
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["stub.py", "-m", f"hydra.sweep.dir={tmp_path}", "hpo.n_trials=4",
                                      "+hpo.progress=log", "+behaviour.2=fail"])
    try:
        stub.main()
    finally:
        GlobalHydra.instance().clear()
    lines = [line for line in capsys.readouterr().out.splitlines() if "Progress" in line]
    assert lines, "no progress line in the sweep's log"
    assert "Progress (end): 4/4 trials ended (1 failed), 0 running | best validation_error=" in lines[-1]
