"""Searchers decide *what* configuration to try next (ask/tell).

Adding a searcher means adding its class to :data:`SEARCHERS`; the contract tests pick it up.
"""

from __future__ import annotations

import inspect
from typing import Any

from hydra_hpo.errors import SettingsError
from hydra_hpo.searchers.base import Searcher
from hydra_hpo.searchers.gp import GPSearcher
from hydra_hpo.searchers.grid import GridSearcher
from hydra_hpo.searchers.mobster import MobsterSearcher
from hydra_hpo.searchers.random import RandomSearcher
from hydra_hpo.searchers.sobol import SobolSearcher
from hydra_hpo.searchers.tpe import TPESearcher
from hydra_hpo.space import SearchSpace

SEARCHERS: dict[str, type[Searcher]] = {
    "random": RandomSearcher,
    "grid": GridSearcher,
    "gp": GPSearcher,
    "mobster": MobsterSearcher,
    "sobol": SobolSearcher,
    "tpe": TPESearcher,
}

_COMMON_ARGUMENTS = {"self", "space", "seed", "initial_config"}


def searcher_options(name: str) -> list[str]:
    """The options (constructor keywords beyond space, seed and initial_config) of a searcher."""
    parameters = inspect.signature(SEARCHERS[name].__init__).parameters
    return [p for p in parameters if p not in _COMMON_ARGUMENTS]


def build_searcher(
    name: str,
    space: SearchSpace,
    seed: int = 0,
    initial_config: dict[str, Any] | None = None,
    **options: Any,
) -> Searcher:
    """Build the searcher registered as ``name`` (the value of ``hpo.searcher``)."""
    if name not in SEARCHERS:
        raise SettingsError(
            f"hpo.searcher={name!r} is not a known searcher; known: {', '.join(sorted(SEARCHERS))}"
        )
    known = searcher_options(name)
    for option in options:
        if option not in known:
            raise SettingsError(
                f"hpo.searcher {name!r} has no option {option!r}; "
                f"its options: {', '.join(known) or 'none'}"
            )
    return SEARCHERS[name](space, seed=seed, initial_config=initial_config, **options)


__all__ = [
    "SEARCHERS",
    "GPSearcher",
    "GridSearcher",
    "MobsterSearcher",
    "RandomSearcher",
    "Searcher",
    "SobolSearcher",
    "TPESearcher",
    "build_searcher",
    "searcher_options",
]
