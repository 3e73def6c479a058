"""MOBSTER's model: every rung's results with the resource as an input, EI at the highest rung with enough
results, pending trials as the worst loss there; the GP searchers' exclusion radius, output warping and random
fraction; and the model-based GP searchers beat random search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fakes import best_found

from hydra_hpo.errors import SettingsError
from hydra_hpo.searchers import GPSearcher, MobsterSearcher, build_searcher
from hydra_hpo.searchers.exclusion import auto_radius, exclusion_radius
from hydra_hpo.searchers.gaussian_process import quantile_normal
from hydra_hpo.space import Categorical, Float, SearchSpace

SPACE = SearchSpace([Float("x", 0.0, 1.0), Float("y", 0.0, 1.0)])


def loss(config: dict) -> float:
    return (config["x"] - 0.3) ** 2 + (config["y"] - 0.7) ** 2


def test_model_sees_every_rung_with_log_resource_and_acquires_at_the_highest_full_rung() -> None:
    searcher = MobsterSearcher(SPACE, seed=0, n_startup=4, output_warping="none")  # the losses as they are
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


def test_quantile_warping_ranks_all_rungs_together_so_a_promoted_trial_improves_with_epochs() -> None:
    # as in ASHA: 12 trials at epoch 1, the best 4 promoted to epoch 3 where every loss is lower than any at
    # epoch 1. Ranked per rung, the worst of the promoted 4 would get a high target at epoch 3 (above most of
    # epoch 1's), telling the GP that more epochs made it worse.
    searcher = MobsterSearcher(SPACE, seed=0, n_startup=4, output_warping="quantile")
    losses = {}
    for trial_id in range(12):
        searcher.ask(trial_id)
        losses[(trial_id, 1)] = 0.5 + 0.01 * trial_id if trial_id != 11 else None  # trial 11 failed
        searcher.observe(trial_id, 1, losses[(trial_id, 1)])
    for trial_id in range(4):
        losses[(trial_id, 3)] = 0.2 + 0.01 * trial_id
        searcher.observe(trial_id, 3, losses[(trial_id, 3)])
    x, y, best, extra = searcher._training_data()
    pooled = np.array([math.inf if v is None else v for v in losses.values()])
    assert np.allclose(np.sort(y), np.sort(quantile_normal(pooled)))
    at_3, at_1 = y[x[:, -1] == 1.0], y[x[:, -1] == 0.0]
    assert len(at_3) == 4 and at_3.max() < at_1.min()
    assert best == at_3.min() and y.max() == quantile_normal(pooled).max()  # the failure ranks last


def test_model_suggestions_keep_the_exclusion_radius_from_every_tried_configuration() -> None:
    def suggestions(**options) -> list[float]:
        """Distance of each model-based suggestion to the nearest configuration tried before it, over the
        auto radius for that many; two trials always pending (asynchronous workers)."""
        searcher = GPSearcher(SPACE, seed=3, n_startup=8, **options)
        ratios = []
        for trial_id in range(40):
            tried = np.array([[c["x"], c["y"]] for c in searcher.configs.values()])
            searcher.ask(trial_id)
            if trial_id >= 10:
                config = searcher.configs[trial_id]
                nearest = np.sqrt(((tried - [config["x"], config["y"]]) ** 2).sum(1)).min()
                ratios.append(nearest / exclusion_radius(len(tried), 2))
            if trial_id >= 2:
                searcher.observe(trial_id - 2, 1, loss(searcher.configs[trial_id - 2]))
        return ratios

    assert min(suggestions()) >= 1.0 - 1e-9
    # without it, EI piles suggestions up next to the incumbent: the radius is what keeps them apart
    assert np.mean(np.array(suggestions(min_distance=0)) < 1.0) > 0.3


def test_exclusion_radius_is_that_of_n_balls_filling_the_unit_cube() -> None:
    for n in (1, 10, 300):
        assert math.isclose(n * math.pi * exclusion_radius(n, 2) ** 2, 1.0)
        assert math.isclose(n * 4 / 3 * math.pi * exclusion_radius(n, 3) ** 3, 1.0)
    assert exclusion_radius(1000, 6) < exclusion_radius(100, 6)


def test_the_auto_radius_fills_one_unit_cube_per_combination_of_categorical_values() -> None:
    """Configurations that differ in a categorical lie sqrt(2) apart in its one-hot features whatever the
    radius, so its features add no volume: the balls fill the numeric parameters' cube once per choice."""
    mixed = SearchSpace([Float("x", 0.0, 1.0), Float("y", 0.0, 1.0), Categorical("c", ["a", "b", "c"])])
    for n in (1, 10, 300):
        assert math.isclose(n * math.pi * auto_radius(mixed, n) ** 2, 3.0)
    assert auto_radius(mixed, 100) < exclusion_radius(100, 5)  # as if the 3 one-hot features were numeric
    assert auto_radius(SearchSpace([Categorical("c", ["a", "b"])]), 1) == 0.0


def test_on_a_piecewise_constant_objective_the_radius_finds_more_distinct_cells_and_a_better_one() -> None:
    # the simulator's situation: a loss recorded at a few configurations, any configuration getting that of
    # its nearest recorded one; a suggestion in a cell already visited teaches nothing
    rng = np.random.default_rng(7)
    rows, values = rng.random((40, 2)), rng.random(40)

    def run(**options) -> tuple[int, float]:
        searcher = GPSearcher(SPACE, seed=0, **options)
        cells = []
        for trial_id in range(30):
            searcher.ask(trial_id)
            config = searcher.configs[trial_id]
            cells.append(int(np.argmin(((rows - [config["x"], config["y"]]) ** 2).sum(1))))
            searcher.observe(trial_id, 1, float(values[cells[-1]]))
        return len(set(cells)), float(values[cells].min())

    (distinct, best), (distinct_without, best_without) = run(), run(min_distance=0)
    assert distinct > distinct_without and best <= best_without


def test_random_fraction_one_never_builds_the_model() -> None:
    searcher = GPSearcher(SPACE, seed=0, random_fraction=1.0)
    for trial_id in range(30):
        searcher.ask(trial_id)
        searcher.observe(trial_id, 1, loss(searcher.configs[trial_id]))
    assert searcher._params is None and len(searcher.configs) == 30


@pytest.mark.parametrize("option", [{"output_warping": "log"}, {"min_distance": -0.1}, {"min_distance": "far"},
                                    {"random_fraction": 1.5}])
def test_bad_options_are_settings_errors_naming_the_option(option: dict) -> None:
    with pytest.raises(SettingsError, match=next(iter(option))):
        build_searcher("mobster", SPACE, **option)


def test_gp_and_mobster_find_better_points_than_random_search() -> None:
    def best_after(name: str, seed: int, n: int = 30, **options) -> float:
        return best_found(build_searcher(name, SPACE, seed=seed, **options), loss, n)

    random_best = np.mean([best_after("random", seed) for seed in range(4)])
    for name in ("gp", "mobster"):
        # the model converges on a smooth function when allowed to refine next to tried points and to see the
        # losses' magnitudes (ranks alone tell it less about how close the optimum is) ...
        refined = np.mean([best_after(name, seed, min_distance=0, output_warping="none") for seed in range(4)])
        assert refined < 1e-3 * random_best, name
        assert refined < 0.01 * np.mean([best_after(name, seed, min_distance=0) for seed in range(4)]), name
        # ... and by default (ranks, and the exclusion radius: no closer than ~0.1 here) still beats random search
        assert np.mean([best_after(name, seed) for seed in range(4)]) < 0.7 * random_best, name
