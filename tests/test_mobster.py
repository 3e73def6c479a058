"""MOBSTER's model: every rung's results with the resource as an input, EI at the highest rung with enough
results, pending trials as the worst loss there; and the model-based GP searchers beat random search."""

from __future__ import annotations

import numpy as np

from hydra_hpo.searchers import MobsterSearcher, build_searcher
from hydra_hpo.space import Float, SearchSpace

SPACE = SearchSpace([Float("x", 0.0, 1.0), Float("y", 0.0, 1.0)])


def test_model_sees_every_rung_with_log_resource_and_acquires_at_the_highest_full_rung() -> None:
    searcher = MobsterSearcher(SPACE, seed=0, n_startup=4)
    assert searcher._training_data() is None  # random start-up
    for trial_id in range(8):
        searcher.ask(trial_id)
        x = searcher.configs[trial_id]["x"]
        for resource in ([1, 3, 9] if trial_id < 4 else [1]):
            searcher.observe(trial_id, resource, x + 1.0 / resource)
    searcher.ask(8)  # pending
    x, y, best, extra = searcher._training_data()
    assert len(y) == 8 + 4 + 4 + 1  # every result at every rung, and the pending trial
    # the resource column is log r scaled between the smallest and the largest resource seen
    assert sorted(set(np.round(x[:-1, -1], 6))) == [0.0, 0.5, 1.0]
    assert extra.tolist() == [1.0]  # rung 9 has 4 results: the highest with n_startup
    at_9 = [searcher.configs[t]["x"] + 1 / 9 for t in range(4)]
    assert best == min(at_9)
    assert x[-1, -1] == 1.0 and y[-1] == max(at_9)  # the pending trial: the worst loss at r_acq


def test_gp_and_mobster_find_better_points_than_random_search() -> None:
    def loss(config: dict) -> float:
        return (config["x"] - 0.3) ** 2 + (config["y"] - 0.7) ** 2

    def best_after(name: str, seed: int, n: int = 30) -> float:
        searcher = build_searcher(name, SPACE, seed=seed)
        values = []
        for trial_id in range(n):
            searcher.ask(trial_id)
            values.append(loss(searcher.configs[trial_id]))
            searcher.observe(trial_id, 1, values[-1])
        return min(values)

    random_best = np.mean([best_after("random", seed) for seed in range(4)])
    for name in ("gp", "mobster"):
        assert np.mean([best_after(name, seed) for seed in range(4)]) < 0.1 * random_best, name
