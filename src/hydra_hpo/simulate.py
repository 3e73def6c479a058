"""Replay a sweep on a recorded table with a simulated clock.

Command line (a Hydra app over the repository's ``conf/``, config ``simulate.yaml``)::

    python -m hydra_hpo.simulate hpo=asha search_space=mlp table=benchmarks/tables/mlp_digits.jsonl \
        n_workers=4 budget_seconds=600

Python: :func:`simulate` (no Hydra needed). Both build the searcher and scheduler exactly as the
sweeper does and run the same :class:`~hydra_hpo.tuner.Tuner`, with a
:class:`~hydra_hpo.executors.simulator.SimulatedExecutor` instead of a Hydra launcher.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from hydra_hpo.executors.simulator import SimulatedExecutor
from hydra_hpo.journal import JOURNAL_NAME, Journal, JournalError
from hydra_hpo.results import write_summary
from hydra_hpo.build import build_tuner
from hydra_hpo.errors import SettingsError, exit_on_user_error
from hydra_hpo.settings import HPOSettings
from hydra_hpo.space import SearchSpace, SearchSpaceError
from hydra_hpo.space_structured import space_from_structured
from hydra_hpo.table import Table, TableError
from hydra_hpo.tuner import SweepOutcome

log = logging.getLogger(__name__)

CONF_DIR_ENV = "HYDRA_HPO_CONF_DIR"
METRIC = "validation_error"
# With a time or epoch budget and no trial budget, the budget alone ends the sweep.
UNBOUNDED_TRIALS = 10**9
# Seconds a job (segment) costs besides its epochs: the median CPU seconds a warm joblib worker spent per job
# outside its epochs in benchmarks/segment_overhead.py (digits MLP, 2026-11-29), CPU seconds as the table's
# elapsed are. conf/simulate.yaml and benchmarks/compare.py use it.
DEFAULT_JOB_OVERHEAD_SECONDS = 0.43
DEFAULT_CONTINUE_OVERHEAD_SECONDS = 0.05  # benchmarks/segment_overhead.py hpo.type=stopping: 0.046 s (joblib)


def conf_dir() -> Path:
    """The config directory: ``$HYDRA_HPO_CONF_DIR``, else the repository's ``conf/`` (editable install)."""
    if os.environ.get(CONF_DIR_ENV):
        return Path(os.environ[CONF_DIR_ENV]).resolve()
    return Path(__file__).resolve().parents[2] / "conf"


def simulate(
    hpo: Mapping[str, Any],
    space: SearchSpace,
    table: Table,
    n_workers: int | None = None,
    seed: int | None = None,
    budget_seconds: float | None = None,
    budget_epochs: int | None = None,
    n_trials: int | None = None,
    output_dir: str | os.PathLike | None = None,
    plots: bool = False,
    initial_config: Mapping[str, Any] | None = None,
    job_overhead_seconds: float = 0.0,
    continue_overhead_seconds: float = 0.0,
) -> SweepOutcome:
    """Run the sweep ``hpo`` (the ``hpo`` config group as a plain mapping) on ``table``.

    Arguments other than ``hpo``, ``space`` and ``table`` override ``hpo``'s settings when given.
    ``r_max`` defaults to the table's number of epochs. With ``output_dir`` the journal (not fsynced),
    trials.csv, optimization_results.yaml and, with ``plots``, incumbent.png and curves.png are written
    there; all times in them are simulated seconds. ``job_overhead_seconds`` is charged on every job
    (segment) before its first epoch (the command line defaults to ``DEFAULT_JOB_OVERHEAD_SECONDS``); with
    ``hpo.keep_alive`` (auto: on) a segment that continues its trial's waiting job process pays
    ``continue_overhead_seconds`` instead (``DEFAULT_CONTINUE_OVERHEAD_SECONDS`` on the command line).
    """
    overrides = {"n_workers": n_workers, "seed": seed, "budget_seconds": budget_seconds,
                 "budget_epochs": budget_epochs, "n_trials": n_trials}
    settings = HPOSettings.from_mapping({**dict(hpo), **{k: v for k, v in overrides.items() if v is not None}})
    if settings.mode != "min":
        raise SettingsError(f"hpo.mode={settings.mode!r}: a table records validation errors, use hpo.mode=min")
    r_max = settings.scheduler_options.get("r_max")
    if r_max is not None and r_max > table.epochs:
        raise SettingsError(f"hpo.r_max={r_max} exceeds the {table.epochs} epochs recorded in {table.where(0)}")
    initial = None
    if settings.initial_config:
        if initial_config is None:
            raise SettingsError("hpo.initial_config=true needs an initial configuration (initial_config=...)")
        initial = space.select(initial_config)

    executor = SimulatedExecutor(table, space, settings.n_workers, metric=METRIC,
                                 job_overhead_seconds=job_overhead_seconds, keep_alive=settings.keep_alive is not False,
                                 continue_overhead_seconds=continue_overhead_seconds)
    journal = None
    if output_dir is not None:
        journal = Journal(Path(output_dir) / JOURNAL_NAME, durable=False)
        if journal.exists():
            raise JournalError(f"{output_dir} already holds a sweep journal: choose another output_dir")
    fingerprint = {**settings.fingerprint(), "search_space": space.to_structured(), "metric": METRIC,
                   "table": str(table.path) if table.path else None, "simulated": True}
    tuner = build_tuner(settings, space, table.epochs, executor, initial_config=initial, journal=journal,
                        fingerprint=fingerprint)
    outcome = tuner.run()
    outcome.extra.update({"clock": "simulated", "table": str(table.path) if table.path else None,
                          "searcher": settings.searcher, "scheduler": settings.scheduler,
                          "job_overhead_seconds": float(job_overhead_seconds),
                          "continue_overhead_seconds": float(continue_overhead_seconds),
                          "continued_jobs": executor.n_continued})
    if outcome.best is not None:  # the recorded row that stood in for the best configuration
        outcome.extra["best_table_row"] = table.lookup_index(outcome.trials[outcome.best.trial_id].config, space)
    if output_dir is not None:
        write_summary(outcome, output_dir, METRIC, settings.mode, plots=plots)
    # where and when each job ran, and the per-epoch best; for tests and benchmarks, added after the summary
    # files are written
    outcome.extra["assignments"] = executor.assignments
    outcome.extra["anytime_trace"] = executor.anytime_trace()
    return outcome


def summary_text(outcome: SweepOutcome) -> str:
    """A few lines describing a simulated sweep's result."""
    lines = [
        f"{len(outcome.trials)} trials, {outcome.epochs_total} epochs, {outcome.wallclock:.1f} simulated seconds, "
        f"utilization {outcome.utilization:.2f} of {outcome.n_workers} workers ({outcome.stop_reason})",
    ]
    if outcome.best is not None:
        best = outcome.best
        lines.append(f"best {METRIC}={best.value:.4f} (trial {best.trial_id}, {best.resource} epochs, "
                     f"found at {best.clock:.1f} s): {outcome.trials[best.trial_id].config}")
    return "\n".join(lines)


def compose(overrides: list[str] | None = None, config_name: str = "simulate") -> dict[str, Any]:
    """The composed ``simulate`` config as a plain dict (Hydra's compose API; for benchmarks)."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        config = hydra_compose(config_name=config_name, overrides=list(overrides or []))
    return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]


def resolve_table_path(path: str | os.PathLike) -> Path:
    """``path`` as given (relative to the working directory), else relative to the repository root."""
    candidate = Path(path)
    if candidate.is_file() or candidate.is_absolute():
        return candidate
    in_repo = conf_dir().parent / candidate
    return in_repo if in_repo.is_file() else candidate


def run_from_config(config: Mapping[str, Any], output_dir: str | os.PathLike | None) -> SweepOutcome:
    """Run the composed ``simulate`` config (a plain dict) and print its summary."""
    path = resolve_table_path(config["table"])
    if not path.is_file():
        raise TableError(f"table={config['table']}: no such file (a relative path is looked up in the working "
                         "directory, then in the repository); record one with benchmarks/record_table.py")
    table = Table.load(path)
    space = space_from_structured(config.get("search_space") or {})
    if len(space) == 0:
        raise SearchSpaceError("the search space is empty: choose one with search_space=<name>")
    n_trials = config.get("budget_trials")
    if n_trials is None and (config.get("budget_seconds") is not None or config.get("budget_epochs") is not None):
        n_trials = UNBOUNDED_TRIALS
    outcome = simulate(
        config["hpo"], space, table, n_workers=config.get("n_workers"), seed=config.get("seed"),
        budget_seconds=config.get("budget_seconds"), budget_epochs=config.get("budget_epochs"), n_trials=n_trials,
        output_dir=config.get("output_dir") or output_dir, plots=bool(config.get("plots", True)),
        initial_config=config.get("initial_config"),
        job_overhead_seconds=float(config.get("job_overhead_seconds") or 0.0),
        continue_overhead_seconds=float(config.get("continue_overhead_seconds") or 0.0),
    )
    print(summary_text(outcome))
    if output_dir is not None or config.get("output_dir"):
        print(f"Wrote journal, trials.csv and optimization_results.yaml to {config.get('output_dir') or output_dir}")
    return outcome


def main() -> None:
    """The ``python -m hydra_hpo.simulate`` entry point."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig, OmegaConf

    @hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="simulate")
    def app(config: DictConfig) -> float | None:
        plain = OmegaConf.to_container(config, resolve=True)
        # a mistake in the input is one line (Error: ...), not a traceback; inside a multirun, Hydra reports it per job
        with exit_on_user_error(enabled=HydraConfig.get().mode == RunMode.RUN):
            outcome = run_from_config(plain, HydraConfig.get().runtime.output_dir)  # type: ignore[arg-type]
        return outcome.best.value if outcome.best else None

    app()


if __name__ == "__main__":
    main()
