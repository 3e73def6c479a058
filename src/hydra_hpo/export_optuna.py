"""Write a sweep into an Optuna storage, to look at it in optuna-dashboard.

Command line::

    python -m hydra_hpo.export_optuna multirun/2026-11-29/20-21-00 --storage sqlite:///optuna.db
    optuna-dashboard sqlite:///optuna.db

The sweep is read from its journal (``journal.jsonl``), so a sweep that is still running (or was
killed) exports what it has done so far; export again to refresh it. Each export replaces the study
it wrote before. One Optuna study per sweep (named after the sweep folder, direction from
``hpo.mode``); one Optuna trial per trial, numbered like our trial ids, with its parameters and their
distributions (from the sweep's search space), its state (``completed`` -> COMPLETE, ``stopped`` and
``paused`` -> PRUNED, a failure -> FAIL, not ended yet -> RUNNING), its value (the metric at the most
epochs it trained) and its per-epoch curve as intermediate values (step = epoch).

Optuna and optuna-dashboard are an optional extra: ``pip install 'hydra-hpo[dashboard]'``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra_hpo.errors import UserError, exit_on_user_error, one_line
from hydra_hpo.journal import JOURNAL_NAME, Journal
from hydra_hpo.records import TrialRecord
from hydra_hpo.space import Categorical, Float, Int, SearchSpace
from hydra_hpo.space_structured import space_from_structured
from hydra_hpo.trial import COMPLETED, FAILURE_STATUSES, PAUSED, STOPPED, JobResult
from hydra_hpo.tuner import Tuner, TunerCallback

log = logging.getLogger(__name__)

RUNNING = "running"
SWEEP_DIR_ATTR = "hydra_hpo_sweep_dir"  # marks a study as the export of this sweep: only such a study is replaced


class ExportError(UserError, RuntimeError):
    """The sweep cannot be exported as asked (no journal, optuna missing, a study name taken)."""


@dataclass
class ExportedTrial:
    """One trial as the journal tells it."""

    trial_id: int
    config: dict[str, Any]
    seed: int | None
    status: str = RUNNING  # our status; RUNNING until the trial ends
    value: float | None = None
    curve: dict[int, float] = field(default_factory=dict)  # epoch -> metric
    started: float = 0.0  # sweep clock, seconds
    ended: float | None = None
    epochs: int = 0
    error: str | None = None


@dataclass
class SweepHistory:
    """What the journal of one sweep says: its definition and its trials so far."""

    sweep_dir: Path
    space: SearchSpace
    mode: str
    metric: str
    fingerprint: dict[str, Any]
    trials: list[ExportedTrial]
    finished: bool  # the last run of the sweep wrote sweep_finished
    started_at: datetime.datetime  # wall-clock time of sweep clock 0 (estimated, see read_sweep)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)  # the journal writes NaN/inf as strings
    return number if math.isfinite(number) else None


def read_sweep(sweep_dir: str | Path) -> SweepHistory:
    """Read the sweep in ``sweep_dir`` from its journal (torn last lines of a running sweep are skipped).

    The journal's clock counts seconds since the sweep began; wall-clock times are estimated by taking
    the journal's last modification as the time of its latest clock reading.
    """
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / JOURNAL_NAME
    if not path.is_file():
        raise ExportError(f"{sweep_dir} holds no {JOURNAL_NAME}: give the sweep directory (hydra.sweep.dir) of a "
                          "hydra-hpo sweep")
    events = Journal(path).read(repair=False)
    starts = [e for e in events if e.get("event") == "sweep_started"]
    if not starts:
        raise ExportError(f"{path} has no sweep_started event: not a hydra-hpo sweep journal")
    fingerprint = starts[0].get("fingerprint") or {}
    space = space_from_structured(fingerprint.get("search_space") or {})
    trials: dict[int, ExportedTrial] = {}
    last_clock = 0.0
    finished = False
    for event in events:
        kind = event.get("event")
        for key in ("clock", "finished"):
            if isinstance(event.get(key), (int, float)):
                last_clock = max(last_clock, float(event[key]))
        if kind == "sweep_started":
            finished = False
        elif kind == "sweep_finished":
            finished = True
        if "trial_id" not in event:
            continue
        trial_id = int(event["trial_id"])
        if kind == "trial_started":
            if trial_id not in trials:
                trials[trial_id] = ExportedTrial(trial_id, dict(event.get("config") or {}), event.get("seed"),
                                                 started=float(event.get("clock") or 0.0))
            continue
        trial = trials.get(trial_id)
        if trial is None:
            continue
        if kind == "segment_started":  # a trial resumed after an interruption runs again
            trial.status, trial.ended = RUNNING, None
        elif kind == "segment_finished" and event.get("status") == COMPLETED:
            curve = event.get("curve") or []
            for epoch, value in enumerate(curve, start=1):
                if _number(value) is not None:
                    trial.curve[epoch] = float(value)
            value = _number(event.get("value"))
            if value is not None:  # the value at the segment's last epoch, also when no curve was logged
                trial.curve[int(event["resource"])] = value
        elif kind in ("trial_completed", "trial_failed"):
            trial.status = str(event.get("status") or (COMPLETED if kind == "trial_completed" else "failed"))
            trial.value = _number(event.get("value"))
            trial.epochs = int(event.get("resource") or 0)
            trial.error = event.get("error")
            trial.ended = float(event.get("clock") or last_clock)
    mtime = datetime.datetime.fromtimestamp(path.stat().st_mtime)
    return SweepHistory(
        sweep_dir=sweep_dir, space=space, mode=str(fingerprint.get("mode", "min")),
        metric=str(fingerprint.get("metric", "value")), fingerprint=fingerprint,
        trials=[trials[t] for t in sorted(trials)], finished=finished,
        started_at=mtime - datetime.timedelta(seconds=last_clock),
    )


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ExportError("optuna is not installed: pip install 'hydra-hpo[dashboard]' (optuna and "
                          "optuna-dashboard)") from None
    return optuna


def _choice(value: Any) -> Any:
    """Optuna's categorical choices are None, bool, int, float or str; anything else goes in as JSON text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def distributions_of(space: SearchSpace, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Optuna parameters and distributions of one trial's configuration."""
    optuna = _optuna()
    dists = optuna.distributions
    params: dict[str, Any] = {}
    distributions: dict[str, Any] = {}
    for name, param in space.params.items():
        if name not in config:
            continue
        value = config[name]
        if isinstance(param, Categorical):
            params[name] = _choice(value)
            distributions[name] = dists.CategoricalDistribution([_choice(c) for c in param.choices])
        elif isinstance(param, Int):
            # an initial configuration may lie outside the range: widen it for this trial rather than drop it
            params[name] = int(value)
            distributions[name] = dists.IntDistribution(min(param.low, int(value)), max(param.high, int(value)),
                                                        log=param.log)
        elif isinstance(param, Float):
            params[name] = float(value)
            distributions[name] = dists.FloatDistribution(min(param.low, float(value)),
                                                          max(param.high, float(value)), log=param.log)
    return params, distributions


def optuna_state(status: str) -> Any:
    """Our trial status as an Optuna trial state."""
    TrialState = _optuna().trial.TrialState
    if status == COMPLETED:
        return TrialState.COMPLETE
    if status in (STOPPED, PAUSED):
        return TrialState.PRUNED
    if status in FAILURE_STATUSES:
        return TrialState.FAIL
    return TrialState.RUNNING


def frozen_trial(history: SweepHistory, trial: ExportedTrial) -> Any:
    """One trial as an Optuna ``FrozenTrial`` (``optuna.trial.create_trial``)."""
    optuna = _optuna()
    state = optuna_state(trial.status)
    value = trial.value
    if state == optuna.trial.TrialState.COMPLETE and value is None:  # completed without a finite metric
        state = optuna.trial.TrialState.FAIL
    if state in (optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING):
        value = None
    params, distributions = distributions_of(history.space, trial.config)
    user_attrs = {"trial_id": trial.trial_id, "status": trial.status, "epochs": trial.epochs}
    if trial.seed is not None:
        user_attrs["seed"] = trial.seed
    if trial.error:
        user_attrs["error"] = str(trial.error)[-1000:]
    frozen = optuna.trial.create_trial(state=state, value=value, params=params, distributions=distributions,
                                       user_attrs=user_attrs, intermediate_values=dict(sorted(trial.curve.items())))
    frozen.datetime_start = history.started_at + datetime.timedelta(seconds=trial.started)
    if state.is_finished():
        ended = trial.ended if trial.ended is not None else trial.started
        frozen.datetime_complete = history.started_at + datetime.timedelta(seconds=max(ended, trial.started))
    return frozen


def open_storage(storage: str) -> Any:
    """An Optuna storage: a database URL (``sqlite:///optuna.db``) as is, anything else as a journal file."""
    optuna = _optuna()
    if "://" in storage:
        return storage
    journal = getattr(optuna.storages, "journal", None)
    backend = getattr(journal, "JournalFileBackend", None) if journal is not None else None
    if backend is None:  # optuna < 4
        backend = optuna.storages.JournalFileStorage
    return optuna.storages.JournalStorage(backend(str(storage)))


def default_study_name(sweep_dir: str | Path) -> str:
    """The study's name: the sweep folder and its parent (Hydra's ``<date>/<time>``), e.g. ``2026-11-29/20-21-00``."""
    path = Path(sweep_dir).resolve()
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def fresh_study(storage: str, name: str, sweep_dir: str | Path, mode: str, metric: str,
                attrs: dict[str, Any] | None = None) -> Any:
    """An empty study ``name`` in ``storage`` for the sweep in ``sweep_dir``; an earlier export of the same sweep
    is replaced, any other study of that name is left alone (:class:`ExportError`)."""
    optuna = _optuna()
    where = str(Path(sweep_dir).resolve())
    backend = open_storage(storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if name in optuna.get_all_study_names(backend):
        existing = optuna.load_study(study_name=name, storage=backend)
        if existing.user_attrs.get(SWEEP_DIR_ATTR) != where:
            raise ExportError(f"study {name!r}: {storage} already holds a study of that name that was not "
                              f"exported from {where}; choose another study name (export_optuna --study-name)")
        optuna.delete_study(study_name=name, storage=backend)
    # a random sampler: trials are only recorded here, and ask() stays cheap however many there are
    study = optuna.create_study(study_name=name, storage=backend, direction="maximize" if mode == "max" else "minimize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.set_user_attr(SWEEP_DIR_ATTR, where)
    for key, value in (attrs or {}).items():
        study.set_user_attr(key, value)
    with warnings.catch_warnings():  # set_metric_names is experimental in optuna 3.x
        warnings.simplefilter("ignore")
        study.set_metric_names([metric])
    return study


def export(sweep_dir: str | Path, storage: str, study_name: str | None = None) -> Any:
    """Write the sweep in ``sweep_dir`` into ``storage`` as one study (replacing this sweep's earlier export);
    returns the ``optuna.Study``."""
    history = read_sweep(sweep_dir)
    if "://" not in storage and Path(storage).resolve() == (Path(sweep_dir) / JOURNAL_NAME).resolve():
        raise ExportError(f"--storage {storage} is the sweep's own journal: give another file, e.g. optuna.log")
    attrs = {k: history.fingerprint[k] for k in ("searcher", "scheduler", "seed") if k in history.fingerprint}
    study = fresh_study(storage, study_name or default_study_name(sweep_dir), sweep_dir, history.mode,
                        history.metric, attrs)
    study.add_trials([frozen_trial(history, trial) for trial in history.trials])
    return study


class LiveOptunaExport(TunerCallback):
    """``hpo.optuna_storage``: keeps a study up to date while the sweep runs, through Optuna's ask-and-tell API.

    A trial appears (RUNNING) at its first result, reports each new epoch's metric as an intermediate
    value, and is told its state and value when it ends. The study is created (or this sweep's earlier
    one replaced) before any job starts; a resumed sweep replays its results into a fresh study. A storage
    that fails later does not stop the sweep: a warning is logged and the study is no longer updated.
    """

    def __init__(self, storage: str, sweep_dir: str | Path, space: SearchSpace, mode: str, metric: str,
                 study_name: str | None = None, attrs: dict[str, Any] | None = None) -> None:
        self.storage = storage
        self.space = space
        try:
            if "://" not in storage and Path(storage).resolve() == (Path(sweep_dir) / JOURNAL_NAME).resolve():
                raise ExportError("that is the sweep's own journal: give another file, e.g. optuna.log")
            self.study = fresh_study(storage, study_name or default_study_name(sweep_dir), sweep_dir, mode, metric,
                                     attrs)
        except ExportError as error:
            raise ExportError(f"hpo.optuna_storage={storage!r}: {error}") from None
        self._trials: dict[int, Any] = {}  # our trial id -> optuna.Trial
        self._added = 0  # trials added to the (fresh) study: the next one's number
        self._reported: dict[int, set[int]] = {}
        self._broken = False

    def _guard(self, action: Any, *args: Any) -> None:
        if self._broken:
            return
        try:
            action(*args)
        except Exception as error:  # the sweep matters more than its live view
            self._broken = True
            log.warning("hpo.optuna_storage=%s: updating the study failed, no more updates (%s); export the sweep "
                        "afterwards with python -m hydra_hpo.export_optuna", self.storage, one_line(error))

    def _trial(self, record: TrialRecord, steps: dict[int, float] | None = None) -> Any:
        """The trial's ``optuna.Trial``; a trial seen for the first time is added whole (parameters, attributes,
        the ``steps`` known so far) in one storage write: ``study.ask`` takes ten or more."""
        trial = self._trials.get(record.trial_id)
        if trial is None:
            optuna = _optuna()
            params, distributions = distributions_of(self.space, record.config)
            self.study.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState.RUNNING, params=params, distributions=distributions,
                user_attrs={"trial_id": record.trial_id, "seed": record.seed}, intermediate_values=dict(steps or {})))
            number = self._added
            self._added += 1
            running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            trial_id = next(t._trial_id for t in running if t.number == number)
            trial = optuna.trial.Trial(self.study, trial_id)
            self._trials[record.trial_id] = trial
            self._reported[record.trial_id] = set(steps or {})
        return trial

    def on_result(self, result: JobResult, record: TrialRecord, tuner: Tuner) -> None:
        self._guard(self._report, result, record)

    def _report(self, result: JobResult, record: TrialRecord) -> None:
        steps = {epoch: _number(value) for epoch, value in enumerate(result.curve or [], start=1)
                 if epoch <= result.job.resource}
        if result.ok:
            steps[result.job.resource] = float(result.value)
        steps = {epoch: value for epoch, value in steps.items() if value is not None}
        if record.trial_id not in self._trials:
            self._trial(record, steps)
            return
        trial, reported = self._trials[record.trial_id], self._reported[record.trial_id]
        for epoch in sorted(set(steps) - reported):
            trial.report(steps[epoch], epoch)
            reported.add(epoch)

    def on_trial_end(self, record: TrialRecord, tuner: Tuner) -> None:
        self._guard(self._tell, record)

    def _tell(self, record: TrialRecord) -> None:
        trial = self._trial(record)
        state = optuna_state(record.status)
        TrialState = _optuna().trial.TrialState
        value = _number(record.value)
        if state == TrialState.COMPLETE and value is None:
            state = TrialState.FAIL
        trial.set_user_attr("status", record.status)
        trial.set_user_attr("epochs", record.resource)
        if record.failed and record.error:
            trial.set_user_attr("error", str(record.error)[-1000:])
        if state == TrialState.PRUNED and not self._reported[record.trial_id] and value is not None:
            trial.report(value, record.resource)  # a pruned trial's value is its last intermediate value
        self.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)


def main(argv: list[str] | None = None) -> None:
    """The ``python -m hydra_hpo.export_optuna`` entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m hydra_hpo.export_optuna",
        description="Write a hydra-hpo sweep (finished or running) into an Optuna storage for optuna-dashboard.")
    parser.add_argument("sweep_dir", help="the sweep directory (hydra.sweep.dir), which holds journal.jsonl")
    parser.add_argument("--storage", required=True,
                        help="an Optuna storage URL (sqlite:///optuna.db) or a journal file (optuna.log)")
    parser.add_argument("--study-name", default=None,
                        help="the study's name (default: the sweep folder and its parent, e.g. 2026-11-29/20-21-00)")
    args = parser.parse_args(argv)
    with exit_on_user_error():
        study = export(args.sweep_dir, args.storage, args.study_name)
        states: dict[str, int] = {}
        for trial in study.trials:
            states[trial.state.name] = states.get(trial.state.name, 0) + 1
        counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(states.items()))
        print(f"Exported {len(study.trials)} trials ({counts}) to study '{study.study_name}' in {args.storage}")
        print(f"View it: optuna-dashboard {args.storage}")


if __name__ == "__main__":
    main()
