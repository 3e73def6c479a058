"""Several objectives and constraints: parsing, non-dominated sorting, hypervolume, and the tuner's ranking
through them (fake executor: no Hydra, no training)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from fakes import FakeExecutor
from hydra_hpo.errors import SettingsError
from hydra_hpo.objectives import (Objectives, Point, check_objectives, crowding_distance, hypervolume,
                                  non_dominated_fronts, parse_objectives, rank_points)
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.schedulers.rungs import ranked
from hydra_hpo.searchers import build_searcher
from hydra_hpo.settings import HPOSettings
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.trial import COMPLETED, Job
from hydra_hpo.tuner import FatalSweepError, Tuner

SPACE = SearchSpace({"x": Float("x", 0.0, 1.0)})


def dominates(a, b) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def test_fronts_match_the_definition_of_dominance():
    rng = np.random.default_rng(0)
    losses = rng.integers(0, 6, size=(60, 3)).astype(float)  # many ties and duplicates
    fronts = non_dominated_fronts(losses)
    assert sorted(np.concatenate(fronts).tolist()) == list(range(60))
    for k, front in enumerate(fronts):
        later = np.concatenate(fronts[k:])
        for i in front:  # nobody in this or a later front dominates a member ...
            assert not any(dominates(losses[j], losses[i]) for j in later)
            if k:  # ... and someone in the front before does
                assert any(dominates(losses[j], losses[i]) for j in fronts[k - 1])


def test_crowding_distance_prefers_the_isolated_and_the_extremes():
    front = np.array([[0.0, 4.0], [1.0, 3.0], [1.1, 2.9], [4.0, 0.0]])
    distance = crowding_distance(front)
    assert np.isinf(distance[0]) and np.isinf(distance[3])
    assert distance[1] < distance[2]  # (1.1, 2.9) has the wider gap around it: 0.725 + 0.75 vs 0.275 + 0.275
    assert distance[2] == pytest.approx((4.0 - 1.0) / 4 + (3.0 - 0.0) / 4)


def test_hypervolume_2d_by_hand_and_3d_by_counting_unit_cells():
    assert hypervolume(np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0]]), [4.0, 4.0]) == 3 + 2 + 1
    assert hypervolume(np.array([[5.0, 1.0]]), [4.0, 4.0]) == 0.0  # outside the reference box
    rng = np.random.default_rng(1)
    points = rng.integers(0, 5, size=(12, 3)).astype(float)
    cells = sum(any(np.all(p <= np.array(c)) for p in points) for c in itertools.product(range(5), repeat=3))
    assert hypervolume(points, [5.0, 5.0, 5.0]) == cells  # a unit cell at c is dominated iff some p <= c


def test_ranking_puts_feasible_fronts_first_then_the_least_violating():
    points = {
        1: Point((0.0, 0.1, 0.9)),
        2: Point((0.0, 0.5, 0.5)),
        3: Point((0.0, 0.9, 0.1)),
        4: Point((0.0, 0.6, 0.6)),   # dominated by 2
        5: Point((0.3, 0.0, 0.0)),   # dominates everything but violates a bound
        6: Point((0.1, 0.9, 0.9)),
        7: None,                     # failed
    }
    order = rank_points(points)
    assert order[:3] == [1, 3, 2]  # the front: its extremes (infinite crowding) before the middle
    assert order[3:] == [4, 6, 5]
    assert ranked(points) == order  # the schedulers' one ranking goes through it


def test_feasibility_and_points_follow_directions_and_bounds():
    objectives = parse_objectives({"validation_error": "min", "accuracy": "max"}, {"n_params": {"max": 100},
                                                                                   "inference_ms": {"min": 1}})
    feasible = {"validation_error": 0.2, "accuracy": 0.8, "n_params": 100, "inference_ms": 2}
    assert objectives.point(feasible) == (0.0, 0.2, -0.8)
    assert not objectives.feasible({**feasible, "n_params": 150})
    assert objectives.violation({**feasible, "n_params": 150}) == pytest.approx(0.5)
    assert not objectives.feasible({**feasible, "inference_ms": 0.5})
    assert objectives.missing({"validation_error": 0.2}) == ["accuracy", "n_params", "inference_ms"]
    only_bounds = parse_objectives(None, {"n_params": {"max": 10}}, metric="validation_error", mode="min")
    assert only_bounds.directions == {"validation_error": "min"} and not only_bounds.multi
    assert parse_objectives(None, None) is None


@pytest.mark.parametrize("objectives, constraints, overrides, message", [
    ({"validation_error": "min", "inference_ms": "up"}, None, (),
     r"^hpo.objectives.inference_ms='up': the direction must be min or max$"),
    ({}, None, (), r"^hpo.objectives=\{\}: empty"),
    (None, {}, (), r"^hpo.constraints=\{\}: empty"),
    (None, {"n_params": {"below": 3}}, (), r"^hpo.constraints.n_params: unknown bound 'below'; use min and/or max$"),
    (None, {"n_params": {"max": "1e5"}}, (), r"^hpo.constraints.n_params.max='1e5': must be a finite number$"),
    (None, {"flops": {"max": 3}}, (), r"^hpo.constraints: unknown metric 'flops'; the runs report .*n_params"),
    ({"validation_error": "min", "latency": "min"}, None, (), r"^hpo.objectives: unknown metric 'latency'"),
    ({"validation_error": "min"}, None, ("hpo.objectives={validation_error: min, validation_error: max}",),
     r"^hpo.objectives: 'validation_error' is listed twice; list each metric once$"),
    (["validation_error", "validation_error"], None, (), r"^hpo.objectives: 'validation_error' is listed twice"),
    ({"validation_error": "max", "n_params": "min"}, None, (), r"contradicts hpo.mode=min"),
])
def test_a_bad_objective_or_constraint_is_one_line_naming_the_key(objectives, constraints, overrides, message):
    with pytest.raises(SettingsError, match=message) as info:
        check_objectives(objectives, constraints, metric="validation_error", mode="min", overrides=overrides)
    assert "\n" not in str(info.value)


def test_settings_validate_objectives_and_keep_old_fingerprints():
    with pytest.raises(SettingsError, match="hpo.objectives.x='best'"):
        HPOSettings.from_mapping({"objectives": {"x": "best"}})
    assert "objectives" not in HPOSettings.from_mapping({}).fingerprint()  # journals from before still resume
    settings = HPOSettings.from_mapping({"objectives": {"validation_error": "min", "n_params": "min"}})
    assert settings.fingerprint()["objectives"] == {"validation_error": "min", "n_params": "min"}


# ------------------------------------------------------------------------------- through the tuner
def size(job: Job) -> float:
    return 1000.0 * (1.0 - float(job.config["x"]))  # the best-error configurations (x near 0.3) are large


def error(job: Job) -> float:
    return (float(job.config["x"]) - 0.3) ** 2 + 1.0 / job.resource


class MetricsExecutor(FakeExecutor):
    """Results carry n_params and inference_ms besides validation_error."""

    def __init__(self, n_workers: int) -> None:
        super().__init__(n_workers, lambda job: (COMPLETED, error(job), 1.0))

    def wait(self):
        return [dataclasses.replace(r, metrics={"validation_error": r.value, "n_params": size(r.job),
                                                "inference_ms": size(r.job) / 100.0}) for r in super().wait()]


def tune(scheduler: str, objectives: Objectives | None, n_trials: int = 27, **options):
    searcher = build_searcher("random", SPACE, seed=3)
    rungs = {} if scheduler == "fifo" else {"r_min": 1, "eta": 3}
    sched = build_scheduler(scheduler, searcher, n_trials, 9, **rungs, **options)
    return Tuner(sched, MetricsExecutor(3), searcher=searcher, seed=3, objectives=objectives).run()


@pytest.mark.parametrize("scheduler", ["fifo", "asha", "successive_halving", "hyperband"])
def test_a_constrained_single_objective_sweep_never_reports_an_infeasible_incumbent(scheduler):
    unconstrained = tune(scheduler, None)
    bounds = parse_objectives(None, {"n_params": {"max": 500.0}}, metric="validation_error", mode="min")
    constrained = tune(scheduler, bounds)
    best = constrained.trials[constrained.best.trial_id]
    assert best.segments[-1].metrics["n_params"] <= 500.0
    # the bound matters: without it the incumbent is a configuration the bound forbids
    assert size(Job(0, unconstrained.trials[unconstrained.best.trial_id].config, 1)) > 500.0
    feasible_values = [s.value for r in constrained.trials.values() for s in r.segments
                       if s.status == COMPLETED and s.metrics["n_params"] <= 500.0]
    assert constrained.best.value <= min(feasible_values) + 1e-12


def test_mo_asha_promotes_the_front_not_only_the_lowest_error():
    single = tune("asha", None, type="promotion")
    multi = tune("asha", parse_objectives({"validation_error": "min", "inference_ms": "min"}, None),
                 type="promotion")
    def promoted(outcome):
        return {t for t, r in outcome.trials.items() if r.resource > 1}
    smallest = min(multi.trials, key=lambda t: size(Job(0, multi.trials[t].config, 1)))
    assert smallest in promoted(multi)  # the fastest model is on every front, whatever its error
    assert smallest not in promoted(single)
    # every promotion from the first rung was on the first front of the rung's results at that time
    first_rung = {t: Point((0.0, error(Job(0, r.config, 1)), size(Job(0, r.config, 1)) / 100.0))
                  for t, r in multi.trials.items()}
    fronts = non_dominated_fronts(np.array([p.losses for p in first_rung.values()]))
    ids = list(first_rung)
    front_ids = {ids[i] for i in fronts[0]}
    assert front_ids & promoted(multi)


def test_a_metric_the_runs_do_not_report_stops_the_sweep():
    objectives = parse_objectives({"validation_error": "min", "peak_memory_mb": "min"}, None)
    outcome = tune("fifo", objectives, n_trials=3)
    assert isinstance(outcome.fatal, FatalSweepError)
    assert "metric 'peak_memory_mb' (hpo.objectives / hpo.constraints) not produced" in str(outcome.fatal)
