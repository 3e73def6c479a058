"""A live progress line for a whole sweep (``hpo.progress``): a tqdm bar on a terminal, log lines elsewhere.

The line says how many trials ended (and failed) out of the sweep's ``n_trials``, how many jobs are
running, the best value so far and where it was seen (trial, epochs), the time elapsed and, when a
budget is set, the time or epochs left. It is refreshed by the sweep's progress (each result, each
trial that ends), never by a timer. The per-job lines of the sweeper's log are unchanged.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from dataclasses import dataclass
from typing import IO, Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from hydra_hpo.errors import SettingsError
from hydra_hpo.records import TrialRecord
from hydra_hpo.settings import PROGRESS_MODES
from hydra_hpo.trial import JobResult
from hydra_hpo.tuner import Tuner, TunerCallback

log = logging.getLogger(__name__)

# a trial budget this large means "no trial budget" (the simulator's budget-only sweeps)
UNBOUNDED_TRIALS = 10**9


def check_mode(mode: Any) -> str:
    """``mode`` if it is a valid ``hpo.progress`` value; otherwise :class:`SettingsError`."""
    if mode not in PROGRESS_MODES:
        raise SettingsError(f"hpo.progress={mode!r}: must be one of {', '.join(PROGRESS_MODES)}")
    return mode


def resolve_mode(mode: str, stream: IO[str], in_process_jobs: bool = False) -> str:
    """``auto`` becomes ``bar`` when ``stream`` is a terminal and jobs run in other processes (jobs that
    run in this process, as with Hydra's basic launcher, print their own output between the bar's
    redraws), else ``log``; the other modes stay as they are."""
    check_mode(mode)
    if mode != "auto":
        return mode
    isatty = getattr(stream, "isatty", None)
    return "bar" if callable(isatty) and isatty() and not in_process_jobs else "log"


@dataclass
class ProgressState:
    """What the progress line shows; :func:`progress_text` turns it into the line."""

    n_trials: int | None  # the sweep's trial budget (None: unbounded)
    ended: int = 0  # trials that will run no more jobs, failed ones included
    failed: int = 0
    running: int = 0  # jobs in flight
    metric: str = "value"
    best_value: float | None = None
    best_trial: int | None = None
    best_epochs: int | None = None
    elapsed: float = 0.0
    epochs: int = 0  # epochs trained in completed jobs
    budget_seconds: float | None = None
    budget_epochs: int | None = None

    def fraction(self) -> float:
        """How far the sweep is, 0..1: the largest share used of its trial, time and epoch budgets
        (the sweep stops at the first one used up)."""
        shares = [0.0]
        if self.n_trials:
            shares.append(self.ended / self.n_trials)
        if self.budget_seconds:
            shares.append(self.elapsed / self.budget_seconds)
        if self.budget_epochs:
            shares.append(self.epochs / self.budget_epochs)
        return min(1.0, max(shares))


def progress_text(state: ProgressState) -> str:
    """The progress line, e.g. ``7/16 trials ended (1 failed), 2 running | best validation_error=0.0312
    (trial 4, 9 epochs) | 01:02 elapsed, 03:58 left of 05:00 | 48/100 epochs``."""
    of = f"/{state.n_trials}" if state.n_trials else ""
    parts = [f"{state.ended}{of} trials ended ({state.failed} failed), {state.running} running"]
    if state.best_value is None:
        parts.append("no result yet")
    else:
        parts.append(f"best {state.metric}={state.best_value:.4g} (trial {state.best_trial}, "
                     f"{state.best_epochs} epochs)")
    clock = f"{tqdm.format_interval(state.elapsed)} elapsed"
    if state.budget_seconds:
        left = max(0.0, state.budget_seconds - state.elapsed)
        clock += f", {tqdm.format_interval(left)} left of {tqdm.format_interval(state.budget_seconds)}"
    parts.append(clock)
    parts.append(f"{state.epochs}/{state.budget_epochs} epochs" if state.budget_epochs else f"{state.epochs} epochs")
    return " | ".join(parts)


def _columns(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return 0


class SweepProgress(TunerCallback):
    """The tuner callback behind ``hpo.progress``; use it as a context manager around ``tuner.run()``.

    ``mode``: ``bar`` (a tqdm bar on ``stream``; console log lines are printed above it), ``log`` (a
    log line every ``every`` results, on each new best, and at the end), ``off``, or ``auto``
    (:func:`resolve_mode`).
    """

    def __init__(self, mode: str = "auto", *, metric: str = "value", stream: IO[str] | None = None,
                 every: int = 10, in_process_jobs: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.mode = resolve_mode(mode, self.stream, in_process_jobs)
        self.metric = metric
        self.every = max(1, int(every))
        self.state: ProgressState | None = None
        self.text = ""  # the latest line
        self._results = 0
        self._results_at_last_line = 0
        self._best_at_last_line: tuple | None = None
        self._bar: tqdm | None = None
        self._exit = contextlib.ExitStack()

    # ------------------------------------------------------------ context
    def __enter__(self) -> "SweepProgress":
        if self.mode == "bar":
            # follow the terminal's size; one that reports none (0 x 0, a pty under `script`) would hide the bar
            known = _columns(self.stream) > 0
            self._bar = tqdm(total=1000, file=self.stream, disable=False, leave=True, dynamic_ncols=known,
                             ncols=None if known else 160, nrows=None if known else 24,
                             bar_format="{percentage:3.0f}%|{bar:20}| {desc}")
            self._exit.callback(self._bar.close)
            # console log lines (the per-job lines) are written above the bar instead of through it
            self._exit.enter_context(logging_redirect_tqdm())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.mode == "log" and self.state is not None:
            log.info("Progress (end): %s", self.text)
        self._exit.close()
        self._bar = None

    # ------------------------------------------------------------ tuner hooks
    def on_result(self, result: JobResult, record: TrialRecord, tuner: Tuner) -> None:
        self._results += 1
        self._update(tuner)

    def on_trial_end(self, record: TrialRecord, tuner: Tuner) -> None:
        if self.mode == "off":
            return
        if self.state is None:
            self._update(tuner, line_due=False)
        assert self.state is not None
        self.state.ended += 1
        self.state.failed += int(record.failed)
        self._update(tuner, line_due=False)

    # ------------------------------------------------------------ drawing
    def _update(self, tuner: Tuner, line_due: bool = True) -> None:
        if self.mode == "off":
            return
        if self.state is None:
            n_trials = tuner.scheduler.n_trials
            self.state = ProgressState(n_trials=None if n_trials >= UNBOUNDED_TRIALS else n_trials,
                                       metric=self.metric, budget_seconds=tuner.budget_seconds,
                                       budget_epochs=tuner.budget_epochs)
        state = self.state
        state.running = tuner.executor.num_running()
        state.elapsed = tuner.clock()
        state.epochs = tuner.epochs_total
        best = tuner.best
        if best is not None:
            state.best_value, state.best_trial, state.best_epochs = best.value, best.trial_id, best.resource
        self.text = progress_text(state)
        if self._bar is not None:
            self._bar.n = round(state.fraction() * 1000)
            self._bar.set_description_str(self.text, refresh=True)
        elif self.mode == "log" and line_due:
            best_key = (state.best_value, state.best_trial, state.best_epochs)
            new_best = state.best_value is not None and best_key != self._best_at_last_line
            if new_best or self._results - self._results_at_last_line >= self.every:
                self._results_at_last_line = self._results
                self._best_at_last_line = best_key
                log.info("Progress: %s", self.text)
