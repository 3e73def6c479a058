"""Build a tuner from the ``hpo`` settings: the one place a real sweep and a simulation both go through."""

from __future__ import annotations

from typing import Any

from hydra_hpo.checkpoints import CheckpointStore
from hydra_hpo.executors.base import Executor
from hydra_hpo.journal import Journal
from hydra_hpo.objectives import parse_objectives
from hydra_hpo.resume import ResumeLog
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import build_searcher
from hydra_hpo.settings import HPOSettings
from hydra_hpo.space import SearchSpace
from hydra_hpo.tuner import Tuner, TunerCallback


def build_tuner(
    settings: HPOSettings,
    space: SearchSpace,
    max_resource: int,
    executor: Executor,
    *,
    initial_config: dict[str, Any] | None = None,
    journal: Journal | None = None,
    resume: ResumeLog | None = None,
    fingerprint: dict[str, Any] | None = None,
    callbacks: list[TunerCallback] | None = None,
    checkpoints: CheckpointStore | None = None,
    metric: str = "validation_error",
) -> Tuner:
    """Searcher, scheduler and tuner as ``settings`` describe them, driving ``executor``; ``metric`` is the
    single objective that ``hpo.constraints`` without ``hpo.objectives`` bound."""
    searcher = build_searcher(settings.searcher, space, seed=settings.seed, initial_config=initial_config,
                              **settings.searcher_options)
    scheduler = build_scheduler(settings.scheduler, searcher, settings.n_trials, max_resource,
                                **settings.scheduler_options)
    return Tuner(
        scheduler, executor, searcher=searcher, seed=settings.seed, mode=settings.mode, journal=journal,
        resume=resume,
        fingerprint=fingerprint, max_failure_rate=settings.max_failure_rate, max_retries=settings.max_retries,
        budget_seconds=settings.budget_seconds, budget_epochs=settings.budget_epochs, callbacks=callbacks,
        checkpoints=checkpoints, rank_by=settings.rank_value,
        objectives=parse_objectives(settings.objectives, settings.constraints, metric=metric, mode=settings.mode),
    )
