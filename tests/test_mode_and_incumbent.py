"""hpo.mode=max through the multi-fidelity schedulers, and the incumbent when an earlier epoch beats the last
(the tuner with a fake executor: no Hydra, no training)."""

from __future__ import annotations

import pytest

from fakes import FakeExecutor
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import build_searcher
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.trial import COMPLETED, Job
from hydra_hpo.tuner import Tuner

SPACE = SearchSpace({"x": Float("x", 0.0, 1.0)})
R_MAX = 4  # rungs 1, 2, 4 with r_min=1, eta=2

SCHEDULERS = [
    ("successive_halving", {}),
    ("hyperband", {}),
    ("asha", {"type": "promotion"}),
    ("asha", {"type": "stopping"}),
]
IDS = ["successive_halving", "hyperband", "asha-promotion", "asha-stopping"]


def error(job: Job, epoch: int) -> float:
    """A validation error whose ranking of configurations is not their order; improves with epochs."""
    x = float(job.config["x"])
    return (x - 0.3) ** 2 + 1.0 / epoch


def seconds_per_epoch(job: Job) -> float:
    return 1.0 + int(float(job.config["x"]) * 1000) % 3  # unequal job lengths: results arrive out of order


def as_error(job: Job) -> tuple:
    curve = [error(job, epoch) for epoch in range(1, job.resource + 1)]
    return COMPLETED, curve[-1], seconds_per_epoch(job), curve


def as_accuracy(job: Job) -> tuple:
    """The same runs reported as an accuracy (higher is better): 2 - error."""
    curve = [2.0 - error(job, epoch) for epoch in range(1, job.resource + 1)]
    return COMPLETED, curve[-1], seconds_per_epoch(job), curve


def run(scheduler: str, options: dict, outcome, mode: str, n_trials: int = 10, workers: int = 1):
    searcher = build_searcher("random", SPACE, seed=7)
    rungs = {} if scheduler == "fifo" else {"r_min": 1, "eta": 2}
    sched = build_scheduler(scheduler, searcher, n_trials, R_MAX, **rungs, **options)
    executor = FakeExecutor(workers, outcome)
    return Tuner(sched, executor, seed=7, mode=mode).run(), executor


def decisions(executor: FakeExecutor) -> list[tuple[int, int, int]]:
    return [(job.trial_id, job.previous_resource, job.resource) for job in executor.submitted]


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize(("scheduler", "options"), SCHEDULERS, ids=IDS)
def test_mode_max_makes_the_decisions_of_mode_min_on_the_mirrored_metric(scheduler, options, workers):
    low, low_exec = run(scheduler, options, as_error, "min", workers=workers)
    high, high_exec = run(scheduler, options, as_accuracy, "max", workers=workers)
    assert any(prev > 0 for _, prev, _ in decisions(high_exec)), "nothing was promoted"
    # same promotions and stops in the same order: max ranks by the highest accuracy as min by the lowest error
    assert decisions(high_exec) == decisions(low_exec)
    assert high.best.trial_id == low.best.trial_id and high.best.resource == low.best.resource
    assert high.best.value == pytest.approx(2.0 - low.best.value)
    assert high.best.value == max(2.0 - error(job, job.resource) for job in high_exec.submitted)


@pytest.mark.parametrize(("scheduler", "options"), SCHEDULERS, ids=IDS)
def test_mode_max_promotes_the_highest_and_never_the_lowest(scheduler, options):
    outcome, executor = run(scheduler, options, as_accuracy, "max")
    first_rung = {job.trial_id: 2.0 - error(job, 1) for job in executor.submitted if job.resource == 1}
    assert len(first_rung) >= 4
    reached = {}
    for job in executor.submitted:
        reached[job.trial_id] = max(reached.get(job.trial_id, 0), job.resource)
    best = max(first_rung, key=first_rung.get)
    worst = min(first_rung, key=first_rung.get)
    assert reached[best] == R_MAX  # the highest accuracy goes all the way
    # the incumbent is the highest accuracy reported (Hyperband's other brackets start trials above rung 1)
    assert outcome.best.value == max(2.0 - error(job, job.resource) for job in executor.submitted)
    if options.get("type") != "stopping":  # (stopping ASHA continues whichever trial reports first at a rung)
        assert reached[worst] == 1  # the lowest accuracy is never promoted


# the incumbent: the best metric after any epoch a job trained, not only its last --------------------------


def scripted(curves: dict[int, list[float]]):
    """Trial ``t`` follows ``curves[t]`` (one value per epoch); a job reports the curve up to its resource."""
    def outcome(job: Job) -> tuple:
        curve = curves[job.trial_id][: job.resource]
        return COMPLETED, curve[-1], 1.0, curve
    return outcome


ERRORS = {  # trial 0 is best at epoch 2 (0.2), trial 1 has the best last epoch (0.3)
    0: [0.5, 0.2, 0.3, 0.4],
    1: [0.6, 0.5, 0.35, 0.3],
    2: [0.9, 0.8, 0.7, 0.6],
    3: [0.95, 0.9, 0.85, 0.8],
}


@pytest.mark.parametrize("mode", ["min", "max"])
def test_incumbent_is_an_earlier_epoch_when_it_beats_the_last(mode):
    curves = ERRORS if mode == "min" else {t: [1.0 - v for v in c] for t, c in ERRORS.items()}
    outcome, _ = run("fifo", {}, scripted(curves), mode, n_trials=4, workers=2)
    assert outcome.best.trial_id == 0 and outcome.best.resource == 2
    assert outcome.best.value == pytest.approx(0.2 if mode == "min" else 0.8)
    # the trial's own record keeps its last epoch
    assert outcome.trials[0].value == pytest.approx(0.4 if mode == "min" else 0.6)


@pytest.mark.parametrize("mode", ["min", "max"])
def test_incumbent_inside_a_promoted_segment(mode):
    # successive halving, rungs 1, 2, 4: trial 0 leads at every rung and is promoted to 4; its best epoch is 3,
    # inside its last segment (epochs 3-4), and beats every epoch of every trial
    errors = {0: [0.5, 0.4, 0.1, 0.3], 1: [0.6, 0.45, 0.4, 0.35], 2: [0.7, 0.6, 0.5, 0.4], 3: [0.8, 0.7, 0.6, 0.5]}
    curves = errors if mode == "min" else {t: [1.0 - v for v in c] for t, c in errors.items()}
    outcome, executor = run("successive_halving", {}, scripted(curves), mode, n_trials=4)
    assert (0, 2, 4) in decisions(executor)
    assert outcome.best.trial_id == 0 and outcome.best.resource == 3
    assert outcome.best.value == pytest.approx(0.1 if mode == "min" else 0.9)
