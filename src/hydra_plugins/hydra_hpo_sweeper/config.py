# No `from __future__ import annotations` here: Hydra's plugin discovery fails on it.
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class HPOSweeperConf:
    """``hydra/sweeper=hpo``. The algorithm's settings live in the ``hpo`` config group of the job
    config and the search space in ``search_space``; these name those two nodes."""

    _target_: str = "hydra_plugins.hydra_hpo_sweeper.hpo_sweeper.HPOSweeper"
    hpo_key: str = "hpo"
    search_space_key: str = "search_space"


ConfigStore.instance().store(group="hydra/sweeper", name="hpo", node=HPOSweeperConf, provider="hydra-hpo")
