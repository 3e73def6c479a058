"""The sweep's own settings (the ``hpo`` config group), validated before any job starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from numbers import Integral, Real
from typing import Any, Mapping

from hydra_hpo.errors import SettingsError
from hydra_hpo.objectives import parse_objectives

__all__ = ["HPOSettings", "SettingsError", "PROGRESS_MODES"]

PROGRESS_MODES = ("auto", "bar", "log", "off")  # hpo.progress, see hydra_hpo.progress
RANK_BY = ("auto", "best", "last")  # hpo.rank_by, see HPOSettings.rank_value


@dataclass
class HPOSettings:
    """Settings common to every algorithm. Anything else under ``hpo`` goes to the scheduler
    (``r_min``, ``r_max``, ``eta``, ``type``), which rejects what it does not know."""

    searcher: str = "random"
    scheduler: str = "fifo"
    n_trials: int = 10
    n_workers: int = 1
    seed: int = 0
    initial_config: bool = False
    mode: str = "min"
    max_failure_rate: float = 0.5
    max_retries: int = 0
    trial_timeout: float | None = None
    resume: bool = False
    keep_checkpoints: bool = False
    executor: str = "auto"
    keep_alive: bool | str = "auto"      # a job that ends a segment may continue the trial's next one (auto: on)
    rank_by: str = "auto"                # what schedulers rank and searchers learn: best | last epoch (auto: best)
    budget_seconds: float | None = None
    budget_epochs: int | None = None
    resource_key: str = "trainer.max_epochs"
    searcher_options: dict[str, Any] = field(default_factory=dict)
    progress: str = "auto"
    optuna_storage: str | None = None
    gpus_per_trial: int | str = "auto"   # GPUs each job gets (CUDA_VISIBLE_DEVICES); auto: 1 with GPUs, else 0
    trials_per_gpu: int = 1              # jobs that may share one GPU group at once
    cpu_workers: int = 1                 # n_workers=auto when trials use no GPU
    workers_auto: bool = False           # n_workers was auto (set by from_mapping): the GPUs may decide it
    objectives: dict[str, str] | None = None          # {metric: min|max}; None: metric/mode, the one objective
    constraints: dict[str, dict[str, float]] | None = None  # {metric: {min: a, max: b}}
    scheduler_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> "HPOSettings":
        """Build and validate settings from the ``hpo`` config node (a plain mapping)."""
        known = {f.name for f in fields(cls)} - {"scheduler_options", "workers_auto"}
        common = {k: v for k, v in mapping.items() if k in known}
        extra = {k: v for k, v in mapping.items() if k not in known}
        auto = common.get("n_workers", 1) in ("auto", None)  # null: as auto (unset)
        if auto:  # resolved for a CPU sweep now; a GPU sweep sets it from the GPUs (hydra_hpo.devices.plan_gpus)
            common["n_workers"] = common.get("cpu_workers", 1)
        settings = cls(**common)
        settings.workers_auto = auto
        settings.scheduler_options = dict(extra)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise :class:`SettingsError` naming the first invalid ``hpo.<key>`` and its value."""
        def bad(key: str, why: str) -> SettingsError:
            return SettingsError(f"hpo.{key}={getattr(self, key)!r}: {why}")

        def number(key: str, why: str) -> float | None:
            value = getattr(self, key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, Real):
                raise bad(key, why)
            return float(value)

        for key in ("n_trials", "cpu_workers", "n_workers", "trials_per_gpu"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(key, "must be an integer >= 1" + (" or auto" if key == "n_workers" else ""))
        gpus = self.gpus_per_trial
        if gpus != "auto" and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0):
            raise bad("gpus_per_trial", "must be an integer >= 0 or auto (1 with GPUs, else 0)")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise bad("max_retries", "must be an integer >= 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise bad("seed", "must be an integer")
        if self.mode not in ("min", "max"):
            raise bad("mode", "must be 'min' or 'max'")
        for key in ("initial_config", "resume", "keep_checkpoints"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "must be true or false")
        rate = number("max_failure_rate", "must be a number between 0 and 1")
        if rate is None or not 0.0 <= rate <= 1.0:
            raise bad("max_failure_rate", "must be a number between 0 and 1")
        timeout = number("trial_timeout", "must be a positive number of seconds or null")
        if timeout is not None and not timeout > 0:
            raise bad("trial_timeout", "must be a positive number of seconds or null")
        if not (isinstance(self.keep_alive, bool) or self.keep_alive == "auto"):
            raise bad("keep_alive", "must be true, false or auto (on wherever jobs run in their own processes)")
        if self.rank_by not in RANK_BY:
            raise bad("rank_by", f"must be one of {', '.join(RANK_BY)} (best: the best epoch so far, last: the "
                                 "latest epoch)")
        if self.rank_by == "best" and self.scheduler == "pbt":
            raise bad("rank_by", "population based training ranks members by their latest epoch (a member's best "
                                 "may lie before an exploit); use auto or last")
        if self.rank_by == "best" and (self.objectives is not None or self.constraints is not None):
            raise bad("rank_by", "with hpo.objectives or hpo.constraints a result is ranked by its latest epoch's "
                                 "metrics (several metrics have no one best epoch); use auto or last")
        if self.executor not in ("auto", "batch", "async"):
            raise bad("executor", "must be one of auto, batch, async")
        seconds = number("budget_seconds", "must be a positive number of seconds or null")
        if seconds is not None and not seconds > 0:
            raise bad("budget_seconds", "must be a positive number of seconds or null")
        epochs = self.budget_epochs
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, Integral) or epochs < 1):
            raise bad("budget_epochs", "must be an integer >= 1 or null")
        if not isinstance(self.resource_key, str) or not self.resource_key:
            raise bad("resource_key", "must name a config key, e.g. trainer.max_epochs")
        if self.progress not in PROGRESS_MODES:
            raise bad("progress", f"must be one of {', '.join(PROGRESS_MODES)}")
        if self.optuna_storage is not None and (not isinstance(self.optuna_storage, str) or not self.optuna_storage):
            raise bad("optuna_storage", "must be an Optuna storage URL (sqlite:///optuna.db), a journal file "
                                        "(optuna.log) or null")
        parse_objectives(self.objectives, self.constraints, mode=self.mode)
        if not isinstance(self.searcher_options, Mapping):
            raise bad("searcher_options", "must be a mapping of option names to values, e.g. {num_points: 5}")

    @property
    def rank_value(self) -> str:
        """``rank_by`` resolved: ``best`` for one objective with a rung scheduler, ``last`` for population
        based training and for several objectives or constraints."""
        if self.rank_by != "auto":
            return self.rank_by
        several = self.objectives is not None or self.constraints is not None
        return "last" if self.scheduler == "pbt" or several else "best"

    def fingerprint(self) -> dict[str, Any]:
        """What must not change when a sweep is resumed (n_trials and budgets may grow)."""
        keep = ("searcher", "scheduler", "seed", "mode", "initial_config", "searcher_options", "scheduler_options")
        data = asdict(self)
        # only when set, so that journals written before objectives existed still resume
        extra = tuple(k for k in ("objectives", "constraints") if data[k] is not None)
        fingerprint = {k: data[k] for k in keep + extra}
        if self.rank_value != "last":  # journals written before rank_by ranked the last epoch
            fingerprint["rank_by"] = self.rank_value
        return fingerprint
