"""Schedulers: which trial runs next and up to which resource (epochs)."""

from __future__ import annotations

import inspect
from typing import Any

from hydra_hpo.errors import SettingsError
from hydra_hpo.schedulers.asha import ASHAScheduler
from hydra_hpo.schedulers.base import WAIT, Decision, Scheduler
from hydra_hpo.schedulers.fifo import FIFOScheduler
from hydra_hpo.schedulers.hyperband import HyperbandScheduler
from hydra_hpo.schedulers.hypertune import HyperTuneScheduler
from hydra_hpo.schedulers.pbt import PBTScheduler
from hydra_hpo.schedulers.rungs import rung_levels
from hydra_hpo.schedulers.successive_halving import SuccessiveHalvingScheduler
from hydra_hpo.searchers.base import Searcher

SCHEDULERS: dict[str, type[Scheduler]] = {
    "fifo": FIFOScheduler,
    "successive_halving": SuccessiveHalvingScheduler,
    "hyperband": HyperbandScheduler,
    "asha": ASHAScheduler,
    "hypertune": HyperTuneScheduler,
    "pbt": PBTScheduler,
}

# filled in by build_scheduler, never taken from the user's options
_FROM_SWEEP = ("searcher", "n_trials", "max_resource")


def build_scheduler(
    name: str, searcher: Searcher, n_trials: int, max_resource: int, **options: Any
) -> Scheduler:
    """Build the scheduler registered as ``name`` (``hpo.scheduler``).

    Options set to ``None`` count as not given; ``r_max`` defaults to ``max_resource``.
    """
    if name not in SCHEDULERS:
        raise SettingsError(f"hpo.scheduler={name!r}: unknown, choose one of {', '.join(SCHEDULERS)}")
    cls = SCHEDULERS[name]
    params = inspect.signature(cls).parameters
    kwargs = {key: value for key, value in options.items() if value is not None}
    for key in kwargs:
        if key not in params or key in _FROM_SWEEP:
            allowed = [p for p in params if p not in _FROM_SWEEP]
            raise SettingsError(
                f"hpo.{key}={kwargs[key]!r}: not an option of hpo.scheduler={name} "
                f"(options: {', '.join(allowed) or 'none'})"
            )
    if "r_max" in params:
        kwargs.setdefault("r_max", max_resource)
    if "max_resource" in params:
        kwargs["max_resource"] = max_resource
    missing = [
        p.name
        for p in params.values()
        if p.default is inspect.Parameter.empty and p.name not in kwargs and p.name not in _FROM_SWEEP
    ]
    if missing:
        raise SettingsError(f"hpo.{missing[0]}: required by hpo.scheduler={name}, not given")
    return cls(searcher, n_trials, **kwargs)


__all__ = [
    "ASHAScheduler",
    "WAIT",
    "Decision",
    "FIFOScheduler",
    "HyperbandScheduler",
    "HyperTuneScheduler",
    "PBTScheduler",
    "SCHEDULERS",
    "Scheduler",
    "SuccessiveHalvingScheduler",
    "build_scheduler",
    "rung_levels",
]
