"""One contract suite for every registered searcher, plus a few searcher-specific checks."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch

from hydra_hpo.searchers import SEARCHERS, GridSearcher, build_searcher, searcher_options

from hydra_hpo.space import Categorical, Float, Int, SearchSpace

NAMES = sorted(SEARCHERS)
DETERMINISTIC = {"grid"}  # searchers whose sequence does not depend on the seed


def mixed_space() -> SearchSpace:
    return SearchSpace(
        [
            Float("model.lr", 1e-4, 1e-1, log=True),
            Float("model.momentum", 0.0, 0.99),
            Int("data.batch_size", 8, 256, log=True),
            Int("model.num_layers", 1, 6),
            Categorical("model.activation", ("relu", "tanh")),
        ]
    )


def small_space() -> SearchSpace:
    return SearchSpace([Int("a", 1, 3), Categorical("b", ("x", True))])  # 6 configurations


def draw(searcher, n: int) -> list:
    return [searcher.suggest() for _ in range(n)]


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_sequence(name: str) -> None:
    first = draw(build_searcher(name, mixed_space(), seed=3), 20)
    second = draw(build_searcher(name, mixed_space(), seed=3), 20)
    assert first == second


@pytest.mark.parametrize("name", sorted(set(NAMES) - DETERMINISTIC))
def test_different_seeds_differ(name: str) -> None:
    assert draw(build_searcher(name, mixed_space(), seed=0), 5) != draw(
        build_searcher(name, mixed_space(), seed=1), 5
    )


@pytest.mark.parametrize("name", NAMES)
def test_global_rngs_untouched(name: str) -> None:
    np.random.seed(123)
    random.seed(123)
    torch.manual_seed(123)
    before = (np.random.get_state(), random.getstate(), torch.get_rng_state())
    searcher = build_searcher(name, mixed_space(), seed=0)
    for trial_id in range(30):
        searcher.ask(trial_id)
        searcher.observe(trial_id, 1, 0.5 + trial_id)
    np_state, py_state, torch_state = before
    after_np = np.random.get_state()
    assert after_np[0] == np_state[0] and np.array_equal(after_np[1], np_state[1])
    assert after_np[2:] == np_state[2:]
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize("name", NAMES)
def test_values_inside_bounds_with_python_types(name: str) -> None:
    space = mixed_space()
    configs = draw(build_searcher(name, space, seed=0), 100)
    assert all(c is not None for c in configs)
    for config in configs:
        assert set(config) == set(space.names)
        assert space.contains(config)
        assert type(config["model.lr"]) is float and type(config["model.momentum"]) is float
        assert type(config["data.batch_size"]) is int and type(config["model.num_layers"]) is int
        assert type(config["model.activation"]) is str


@pytest.mark.parametrize("name", NAMES)
def test_log_scale_respected(name: str) -> None:
    space = SearchSpace([Float("lr", 1e-4, 1e-1, log=True)])
    searcher = build_searcher(name, space, seed=0)
    values = np.array([c["lr"] for c in itertools.islice(iter(searcher.suggest, None), 1000)])
    assert len(values) >= 5
    log_values = np.log10(np.sort(values))
    # near 10**-2.5 (the geometric middle), far from the arithmetic middle 0.05
    assert abs(np.median(log_values) - (-2.5)) < 0.25
    if name in DETERMINISTIC:  # a grid: geometrically spaced points
        np.testing.assert_allclose(np.diff(log_values), np.diff(log_values)[0])


@pytest.mark.parametrize("name", NAMES)
def test_no_duplicates_and_exhaustion(name: str) -> None:
    space = small_space()
    searcher = build_searcher(name, space, seed=0)
    configs = list(iter(searcher.suggest, None))
    keys = [space.key(c) for c in configs]
    assert len(keys) == len(set(keys))
    assert len(configs) == 6  # a discrete space of 6 is visited completely, then None
    assert searcher.suggest() is None


@pytest.mark.parametrize("name", NAMES)
def test_no_duplicates_mixed(name: str) -> None:
    space = mixed_space()
    configs = draw(build_searcher(name, space, seed=0), 200)
    assert len({space.key(c) for c in configs}) == 200


@pytest.mark.parametrize("name", NAMES)
def test_initial_config_is_first_and_not_repeated(name: str) -> None:
    space = small_space()
    initial = {"a": 2, "b": True, "other.key": 7}
    searcher = build_searcher(name, space, seed=5, initial_config=initial)
    configs = list(iter(searcher.suggest, None))
    assert configs[0] == {"a": 2, "b": True}
    assert len(configs) == 6 and configs.count({"a": 2, "b": True}) == 1


@pytest.mark.parametrize("name", NAMES)
def test_initial_config_outside_space_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match=r"'a'.*7"):
        build_searcher(name, small_space(), initial_config={"a": 7, "b": "x"})


@pytest.mark.parametrize("name", NAMES)
def test_empty_space_has_one_configuration(name: str) -> None:
    searcher = build_searcher(name, SearchSpace(), seed=0)
    assert searcher.suggest() == {}
    assert searcher.suggest() is None


def test_build_searcher_errors() -> None:
    with pytest.raises(ValueError, match=r"hpo.searcher='bogus'.*gp, grid, mobster, random, sobol, tpe"):
        build_searcher("bogus", small_space())
    with pytest.raises(ValueError, match=r"'random' has no option 'num_points'"):
        build_searcher("random", small_space(), num_points=3)
    assert build_searcher("grid", small_space(), num_points=3).num_points == 3
    assert searcher_options("grid") == ["num_points"]


@pytest.mark.parametrize(
    "params, num_points, expected",
    [
        ([Categorical("c", ("a", "b")), Float("x", 0.0, 1.0)], 3, 6),
        ([Categorical("c", ("a", "b", "c")), Float("x", 1e-3, 1.0, log=True)], 4, 12),
        ([Int("n", 1, 4)], 5, 4),  # every int when there are at most num_points
        ([Int("n", 1, 100)], 5, 5),
        ([Int("n", 1, 6, log=True)], 5, 4),  # geomspace 1..6 rounds to 1, 2, 2, 4, 6 -> unique
        ([Int("n", 1, 4), Categorical("c", (True, False)), Float("x", 0.0, 1.0)], 2, 8),  # ints 1 and 4
    ],
)
def test_grid_counts(params, num_points: int, expected: int) -> None:
    searcher = GridSearcher(SearchSpace(params), num_points=num_points)
    configs = list(iter(searcher.suggest, None))
    assert len(configs) == expected == searcher.size


def test_grid_values_and_order() -> None:
    space = SearchSpace([Categorical("c", ("a", "b")), Float("x", 0.0, 1.0), Int("n", 8, 256, log=True)])
    searcher = GridSearcher(space, num_points=3)
    assert searcher.values == {"c": ["a", "b"], "x": [0.0, 0.5, 1.0], "n": [8, 45, 256]}
    configs = list(iter(searcher.suggest, None))
    assert configs[:2] == [{"c": "a", "x": 0.0, "n": 8}, {"c": "a", "x": 0.0, "n": 45}]
    assert configs[-1] == {"c": "b", "x": 1.0, "n": 256}


def test_grid_rejects_bad_num_points() -> None:
    with pytest.raises(ValueError, match="num_points=0"):
        GridSearcher(small_space(), num_points=0)


def test_grid_skips_repeats_of_the_initial_config_and_of_repeated_choices() -> None:
    # "a" twice among the choices: its grid points repeat; the initial config is a grid point too
    space = SearchSpace([Categorical("c", ("a", "a", "b")), Int("n", 1, 2)])
    searcher = GridSearcher(space, initial_config={"c": "b", "n": 2})
    configs = list(iter(searcher.suggest, None))
    assert configs == [{"c": "b", "n": 2}, {"c": "a", "n": 1}, {"c": "a", "n": 2}, {"c": "b", "n": 1}]
