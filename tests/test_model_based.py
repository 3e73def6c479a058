"""Searchers that learn: every searcher with every scheduler through the tuner, same seed same decisions,
resume replays to the same decisions, pending trials, and the TPE model itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fakes import FakeExecutor, best_found
from hydra_hpo.journal import Journal
from hydra_hpo.resume import ResumeLog
from hydra_hpo.schedulers import SCHEDULERS, build_scheduler
from hydra_hpo.searchers import SEARCHERS, TPESearcher, build_searcher
from hydra_hpo.searchers.parzen import ParzenEstimator
from hydra_hpo.space import Categorical, Float, Int, SearchSpace
from hydra_hpo.trial import COMPLETED, FAILED, Job
from hydra_hpo.tuner import Tuner

SPACE = SearchSpace([
    Float("x", 0.0, 1.0),
    Float("lr", 1e-4, 1.0, log=True),
    Int("n", 1, 8),
    Categorical("act", ("relu", "tanh", "gelu")),
])
LEARNING_OPTIONS = {"tpe": {"n_startup": 4}}  # a model after 4 results, so short sweeps exercise it


def loss(config: dict) -> float:
    return ((config["x"] - 0.3) ** 2 + (math.log10(config["lr"]) + 2) ** 2 / 16 + abs(config["n"] - 5) / 8
            + (0.0 if config["act"] == "tanh" else 0.2))


def outcome(job: Job) -> tuple[str, float | None, float]:
    """Improves with epochs; one configuration in seven fails; a job's time depends on its configuration."""
    if int(job.config["x"] * 1000) % 7 == 0:
        return FAILED, None, 1.0
    return COMPLETED, loss(job.config) + 1.0 / job.resource, 1.0 + job.config["n"] / 8


def make_tuner(searcher_name: str, scheduler_name: str, n_trials: int = 24, workers: int = 3, seed: int = 0,
               journal: Journal | None = None, resume: ResumeLog | None = None, crash_after: int | None = None):
    searcher = build_searcher(searcher_name, SPACE, seed=seed, **LEARNING_OPTIONS.get(searcher_name, {}))
    options = {"fifo": {}, "pbt": {"mutable": ["lr"], "population_size": 4}}.get(scheduler_name, {"r_min": 1, "eta": 2})
    if scheduler_name.endswith("-stopping"):  # an ASHA-type scheduler with hpo.type=stopping
        scheduler_name, options = scheduler_name.removesuffix("-stopping"), {**options, "type": "stopping"}
    scheduler = build_scheduler(scheduler_name, searcher, n_trials, 4, **options)
    executor = FakeExecutor(workers, outcome, crash_after=crash_after)
    tuner = Tuner(scheduler, executor, searcher=searcher, seed=seed, journal=journal, resume=resume,
                  fingerprint={"space": SPACE.to_structured(), "searcher": searcher_name})
    return tuner, executor, searcher


@pytest.mark.parametrize("searcher_name", sorted(SEARCHERS))
@pytest.mark.parametrize("scheduler_name", sorted(SCHEDULERS) + ["asha-stopping", "hypertune-stopping"])
def test_every_searcher_with_every_scheduler_hears_every_result(searcher_name: str, scheduler_name: str) -> None:
    tuner, executor, searcher = make_tuner(searcher_name, scheduler_name)
    result = tuner.run()
    if scheduler_name == "pbt":  # its population, plus replacements of failed members up to n_trials
        assert 4 <= len(result.trials) <= 24
    else:
        assert len(result.trials) == 24
    assert all(SPACE.contains(record.config) for record in result.trials.values())
    # the searcher gave each trial its configuration and heard each job's result, at every rung
    assert {t: r.config for t, r in result.trials.items()} == searcher.configs
    heard = sum(len(by_resource) for by_resource in searcher.results.values())
    assert heard == len(executor.submitted)
    for job in executor.submitted:
        status, value, _ = outcome(job)
        assert searcher.results[job.trial_id][job.resource] == (value if status == COMPLETED else None)
    assert searcher.pending == []


@pytest.mark.parametrize("searcher_name", sorted(SEARCHERS))
@pytest.mark.parametrize("scheduler_name", ["fifo", "asha", "hyperband", "hypertune", "hypertune-stopping"])
def test_same_seed_same_decisions(searcher_name: str, scheduler_name: str) -> None:
    first, first_executor, _ = make_tuner(searcher_name, scheduler_name, seed=3)
    second, second_executor, _ = make_tuner(searcher_name, scheduler_name, seed=3)
    a, b = first.run(), second.run()
    assert {t: r.config for t, r in a.trials.items()} == {t: r.config for t, r in b.trials.items()}
    assert first_executor.submitted == second_executor.submitted


@pytest.mark.parametrize("scheduler_name", ["fifo", "asha", "hypertune", "hypertune-stopping"])
@pytest.mark.parametrize("crash_after", [6, 20])
def test_tpe_resume_replays_to_the_same_decisions(tmp_path, scheduler_name: str, crash_after: int) -> None:
    """One worker: the jobs after the kill finish in the order they would have, so the resumed sweep makes
    every decision of the uninterrupted one."""
    reference, reference_executor, _ = make_tuner("tpe", scheduler_name, n_trials=30, workers=1)
    expected = reference.run()
    path = tmp_path / "journal.jsonl"
    crashed, _, _ = make_tuner("tpe", scheduler_name, n_trials=30, workers=1, journal=Journal(path),
                               crash_after=crash_after)
    with pytest.raises(SystemExit):
        crashed.run()
    resumed, executor, searcher = make_tuner("tpe", scheduler_name, n_trials=30, workers=1, journal=Journal(path),
                                             resume=ResumeLog(Journal(path).read()))
    result = resumed.run()
    assert searcher.model_resource() is not None  # the model made decisions, before and after the kill
    assert {t: r.config for t, r in result.trials.items()} == {t: r.config for t, r in expected.trials.items()}
    assert len(executor.submitted) == len(reference_executor.submitted) - crash_after
    assert result.best.value == expected.best.value


@pytest.mark.parametrize("scheduler_name", ["fifo", "asha", "hypertune", "hypertune-stopping"])
def test_tpe_resume_with_parallel_workers_replays_the_recorded_decisions(tmp_path, scheduler_name: str) -> None:
    """Three workers: jobs in flight at the kill run again on a new clock, so later results may arrive in
    another order than without the kill; every decision made before the kill is replayed, and resuming
    the same journal twice gives the same sweep."""
    reference, _, _ = make_tuner("tpe", scheduler_name, n_trials=30)
    expected = reference.run()
    path = tmp_path / "journal.jsonl"
    crashed, _, _ = make_tuner("tpe", scheduler_name, n_trials=30, journal=Journal(path), crash_after=15)
    with pytest.raises(SystemExit):
        crashed.run()
    events = Journal(path).read()
    started = {e["trial_id"] for e in events if e["event"] == "trial_started"}
    outcomes = []
    for copy in ("a", "b"):
        copy_path = tmp_path / f"{copy}.jsonl"
        copy_path.write_text(path.read_text())
        resumed, executor, _ = make_tuner("tpe", scheduler_name, n_trials=30, journal=Journal(copy_path),
                                          resume=ResumeLog(events))
        outcomes.append((resumed.run(), executor.submitted))
    (first, first_jobs), (second, second_jobs) = outcomes
    assert {t: first.trials[t].config for t in started} == {t: expected.trials[t].config for t in started}
    assert {t: r.config for t, r in first.trials.items()} == {t: r.config for t, r in second.trials.items()}
    assert first_jobs == second_jobs and len(first.trials) == 30


def feed(searcher: TPESearcher, n: int, resource: int = 1) -> None:
    for trial_id in range(n):
        searcher.ask(trial_id)
        searcher.observe(trial_id, resource, loss(searcher.configs[trial_id]))


def test_pending_trials_count_as_bad_until_they_report() -> None:
    searcher = TPESearcher(SPACE, seed=0, n_startup=5)
    feed(searcher, 12)
    first, second = searcher.ask(12), searcher.ask(13)  # two workers ask before either reports
    assert first != second
    assert searcher.pending == [12, 13]
    good, bad = searcher.split()
    assert bad[-2:] == [12, 13] and not {12, 13} & set(good)
    searcher.observe(12, 1, None)  # a failed job ranks last, no longer pending
    good, bad = searcher.split()
    assert searcher.pending == [13] and bad[-2:] == [12, 13]


def test_split_is_gamma_of_the_model_rung_best_first() -> None:
    searcher = TPESearcher(SPACE, seed=0, gamma=0.25, n_startup=4)
    assert searcher.split() is None  # random start-up
    for trial_id, (x, resources) in enumerate([(0.9, [1, 2]), (0.1, [1, 2]), (0.5, [1, 2]), (0.3, [1, 2]),
                                               (0.2, [1]), (0.0, [1])]):
        searcher.ask(trial_id)
        for resource in resources:
            searcher.observe(trial_id, resource, x / resource)
    # rung 2 has 4 results (enough), rung 1 has 6: the highest rung with enough results is modelled
    assert searcher.model_resource() == 2
    assert searcher.split() == ([1], [3, 2, 0])


def test_tpe_learns_faster_than_random_search() -> None:
    def best_after(name: str, seed: int, n: int = 60) -> float:
        return best_found(build_searcher(name, SPACE, seed=seed), loss, n)

    random_best = [best_after("random", seed) for seed in range(5)]
    tpe_best = [best_after("tpe", seed) for seed in range(5)]
    assert np.mean(tpe_best) < 0.5 * np.mean(random_best)


def test_tpe_rejects_bad_options() -> None:
    for option, value in [("gamma", 1.5), ("n_startup", 1), ("n_candidates", 0), ("random_fraction", -0.1),
                          ("prior_weight", 0.0)]:
        with pytest.raises(ValueError, match=f"{option}="):
            build_searcher("tpe", SPACE, **{option: value})


def test_parzen_density_integrates_to_one_and_samples_inside_the_cube() -> None:
    points = np.array([[0.1, 0.5], [0.95, 0.5], [0.4, 0.833]])
    estimator = ParzenEstimator(points, [0, 3])
    grid = (np.arange(2000) + 0.5) / 2000
    total = 0.0
    for choice in range(3):
        x = np.column_stack([grid, np.full_like(grid, (choice + 0.5) / 3)])
        total += np.exp(estimator.log_pdf(x)).mean()
    assert total == pytest.approx(1.0, abs=1e-3)
    samples = estimator.sample(np.random.default_rng(0), 4000)
    assert samples.min() >= 0.0 and samples.max() <= 1.0
    # choice 1 was observed twice of three: it is drawn most often
    counts = np.bincount((samples[:, 1] * 3).astype(int), minlength=3)
    assert counts[1] > counts[0] and counts[1] > counts[2]


def test_tpe_exclusion_radius_keeps_model_suggestions_apart_from_tried_configurations() -> None:
    """With ``min_distance="auto"`` hardly any suggestion lands within the auto radius of a tried
    configuration with the same categorical value (only a random fallback may, when every candidate is
    that close); without it TPE piles its candidates up next to its good results."""
    from hydra_hpo.searchers.exclusion import auto_radius, far_in_unit_cube

    def close_share(min_distance) -> float:
        searcher = TPESearcher(SPACE, seed=5, n_startup=6, min_distance=min_distance)
        close = []
        for trial_id in range(60):
            tried = np.stack([SPACE.to_unit(c) for c in searcher.configs.values()]) if searcher.configs else None
            config = searcher.ask(trial_id)
            if trial_id >= 6:
                radius = auto_radius(SPACE, len(tried))
                close.append(not far_in_unit_cube(SPACE, SPACE.to_unit(config)[None, :], tried, radius)[0])
            searcher.observe(trial_id, 1, loss(config))
        return float(np.mean(close))

    assert close_share("auto") <= 0.2  # 0.07-0.15 over seeds 1, 2, 5
    assert close_share(0) >= 0.6  # 0.85-0.89


def test_far_in_unit_cube_measures_numeric_coordinates_within_a_categorical_value() -> None:
    from hydra_hpo.searchers.exclusion import far_in_unit_cube

    space = SearchSpace([Float("x", 0.0, 1.0), Categorical("act", ("relu", "tanh"))])
    tried = np.array([[0.5, 0.25]])  # x = 0.5, relu (the bin [0, 0.5) of the categorical coordinate)
    candidates = np.array([[0.55, 0.25], [0.55, 0.75], [0.8, 0.1]])  # near & relu, near & tanh, far & relu
    assert far_in_unit_cube(space, candidates, tried, 0.1).tolist() == [False, True, True]
    assert far_in_unit_cube(space, candidates, tried, 0.0).tolist() == [True, True, True]


def test_tpe_min_distance_is_checked() -> None:
    from hydra_hpo.errors import SettingsError

    with pytest.raises(SettingsError, match="min_distance=-1"):
        TPESearcher(SPACE, min_distance=-1)


@pytest.mark.parametrize("searcher_name", ["tpe", "gp", "mobster"])
@pytest.mark.parametrize("space", [
    SearchSpace([Categorical(f"op{i}", ("skip", "conv", "pool")) for i in range(4)]),  # 81 architectures
    SearchSpace([Int("layers", 1, 8), Int("width", 16, 512, log=True)]),
], ids=["categorical-only", "int-only"])
def test_model_based_searchers_learn_on_spaces_without_a_float(searcher_name: str, space: SearchSpace) -> None:
    """A NAS-like space of choices only, or integers only: the model takes over after its start-up and keeps
    suggesting distinct configurations of the space (no local search along floats to fall back on)."""
    def smooth_loss(config: dict) -> float:  # squared distance of the unit-cube coordinates to 0.4
        return float(np.sum((space.to_unit(config) - 0.4) ** 2))

    searcher = build_searcher(searcher_name, space, seed=0, n_startup=4)
    for trial_id in range(30):
        config = searcher.ask(trial_id)
        assert config is not None and space.contains(config)
        searcher.observe(trial_id, 1, smooth_loss(config))
    assert searcher.model_resource() == 1
    assert len({space.key(config) for config in searcher.configs.values()}) == 30
    random_best = np.mean([best_found(build_searcher("random", space, seed=s), smooth_loss, 30) for s in range(4)])
    assert min(r[1] for r in searcher.results.values()) <= 0.6 * random_best  # random search, seed 0: 1.5 / 0.8x
