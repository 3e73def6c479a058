"""Peer optimizers on the same table and the same simulated clock as ours, for benchmarks/compare.py.

Every peer sees the same thing our simulator shows our tuner: a configuration is looked up in the table with
the same rule (exact key, else nearest neighbour in the search space's unit-cube encoding), an epoch takes
the time the table recorded for it, and a promoted or continued trial pays only its extra epochs. Each
returns an incumbent trace ``[(simulated seconds, best error so far), ...]`` up to the budget, and the
number of trials started. The peers report after every epoch, so every epoch's validation error can become
their incumbent. compare.py measures ours the same way by default (``--incumbent epoch``: the best error after
any epoch that has ended), so neither side is favoured; only ``--incumbent job`` (our tuner's own incumbent,
which hears of a job's epochs when the job ends) gives the peers a slight edge.

Per-job overhead (``job_overhead``, simulated seconds) is charged where a job starts, as our simulator
charges it on every segment: a peer's trial runs as one job that reports every epoch, so an Optuna trial
pays it once, before its first epoch, and a Syne Tune trial pays it on every start or resume (Syne Tune's own
``SimulatorConfig.delay_start``; its stopping-type ASHA and BOHB never resume).

- Optuna: TPE + HyperbandPruner, Random + SuccessiveHalvingPruner, and at full fidelity (no pruner) the
  GP sampler and TPE, through ask/tell with an event loop of ``n_workers`` simulated workers that report
  every epoch (``trial.report`` / ``trial.should_prune``); every sampler with Optuna's defaults and our seed.
  ``run_optuna_mo``: NSGA-II and multi-objective TPE on several objectives, each trial one full-fidelity job
  told its objectives when it ends.
- Syne Tune: ASHA and BOHB with its simulator backend and a user blackbox backed by the table.
"""

from __future__ import annotations

import contextlib
import heapq
import math
from typing import Any, Callable, Iterator

import numpy as np

from hydra_hpo.space import Categorical, Float, Int, SearchSpace
from hydra_hpo.table import Table

Trace = list[tuple[float, float]]


class _Incumbent:
    def __init__(self) -> None:
        self.best = math.inf
        self.trace: Trace = []

    def observe(self, time: float, value: float) -> None:
        if math.isfinite(value) and value < self.best:
            self.best = value
        if math.isfinite(self.best):
            self.trace.append((time, self.best))


# ---------------------------------------------------------------------------------------------- Optuna
OPTUNA_NAMES = ("optuna_tpe_hyperband", "optuna_random_sh", "optuna_gp", "optuna_tpe")


def optuna_available() -> str | None:
    """``None`` when Optuna can be imported, else why not."""
    try:
        import optuna  # noqa: F401
    except ImportError as error:
        return f"optuna is not installed ({error}); pip install -e '.[bench]'"
    return None


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one intra-op thread while inside (restored after). Optuna's GP sampler runs many tiny torch
    operations; with torch's default threads each one hands work to other threads, which on a loaded 2-core
    machine made one mlp_digits seed (40 simulated s) take 200 s instead of 11 s. The simulated clock and
    the decisions do not depend on it (same trials and incumbent either way in that run)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def optuna_distributions(space: SearchSpace) -> dict[str, Any]:
    """The search space as Optuna distributions (same bounds, log scales and choices)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    distributions = {}
    for name, p in space.items():
        if isinstance(p, Float):
            distributions[name] = FloatDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, Int):
            distributions[name] = IntDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, Categorical):
            distributions[name] = CategoricalDistribution(list(p.choices))
    return distributions


def optuna_setups(epochs: int) -> dict[str, Callable[[int], tuple[Any, Any]]]:
    """Name -> ``seed -> (sampler, pruner)``; pruner settings mirror ours (conf/hpo). The full-fidelity rows
    (``optuna_gp``, ``optuna_tpe``) have no pruner: every trial trains all ``epochs``."""
    import optuna

    return {
        "optuna_gp": lambda seed: (optuna.samplers.GPSampler(seed=seed), optuna.pruners.NopPruner()),
        "optuna_tpe": lambda seed: (optuna.samplers.TPESampler(seed=seed), optuna.pruners.NopPruner()),
        "optuna_tpe_hyperband": lambda seed: (
            optuna.samplers.TPESampler(seed=seed),
            optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3),
        ),
        "optuna_random_sh": lambda seed: (
            optuna.samplers.RandomSampler(seed=seed),
            optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        ),
    }


def run_optuna(
    name: str, table: Table, space: SearchSpace, seed: int, n_workers: int, budget: float,
    job_overhead: float = 0.0,
) -> tuple[Trace, int]:
    """One Optuna study on ``n_workers`` simulated workers until ``budget`` simulated seconds; the
    incumbent trace and the number of trials started. Every trial (one job) starts ``job_overhead``
    seconds before its first epoch."""
    with one_torch_thread():
        return _run_optuna(name, table, space, seed, n_workers, budget, job_overhead)


def _run_optuna(name: str, table: Table, space: SearchSpace, seed: int, n_workers: int, budget: float,
                job_overhead: float) -> tuple[Trace, int]:
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler, pruner = optuna_setups(table.epochs)[name](seed)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
    distributions = optuna_distributions(space)
    incumbent = _Incumbent()
    events: list[tuple[float, int, Any, int, int]] = []  # (finish of an epoch, trial number, trial, row, epoch)

    def start(now: float) -> None:
        trial = study.ask(distributions)
        row = table.lookup_index(trial.params, space)
        heapq.heappush(events, (now + job_overhead + float(table.elapsed[row, 0]), trial.number, trial, row, 1))

    for _ in range(n_workers):
        start(0.0)
    while events:
        now, _, trial, row, epoch = heapq.heappop(events)
        if now > budget:
            break
        value = float(table.val_error[row, epoch - 1])
        incumbent.observe(now, value)
        if not math.isfinite(value):
            study.tell(trial, state=TrialState.FAIL)
        elif epoch == table.epochs:
            trial.report(value, epoch)
            study.tell(trial, value)
        else:
            trial.report(value, epoch)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
            else:
                step = float(table.elapsed[row, epoch] - table.elapsed[row, epoch - 1])
                heapq.heappush(events, (now + step, trial.number, trial, row, epoch + 1))
                continue
        start(now)
    return incumbent.trace, len(study.trials)


MO_OPTUNA_NAMES = ("optuna-nsga2", "optuna-motpe")


def optuna_mo_sampler(name: str, seed: int) -> Any:
    """NSGA-II or multi-objective TPE, with Optuna's defaults and our seed."""
    import optuna

    if name == "optuna-nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "optuna-motpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ValueError(f"{name!r}: choose from {', '.join(MO_OPTUNA_NAMES)}")


def run_optuna_mo(
    name: str, table: Table, space: SearchSpace, seed: int, n_workers: int, budget: float,
    directions: dict[str, str], metrics: Callable[[int, int], dict[str, float]], job_overhead: float = 0.0,
) -> list[tuple[float, dict[str, float]]]:
    """One multi-objective Optuna study on ``n_workers`` simulated workers until ``budget`` simulated seconds.

    Each trial is one job at full fidelity: it starts ``job_overhead`` seconds before its first epoch, trains
    every epoch the table recorded, and when it ends its objectives (``metrics(row, epochs)``, named as in
    ``directions``: ``{name: "min" | "max"}``) are told to the study. Returns ``(end of the job, metrics)`` of
    every job that ended within the budget; a job whose last validation error is not finite fails (told as
    FAIL, not returned), as a failed job of ours carries no result."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["minimize" if d == "min" else "maximize" for d in directions.values()],
        sampler=optuna_mo_sampler(name, seed),
    )
    distributions = optuna_distributions(space)
    epochs = table.epochs
    results: list[tuple[float, dict[str, float]]] = []
    events: list[tuple[float, int, Any, int]] = []  # (end of a job, trial number, trial, row)

    def start(now: float) -> None:
        trial = study.ask(distributions)
        row = table.lookup_index(trial.params, space)
        heapq.heappush(events, (now + job_overhead + float(table.elapsed[row, -1]), trial.number, trial, row))

    for _ in range(n_workers):
        start(0.0)
    while events:
        now, _, trial, row = heapq.heappop(events)
        if now > budget:
            break
        values = metrics(row, epochs)
        if not all(math.isfinite(values[n]) for n in directions):
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, [values[n] for n in directions])
            results.append((now, values))
        start(now)
    return results


# ---------------------------------------------------------------------------------------------- Syne Tune
SYNE_TUNE_NAMES = ("synetune_asha", "synetune_bohb")
SYNE_TUNE_SLEEP = 0.01  # simulated seconds a busy tuner waits before looking again


def syne_tune_available() -> str | None:
    """``None`` when Syne Tune's simulator backend can be imported, else why not."""
    try:
        from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend  # noqa: F401
        from syne_tune.optimizer.baselines import ASHA, BOHB  # noqa: F401
    except Exception as error:  # ImportError, or a dependency failing at import time
        return f"syne_tune cannot be imported ({type(error).__name__}: {error}); pip install syne-tune huggingface_hub"
    return None


def syne_tune_config_space(space: SearchSpace) -> dict[str, Any]:
    """The search space in Syne Tune's domains (same bounds, log scales and choices)."""
    from syne_tune.config_space import choice, lograndint, loguniform, randint, uniform

    config_space: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Float):
            config_space[name] = loguniform(p.low, p.high) if p.log else uniform(p.low, p.high)
        elif isinstance(p, Int):
            config_space[name] = lograndint(p.low, p.high) if p.log else randint(p.low, p.high)
        elif isinstance(p, Categorical):
            config_space[name] = choice(list(p.choices))
    return config_space


def _table_blackbox(table: Table, space: SearchSpace):
    """A Syne Tune blackbox answering from the table with our lookup rule (all epochs at once)."""
    from syne_tune.blackbox_repository.blackbox import Blackbox
    from syne_tune.config_space import randint

    class TableBlackbox(Blackbox):
        def __init__(self) -> None:
            super().__init__(syne_tune_config_space(space), {"epoch": randint(1, table.epochs)},
                             ["val_error", "elapsed"])

        @property
        def fidelity_values(self) -> np.ndarray:
            return np.arange(1, table.epochs + 1)

        def _objective_function(self, configuration, fidelity=None, seed=None):
            row = table.lookup_index(configuration, space)
            values = np.stack([table.val_error[row], table.elapsed[row]], axis=1)
            if fidelity is None:
                return values
            epoch = int(next(iter(fidelity.values())))
            return dict(zip(self.objectives_names, values[epoch - 1]))

    return TableBlackbox()


def run_syne_tune(
    name: str, table: Table, space: SearchSpace, seed: int, n_workers: int, budget: float,
    job_overhead: float = 0.0,
) -> tuple[Trace, int]:
    """Syne Tune's ASHA (grace period 1, reduction factor 3, as our asha) or BOHB (1 and 3, as our
    hyperband) on its simulator backend with the table as a user blackbox; every trial start (or resume)
    is delayed by ``job_overhead`` seconds, on a worker it holds."""
    import contextlib
    import io
    import logging
    import os
    import random
    import tempfile

    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_backend import SimulatorConfig
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
    from syne_tune.constants import ST_TUNER_TIME
    from syne_tune.optimizer.baselines import ASHA, BOHB
    from syne_tune.tuner_callback import TunerCallback

    logging.getLogger("syne_tune").setLevel(logging.ERROR)
    # Parts of Syne Tune draw from the global generators; seeding them makes reruns repeatable (a script:
    # these generators are ours to set)
    random.seed(seed)
    np.random.seed(seed)
    incumbent = _Incumbent()
    started: set[int] = set()

    class Recorder(TunerCallback):
        def on_trial_result(self, trial, status, result, decision) -> None:
            started.add(trial.trial_id)
            when = float(result[ST_TUNER_TIME])
            if when <= budget:
                incumbent.observe(when, float(result["val_error"]))

    config_space = syne_tune_config_space(space)
    common = dict(config_space=config_space, metric="val_error", time_attr="epoch", max_t=table.epochs,
                  do_minimize=True, random_seed=seed)
    scheduler = (ASHA(**common, grace_period=1, reduction_factor=3) if name == "synetune_asha"
                 else BOHB(**common, grace_period=1, reduction_factor=3))
    # No simulated latencies but the job start-up that ours and the Optuna loop pay too (delay_start: from the
    # start command to the job's first epoch), and when every worker is busy the tuner's "sleep" advances the
    # simulated clock by only SYNE_TUNE_SLEEP (the default is 5 s a time: workers would idle for seconds after
    # every job).
    delays = SimulatorConfig(delay_on_trial_result=0.0, delay_complete_after_final_report=0.0,
                             delay_complete_after_stop=0.0, delay_start=float(job_overhead), delay_stop=0.0)
    backend = UserBlackboxBackend(
        blackbox=_table_blackbox(table, space), elapsed_time_attr="elapsed", seed=0,
        simulator_config=delays, tuner_sleep_time=SYNE_TUNE_SLEEP,
    )
    with tempfile.TemporaryDirectory() as folder:
        previous = os.environ.get("SYNETUNE_FOLDER")
        os.environ["SYNETUNE_FOLDER"] = folder  # Syne Tune writes its experiment files there
        try:
            tuner = Tuner(trial_backend=backend, scheduler=scheduler, n_workers=n_workers, sleep_time=0,
                          stop_criterion=StoppingCriterion(max_wallclock_time=budget),
                          callbacks=[SimulatorCallback(), Recorder()], results_update_interval=1e9,
                          print_update_interval=1e9, save_tuner=False, tuner_name=f"{name}-{seed}")
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                tuner.run()  # it prints a status table every few results
        finally:
            if previous is None:
                os.environ.pop("SYNETUNE_FOLDER", None)
            else:
                os.environ["SYNETUNE_FOLDER"] = previous
    return incumbent.trace, len(started)
