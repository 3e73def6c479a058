"""TPE over several objectives and constraints: the good/bad split (non-dominated rank, hypervolume tie-break,
infeasible last), MOTPE against random search on a known front, feasibility learning, and resume."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from fakes import FakeExecutor
from hydra_hpo.journal import Journal
from hydra_hpo.objectives import Point, hypervolume, parse_objectives
from hydra_hpo.resume import ResumeLog
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import TPESearcher, build_searcher
from hydra_hpo.searchers.split import greedy_hypervolume_subset, split_order
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.trial import COMPLETED, Job
from hydra_hpo.tuner import Tuner


def P(*values: float) -> Point:
    return Point(values)


# ------------------------------------------------------------------------------------------ the split
def test_whole_fronts_go_first_and_dominated_results_after() -> None:
    points = {0: P(0, 3, 3), 1: P(0, 1, 4), 2: P(0, 4, 1), 3: P(0, 2, 2), 4: P(0, 5, 5), 5: P(0, 3, 4)}
    order = split_order(points, n_good=3)
    assert set(order[:3]) == {1, 2, 3}  # the non-dominated front, whole
    assert set(order[3:5]) == {0, 5} and order[5] == 4  # then the second front, then the third


def test_the_front_that_straddles_the_split_keeps_the_members_adding_most_hypervolume() -> None:
    # one front; 1 sits next to the extreme 0 and adds little; 2 spreads the front
    front = {0: P(0, 0, 10), 1: P(0, 1, 9.9), 2: P(0, 5, 5), 3: P(0, 10, 0)}
    order = split_order(front, n_good=2)
    assert order[0] == 2 and 1 not in order[:2]
    # the greedy choice, checked against the definition: no other pair of the front has more hypervolume
    losses = np.array([front[i].losses for i in range(4)])
    reference = losses.max(axis=0) + 0.1 * (losses.max(axis=0) - losses.min(axis=0))
    picked = greedy_hypervolume_subset(losses, 2)
    best_pair = max(hypervolume(losses[[a, b]], reference) for a in range(4) for b in range(a + 1, 4))
    assert hypervolume(losses[picked], reference) == pytest.approx(best_pair)


def test_infeasible_results_rank_after_feasible_ones_by_violation_and_failed_last() -> None:
    points = {0: P(0.5, 0.0, 0.0), 1: P(0, 3, 3), 2: None, 3: P(0.1, 0.0, 0.0), 4: P(0, 1, 4), 5: P(2.0, 0, 0)}
    # the infeasible ones have the best losses and still rank after every feasible result
    assert split_order(points, n_good=2) == [1, 4, 3, 0, 5, 2]
    # fewer feasible results than the good group: the least violating fill it
    assert split_order(points, n_good=3)[:3] == [1, 4, 3]
    only_infeasible = {0: P(0.5, 1.0), 1: P(0.2, 9.0), 2: P(0.9, 0.0)}
    assert split_order(only_infeasible, n_good=1) == [1, 0, 2]


def test_one_objective_is_the_plain_sort_by_loss_older_trial_first() -> None:
    points = {0: P(0, 0.5), 1: P(0, 0.2), 2: None, 3: P(0, 0.2), 4: P(0, 0.9)}
    assert split_order(points, n_good=2) == [1, 3, 0, 4, 2]


def test_a_failed_job_has_no_point_and_a_plain_loss_is_a_feasible_point() -> None:
    searcher = TPESearcher(SearchSpace([Float("x", 0.0, 1.0)]), seed=0)
    searcher.ask(0), searcher.ask(1)
    searcher.observe(0, 1, 0.25)
    searcher.observe(1, 1, None)
    assert searcher.points == {0: {1: (0.0, 0.25)}, 1: {1: None}}
    with pytest.raises(ValueError, match="failed job"):
        searcher.observe(1, 2, None, P(0, 1.0))


# ------------------------------------------------------------------------ learning on synthetic problems
ZDT_SPACE = SearchSpace([Float(f"x{j}", 0.0, 1.0) for j in range(4)])


def zdt1(config: dict) -> tuple[float, float]:
    """ZDT1 (Zitzler et al. 2000) on 4 variables: the front is x1 = x2 = x3 = 0, f2 = 1 - sqrt(f1)."""
    f1 = config["x0"]
    g = 1.0 + 9.0 * (config["x1"] + config["x2"] + config["x3"]) / 3.0
    return f1, g * (1.0 - math.sqrt(f1 / g))


def front_distance(name: str, seed: int, n: int = 80, **options) -> float:
    """Mean distance from the front (g - 1) of the last half of ``n`` proposals, observing each at once."""
    searcher = build_searcher(name, ZDT_SPACE, seed=seed, **options)
    distances = []
    for trial_id in range(n):
        config = searcher.ask(trial_id)
        f1, f2 = zdt1(config)
        searcher.observe(trial_id, 1, f1, P(0.0, f1, f2))
        distances.append(9.0 * (config["x1"] + config["x2"] + config["x3"]) / 3.0)
    return float(np.mean(distances[n // 2:]))


def test_motpe_proposes_nearer_the_front_than_random_search() -> None:
    random = [front_distance("random", seed) for seed in range(4)]
    motpe = [front_distance("tpe", seed) for seed in range(4)]
    assert np.mean(motpe) < 0.5 * np.mean(random)  # measured 0.32; TPE on the first objective alone: 0.84
    assert max(motpe) < min(random)


BOX_SPACE = SearchSpace([Float("x", 0.0, 1.0), Float("y", 0.0, 1.0)])


def constrained(config: dict) -> Point:
    """Loss best at (1, 1), which is infeasible: feasible is x + y <= 0.6 (18% of the square)."""
    loss = (config["x"] - 1.0) ** 2 + (config["y"] - 1.0) ** 2
    violation = max(0.0, config["x"] + config["y"] - 0.6) / 0.6
    return P(violation, loss)


def feasible_share(name: str, seed: int, n: int = 60) -> float:
    searcher = build_searcher(name, BOX_SPACE, seed=seed)
    feasible = []
    for trial_id in range(n):
        point = constrained(searcher.ask(trial_id))
        searcher.observe(trial_id, 1, point.losses[0], point)
        feasible.append(point.feasible)
    return float(np.mean(feasible[n // 2:]))


def test_with_a_constraint_tpe_learns_where_the_feasible_region_is() -> None:
    random = [feasible_share("random", seed) for seed in range(4)]
    tpe = [feasible_share("tpe", seed) for seed in range(4)]
    assert np.mean(random) < 0.35
    assert np.mean(tpe) > 2 * np.mean(random) and min(tpe) > max(random)


def test_without_a_feasible_result_the_least_violating_are_good() -> None:
    searcher = TPESearcher(BOX_SPACE, seed=0, n_startup=4, gamma=0.25)
    for trial_id, (x, y) in enumerate([(0.9, 0.9), (0.5, 0.3), (0.8, 0.1), (0.7, 0.7)]):
        searcher.ask(trial_id)
        point = constrained({"x": x, "y": y})
        searcher.observe(trial_id, 1, point.losses[0], point)
    assert searcher.split() == ([1], [2, 3, 0])  # by violation, although trial 0 has the best loss


# ------------------------------------------------------------------------------------- through the tuner
OBJECTIVES = parse_objectives({"validation_error": "min", "n_params": "min"}, {"inference_ms": {"max": 8.0}})


class ZDTExecutor(FakeExecutor):
    """ZDT1 as validation_error and n_params, a bound on inference_ms; error improves with epochs."""

    def __init__(self, n_workers: int, crash_after: int | None = None) -> None:
        super().__init__(n_workers, lambda job: (COMPLETED, zdt1(job.config)[0] + 0.5 / job.resource, 1.0),
                         crash_after=crash_after)

    def wait(self):
        return [dataclasses.replace(r, metrics=self.metrics(r.job, r.value)) for r in super().wait()]

    @staticmethod
    def metrics(job: Job, value: float) -> dict[str, float]:
        f2 = zdt1(job.config)[1]
        return {"validation_error": value, "n_params": 1000.0 * f2 + 0.1 * job.config["x0"],
                "inference_ms": 10.0 * job.config["x3"]}


def make_tuner(scheduler_name: str, journal: Journal | None = None, resume: ResumeLog | None = None,
               crash_after: int | None = None):
    searcher = build_searcher("tpe", ZDT_SPACE, seed=5, n_startup=5)
    options = {} if scheduler_name == "fifo" else {"r_min": 1, "eta": 2}
    scheduler = build_scheduler(scheduler_name, searcher, 30, 4, **options)
    tuner = Tuner(scheduler, ZDTExecutor(1, crash_after), searcher=searcher, seed=5, journal=journal,
                  resume=resume, objectives=OBJECTIVES, fingerprint={"searcher": "tpe"})
    return tuner, searcher


@pytest.mark.parametrize("scheduler_name", ["fifo", "asha"])
def test_the_tuner_hands_each_result_point_and_a_resume_replays_the_same_decisions(tmp_path, scheduler_name) -> None:
    reference, reference_searcher = make_tuner(scheduler_name)
    expected = reference.run()
    for trial_id, by_resource in reference_searcher.points.items():  # the searcher heard the sweep's points
        for resource, point in by_resource.items():
            segment = next(s for s in expected.trials[trial_id].segments if s.resource == resource)
            assert point == OBJECTIVES.point(segment.metrics) and len(point) == 3
    assert any(not p.feasible for by_resource in reference_searcher.points.values() for p in by_resource.values())
    path = tmp_path / "journal.jsonl"
    crashed, _ = make_tuner(scheduler_name, journal=Journal(path), crash_after=18)
    with pytest.raises(SystemExit):
        crashed.run()
    resumed, searcher = make_tuner(scheduler_name, journal=Journal(path), resume=ResumeLog(Journal(path).read()))
    result = resumed.run()
    assert searcher.model_resource() is not None
    assert searcher.points == reference_searcher.points  # rebuilt from the journal's metrics, bit for bit
    assert {t: r.config for t, r in result.trials.items()} == {t: r.config for t, r in expected.trials.items()}
