"""Mistakes in the user's input, and how a command reports them: one line, no traceback.

Every error the user can fix (a setting, the search space, a table file, a journal that belongs to
another sweep, a missing dataset, a metric the run does not log) derives from :class:`UserError`;
its message names the key and the value and, where there is one, the fix. A command line turns it
into ``Error: <message>`` on stderr and exit status 1 (:func:`exit_on_user_error`); anything else is
a bug and keeps its traceback. ``HYDRA_FULL_ERROR=1`` shows the traceback of user errors too, as
Hydra does for its own.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

FULL_ERROR_ENV = "HYDRA_FULL_ERROR"


class UserError(Exception):
    """A mistake in the user's input; the message names the key, the value and the fix."""


class SettingsError(UserError, ValueError):
    """An ``hpo.<key>`` setting is invalid; the message names the key and the value."""


class JobConfigError(UserError):
    """A job found its configuration unusable whatever the trial's values (every trial would fail
    alike): a sweep stops at the first such result instead of running the others."""


class MetricMissing(JobConfigError, ValueError):
    """The metric the sweep optimizes (``metric=``) was not logged by the model."""


class DatasetMissing(JobConfigError, FileNotFoundError):
    """The dataset is neither on disk nor downloadable."""


def full_error_requested() -> bool:
    """True when ``HYDRA_FULL_ERROR=1``: show tracebacks (Hydra's own rule for its errors)."""
    return os.environ.get(FULL_ERROR_ENV) == "1"


def one_line(error: BaseException) -> str:
    """The error's message on a single line."""
    return " ".join(str(error).split()) or type(error).__name__


@contextlib.contextmanager
def exit_on_user_error(enabled: bool = True) -> Iterator[None]:
    """Report a :class:`UserError` raised inside as ``Error: <message>`` on stderr and exit with status 1.

    With ``HYDRA_FULL_ERROR=1`` (or ``enabled=False``, e.g. inside a job of a sweep, whose sweeper
    reports the error) the exception propagates unchanged. ``SystemExit`` passes through Hydra's
    ``run_and_report``, which catches only ``Exception``, so the line is all that is printed.
    """
    try:
        yield
    except UserError as error:
        if not enabled or full_error_requested():
            raise
        sys.stdout.flush()
        sys.stderr.write(f"Error: {one_line(error)}\n")
        sys.stderr.flush()
        raise SystemExit(1) from None
