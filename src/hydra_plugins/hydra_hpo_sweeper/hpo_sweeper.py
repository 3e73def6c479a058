"""The Hydra sweeper plugin; the implementation is imported lazily (Hydra scans this package at start-up)."""

from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class HPOSweeper(Sweeper):
    """Samples configurations and schedules Lightning training runs through the configured launcher."""

    def __init__(self, hpo_key: str = "hpo", search_space_key: str = "search_space") -> None:
        from ._impl import HPOSweeperImpl

        self.sweeper = HPOSweeperImpl(hpo_key=hpo_key, search_space_key=search_space_key)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Optional[Any]:
        return self.sweeper.sweep(arguments)
