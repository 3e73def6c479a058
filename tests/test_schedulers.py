"""Schedulers driven by a scripted searcher and scripted results (no Hydra, no training)."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable

import pytest

from hydra_hpo.schedulers import (
    SCHEDULERS,
    WAIT,
    ASHAScheduler,
    FIFOScheduler,
    HyperbandScheduler,
    HyperTuneScheduler,
    Scheduler,
    SuccessiveHalvingScheduler,
    build_scheduler,
    rung_levels,
)
from hydra_hpo.searchers.base import Searcher
from hydra_hpo.trial import COMPLETED, FAILED, PAUSED, STOPPED, Job, JobResult


class CountingSearcher(Searcher):
    """Suggests {"x": 0}, {"x": 1}, ... (``limit`` configurations, unlimited when None)."""

    def __init__(self, limit: int | None = None) -> None:
        super().__init__(space=None)  # type: ignore[arg-type]
        self.limit = limit
        self.count = 0

    def suggest(self) -> dict | None:
        if self.limit is not None and self.count >= self.limit:
            return None
        self.count += 1
        return {"x": self.count - 1}


def scrambled_loss(config: dict, resource: int) -> float:
    """A loss whose ranking of configurations is not their order; improves with resource."""
    return ((config["x"] * 37) % 11) / 11 + 1 / resource


def done(job: Job, loss: float | None) -> JobResult:
    if loss is None:
        return JobResult(job=job, status=FAILED, error="scripted failure")
    return JobResult(job=job, status=COMPLETED, value=loss)


class Run:
    """What a simulated sweep did: jobs in start order, results in arrival order, ended trials."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.results: list[JobResult] = []
        self.ended: list[int] = []
        self.finalized: list[int] = []


def simulate(
    scheduler: Scheduler,
    n_workers: int = 1,
    loss: Callable[[dict, int], float | None] = scrambled_loss,
    max_results: int | None = None,
) -> Run:
    """A tiny event loop: ``n_workers`` workers, a job takes ``epochs * (1 + x % 3)`` time units.

    Stops when the scheduler is done (or after ``max_results`` results), then calls ``finalize``.
    Checks on the way that an ended trial never runs again and that each trial resumes where it stopped.
    """
    run, running, clock, seq = Run(), [], 0.0, 0
    reached: dict[int, int] = {}
    while max_results is None or len(run.results) < max_results:
        decision = None
        while len(running) < n_workers:
            decision = scheduler.next_job()
            if decision is None or decision is WAIT:
                break
            job = decision
            assert job.trial_id not in run.ended, f"trial {job.trial_id} ran after it ended"
            assert job.previous_resource == reached.get(job.trial_id, 0)
            assert job.resource > job.previous_resource
            reached[job.trial_id] = job.resource
            run.jobs.append(job)
            heapq.heappush(running, (clock + job.epochs * (1 + job.config["x"] % 3), seq, job))
            seq += 1
        if not running:
            assert decision is None, "WAIT with nothing running would deadlock"
            break
        clock, _, job = heapq.heappop(running)
        result = done(job, loss(job.config, job.resource))
        run.results.append(result)
        run.ended += scheduler.on_result(result)
    run.finalized = scheduler.finalize()
    return run


def counts_by_resource(jobs: list[Job]) -> dict[int, int]:
    return dict(sorted(Counter(job.resource for job in jobs).items()))


# rung levels ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("r_min", "r_max", "eta", "expected"),
    [
        (2, 10, 2, [2, 4, 8, 10]),  # d2l 19.4
        (1, 81, 3, [1, 3, 9, 27, 81]),
        (1, 1, 2, [1]),
        (3, 10, 3, [3, 9, 10]),
        (5, 7, 2, [5, 7]),
        (1, 1000, 10, [1, 10, 100, 1000]),  # floating log10(1000) is 2.9999999999999996
        (1, 3**35, 3, [3**k for k in range(36)]),
    ],
)
def test_rung_levels(r_min: int, r_max: int, eta: int, expected: list[int]) -> None:
    assert rung_levels(r_min, r_max, eta) == expected


@pytest.mark.parametrize(
    ("r_min", "r_max", "eta", "message"),
    [
        (1, 10, 1, "hpo.eta=1: must be >= 2"),
        (0, 10, 2, "hpo.r_min=0: must be >= 1"),
        (11, 10, 2, "hpo.r_min=11: must be <= hpo.r_max=10"),
        (1, 10, 2.5, "hpo.eta=2.5: must be an integer"),
        (1, 10, True, "hpo.eta=True: must be an integer"),
    ],
)
def test_invalid_rung_settings(r_min, r_max, eta, message) -> None:
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(").replace(".", r"\.")):
        rung_levels(r_min, r_max, eta)
    for cls in (SuccessiveHalvingScheduler, HyperbandScheduler, ASHAScheduler):
        with pytest.raises(ValueError, match="hpo."):
            cls(CountingSearcher(), 4, r_min, r_max, eta)


# successive halving --------------------------------------------------------------------------


def test_successive_halving_two_d2l_rounds() -> None:
    scheduler = SuccessiveHalvingScheduler(CountingSearcher(), 16, r_min=2, r_max=10, eta=2)
    run = simulate(scheduler)
    assert scheduler.n_started == 16
    assert counts_by_resource(run.jobs) == {2: 16, 4: 8, 8: 4, 10: 2}
    for round_trials in (range(0, 8), range(8, 16)):
        jobs = [job for job in run.jobs if job.trial_id in round_trials]
        assert sum(job.epochs for job in jobs) == 34  # 16 + 8 + 8 + 2, continuing from checkpoints
        assert sum(job.resource for job in jobs) == 58  # what retraining from scratch would cost
    assert scheduler.next_job() is None


def test_successive_halving_promotes_the_best_and_resumes() -> None:
    scheduler = SuccessiveHalvingScheduler(CountingSearcher(), 8, r_min=2, r_max=10, eta=2)
    run = simulate(scheduler, n_workers=3)
    levels = [2, 4, 8, 10]
    for rung, level in enumerate(levels[:-1]):
        at_rung = {job.trial_id for job in run.jobs if job.resource == level}
        promoted = {job.trial_id for job in run.jobs if job.resource == levels[rung + 1]}
        best = sorted(at_rung, key=lambda t: scrambled_loss({"x": t}, level))[: len(at_rung) // 2]
        assert promoted == set(best)
    for job in run.jobs:
        index = levels.index(job.resource)
        assert job.previous_resource == (levels[index - 1] if index else 0)


def test_successive_halving_waits_for_the_whole_rung() -> None:
    scheduler = SuccessiveHalvingScheduler(CountingSearcher(), 8, r_min=2, r_max=10, eta=2)
    jobs = [scheduler.next_job() for _ in range(8)]
    assert [job.trial_id for job in jobs] == list(range(8))
    assert scheduler.next_job() is WAIT
    losses = [0.8, 0.1, 0.7, 0.2, 0.6, 0.3, 0.5, 0.4]
    for job, loss in zip(jobs[:7], losses[:7]):
        assert scheduler.on_result(done(job, loss)) == []
        assert scheduler.next_job() is WAIT
    assert scheduler.trial_status(0) is None  # still in the running
    # the last result completes the rung: the worst half ends, the best half continues from epoch 2
    assert scheduler.on_result(done(jobs[7], losses[7])) == [0, 2, 4, 6]
    assert [scheduler.trial_status(t) for t in range(8)] == [STOPPED, None] * 4
    promoted = [scheduler.next_job() for _ in range(4)]
    assert [(j.trial_id, j.previous_resource, j.resource) for j in promoted] == [
        (1, 2, 4),
        (3, 2, 4),
        (5, 2, 4),
        (7, 2, 4),
    ]
    assert scheduler.next_job() is WAIT


def test_successive_halving_never_promotes_failed_trials() -> None:
    scheduler = SuccessiveHalvingScheduler(CountingSearcher(), 4, r_min=1, r_max=4, eta=2)
    jobs = [scheduler.next_job() for _ in range(4)]
    assert scheduler.on_result(done(jobs[0], None)) == [0]  # a failure ends the trial at once
    assert scheduler.on_result(done(jobs[1], 0.9)) == []
    assert scheduler.on_result(done(jobs[2], 0.5)) == []
    # floor(4/2) = 2 places; the failed trial ranks last, so 0.9 is the one left out
    assert scheduler.on_result(done(jobs[3], 0.7)) == [1]
    promoted = [scheduler.next_job() for _ in range(2)]
    assert [(j.trial_id, j.previous_resource, j.resource) for j in promoted] == [(2, 1, 2), (3, 1, 2)]
    assert scheduler.next_job() is WAIT
    assert scheduler.on_result(done(promoted[0], None)) == [2]
    # the failed trial was the better one before; now the only survivor takes the single place
    assert scheduler.on_result(done(promoted[1], 0.3)) == []
    last = scheduler.next_job()
    assert (last.trial_id, last.previous_resource, last.resource) == (3, 2, 4)
    assert scheduler.on_result(done(last, None)) == [3]
    assert scheduler.next_job() is None  # the round is over and the budget is spent
    assert scheduler.finalize() == []
    assert [scheduler.trial_status(t) for t in range(4)] == [FAILED, STOPPED, FAILED, FAILED]


def test_successive_halving_round_where_every_trial_fails() -> None:
    scheduler = SuccessiveHalvingScheduler(CountingSearcher(), 8, r_min=1, r_max=4, eta=2)
    first = [scheduler.next_job() for _ in range(4)]
    assert [scheduler.on_result(done(job, None)) for job in first] == [[0], [1], [2], [3]]
    second = scheduler.next_job()  # nothing to promote: the next round starts
    assert (second.trial_id, second.resource, second.previous_resource) == (4, 1, 0)


def test_successive_halving_last_round_starts_only_the_remaining_budget() -> None:
    scheduler = SuccessiveHalvingScheduler(CountingSearcher(), 10, r_min=2, r_max=10, eta=2)
    run = simulate(scheduler, n_workers=2)
    # round 1: 8, 4, 2, 1; round 2 has 2 configurations and keeps at least one at each rung
    assert counts_by_resource(run.jobs) == {2: 10, 4: 5, 8: 3, 10: 2}


def test_successive_halving_stops_when_the_searcher_is_spent() -> None:
    scheduler = SuccessiveHalvingScheduler(CountingSearcher(limit=5), 16, r_min=2, r_max=10, eta=2)
    run = simulate(scheduler)
    assert scheduler.n_started == 5
    assert counts_by_resource(run.jobs) == {2: 5, 4: 2, 8: 1, 10: 1}


# hyperband -----------------------------------------------------------------------------------


def test_hyperband_brackets_match_the_paper() -> None:
    scheduler = HyperbandScheduler(CountingSearcher(), 100, r_min=1, r_max=81, eta=3)
    assert scheduler.brackets() == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]


def test_hyperband_first_bracket_is_a_successive_halving_round() -> None:
    # r_max / r_min = 5 is no power of 2: r_max is a rung of its own, in every bracket
    scheduler = HyperbandScheduler(CountingSearcher(), 100, r_min=2, r_max=10, eta=2)
    assert scheduler.brackets() == [
        [(8, 2), (4, 4), (2, 8), (1, 10)],
        [(6, 4), (3, 8), (1, 10)],
        [(4, 8), (2, 10)],
        [(4, 10)],
    ]


@pytest.mark.parametrize("n_workers", [1, 4])
def test_hyperband_runs_brackets_in_turn_until_the_budget_is_spent(n_workers: int) -> None:
    scheduler = HyperbandScheduler(CountingSearcher(), 20, r_min=1, r_max=9, eta=3)
    table = scheduler.brackets()
    assert table == [[(9, 1), (3, 3), (1, 9)], [(5, 3), (1, 9)], [(3, 9)]]
    run = simulate(scheduler, n_workers=n_workers)
    assert scheduler.n_started == 20
    assert len({job.trial_id for job in run.jobs}) == 20
    # one full cycle (9 + 5 + 3 trials), then the first bracket again with the 3 trials left
    spans = [range(0, 9), range(9, 14), range(14, 17), range(17, 20)]
    expected = [*table, [(3, 1), (1, 3), (1, 9)]]
    for span, bracket in zip(spans, expected):
        jobs = [job for job in run.jobs if job.trial_id in span]
        assert counts_by_resource(jobs) == {r: n for n, r in bracket}
        first = min(job.resource for job in jobs)
        assert all(job.previous_resource == 0 for job in jobs if job.resource == first)


def test_hyperband_runs_one_bracket_at_a_time() -> None:
    scheduler = HyperbandScheduler(CountingSearcher(), 20, r_min=1, r_max=9, eta=3)
    run = simulate(scheduler, n_workers=8)
    order = [job.trial_id for job in run.jobs]
    starts = [order.index(t) for t in (0, 9, 14, 17)]
    spans = [(0, 9), (9, 14), (14, 17)]
    finishes = [max(i for i, t in enumerate(order) if lo <= t < hi) for lo, hi in spans]
    assert all(finish < start for finish, start in zip(finishes, starts[1:]))


# ASHA: promotion type ------------------------------------------------------------------------


def test_asha_promotion_hand_checked() -> None:
    scheduler = ASHAScheduler(CountingSearcher(), 5, r_min=1, r_max=4, eta=2)  # rungs 1, 2, 4
    t0, t1 = scheduler.next_job(), scheduler.next_job()
    assert (t0.trial_id, t0.resource, t1.trial_id, t1.resource) == (0, 1, 1, 1)
    assert scheduler.on_result(done(t0, 0.5)) == []
    t2 = scheduler.next_job()  # one result: floor(1/2) = 0 promotable, so a new configuration
    assert (t2.trial_id, t2.resource) == (2, 1)
    assert scheduler.on_result(done(t1, 0.3)) == []
    p1 = scheduler.next_job()  # losses 0.5, 0.3: the 0.3 one is the top floor(2/2) = 1
    assert (p1.trial_id, p1.previous_resource, p1.resource) == (1, 1, 2)
    assert scheduler.on_result(done(t2, 0.4)) == []
    t3 = scheduler.next_job()  # 3 results, top floor(3/2) = 1 is trial 1, already promoted
    assert (t3.trial_id, t3.resource) == (3, 1)
    assert scheduler.on_result(done(t3, 0.2)) == []
    p3 = scheduler.next_job()  # 4 results, top 2 = trials 3 and 1; 3 is not promoted yet
    assert (p3.trial_id, p3.previous_resource, p3.resource) == (3, 1, 2)
    assert scheduler.on_result(done(p1, 0.25)) == []
    assert scheduler.on_result(done(p3, 0.15)) == []
    # rung 2 has 2 results: its top 1 (trial 3) goes to r_max before anything from rung 1
    top = scheduler.next_job()
    assert (top.trial_id, top.previous_resource, top.resource) == (3, 2, 4)
    t4 = scheduler.next_job()
    assert (t4.trial_id, t4.resource) == (4, 1)
    assert scheduler.on_result(done(top, 0.1)) == [3]  # reached r_max: finished
    assert scheduler.next_job() is WAIT  # budget spent, but trial 4 may still earn a promotion
    assert scheduler.on_result(done(t4, 0.35)) == []
    # rung 1: 0.5, 0.3, 0.4, 0.2, 0.35 -> top 2 are trials 3 and 1, both promoted: nothing to do
    assert scheduler.next_job() is None
    assert scheduler.finalize() == [0, 1, 2, 4]
    assert scheduler.finalize() == []
    # promotion never stops a trial: those left behind at a rung were paused there
    assert [scheduler.trial_status(t) for t in range(5)] == [PAUSED, PAUSED, PAUSED, COMPLETED, PAUSED]


def test_asha_promotion_skips_failed_trials() -> None:
    scheduler = ASHAScheduler(CountingSearcher(), 3, r_min=1, r_max=2, eta=2)
    t0, t1 = scheduler.next_job(), scheduler.next_job()
    assert scheduler.on_result(done(t0, None)) == [0]
    assert scheduler.on_result(done(t1, 0.9)) == []
    job = scheduler.next_job()  # the failed trial ranks last, so 0.9 is the top 1 of 2
    assert (job.trial_id, job.resource) == (1, 2)


def test_asha_promotion_keeps_promoting_after_the_budget_is_spent() -> None:
    scheduler = ASHAScheduler(CountingSearcher(), 9, r_min=1, r_max=9, eta=3)
    run = simulate(scheduler, n_workers=3)
    assert scheduler.n_started == 9
    # at the end every trial in the final top third of a rung has been promoted from it
    for level, next_level in [(1, 3), (3, 9)]:
        losses = {r.job.trial_id: r.value for r in run.results if r.job.resource == level}
        top = sorted(losses, key=lambda t: (losses[t], t))[: len(losses) // 3]
        promoted = {job.trial_id for job in run.jobs if job.resource == next_level}
        assert top and set(top) <= promoted
    assert any(job.resource == 9 for job in run.jobs)


def test_asha_promotion_needs_eta_results_at_a_rung() -> None:
    scheduler = ASHAScheduler(CountingSearcher(), 8, r_min=1, r_max=9, eta=3)
    run = simulate(scheduler)
    # 8 results at rung 1 give floor(8/3) = 2 promotions; 2 results at rung 3 give none
    assert counts_by_resource(run.jobs) == {1: 8, 3: 2}
    assert run.ended == [] and run.finalized == list(range(8))


# ASHA: stopping type -------------------------------------------------------------------------


def test_asha_stopping_hand_checked() -> None:
    scheduler = ASHAScheduler(CountingSearcher(), 6, r_min=1, r_max=4, eta=2, type="stopping")

    def step(job: Job) -> tuple[int, int, int]:
        return job.trial_id, job.previous_resource, job.resource

    t0 = scheduler.next_job()
    assert scheduler.on_result(done(t0, 0.5)) == []  # first at its rung: continues
    c0 = scheduler.next_job()  # the continuation goes before a new configuration
    assert step(c0) == (0, 1, 2)
    t1 = scheduler.next_job()
    assert step(t1) == (1, 0, 1)
    assert scheduler.on_result(done(t1, 0.7)) == [1]  # 2 results: only the best 1 continues
    t2 = scheduler.next_job()
    assert scheduler.on_result(done(t2, 0.4)) == []  # best of 3
    assert scheduler.on_result(done(c0, 0.45)) == []  # first at rung 2: continues
    c2, c0b = scheduler.next_job(), scheduler.next_job()  # continuations in arrival order
    assert [step(c2), step(c0b)] == [(2, 1, 2), (0, 2, 4)]
    t3 = scheduler.next_job()
    assert scheduler.on_result(done(t3, 0.45)) == []  # 4 results, top 2: only 0.4 is better
    c3 = scheduler.next_job()
    assert step(c3) == (3, 1, 2)
    t4 = scheduler.next_job()
    assert scheduler.on_result(done(t4, 0.45)) == []  # 5 results, top 2: a tie counts in its favour
    c4 = scheduler.next_job()
    assert step(c4) == (4, 1, 2)
    t5 = scheduler.next_job()
    assert step(t5) == (5, 0, 1)
    assert scheduler.on_result(done(t5, 0.46)) == [5]  # 6 results, top 3: 0.4, 0.45, 0.45 are better
    assert scheduler.on_result(done(c0b, 0.2)) == [0]  # reached r_max
    assert scheduler.on_result(done(c2, 0.5)) == [2]  # 2 at rung 2: trial 0's 0.45 is the top 1
    assert scheduler.next_job() is WAIT  # budget spent; trials 3 and 4 are still running
    assert scheduler.finalize() == [3, 4]  # the sweep stopped with both running
    statuses = [scheduler.trial_status(t) for t in range(6)]
    assert statuses == [COMPLETED, STOPPED, STOPPED, PAUSED, PAUSED, STOPPED]


def test_asha_stopping_with_failures_full_run() -> None:
    def loss(config: dict, resource: int) -> float | None:
        return None if (config["x"] + resource) % 5 == 0 else scrambled_loss(config, resource)

    scheduler = ASHAScheduler(CountingSearcher(), 30, r_min=1, r_max=9, eta=3, type="stopping")
    run = simulate(scheduler, n_workers=4, loss=loss)
    failed = {r.job.trial_id for r in run.results if not r.ok}
    assert failed and failed <= set(run.ended)  # simulate() checks that they never ran again
    stopped = set(run.ended) - failed - {r.job.trial_id for r in run.results if r.job.resource == 9}
    assert stopped  # some trials were stopped below r_max for their rank


def test_asha_unknown_type() -> None:
    with pytest.raises(ValueError, match="hpo.type='pause': must be one of promotion, stopping"):
        ASHAScheduler(CountingSearcher(), 4, 1, 4, 2, type="pause")


# contracts for every multi-fidelity scheduler ------------------------------------------------

MULTI_FIDELITY = {
    "successive_halving": lambda: SuccessiveHalvingScheduler(CountingSearcher(), 40, 1, 27, 3),
    "hyperband": lambda: HyperbandScheduler(CountingSearcher(), 40, 1, 27, 3),
    "asha": lambda: ASHAScheduler(CountingSearcher(), 40, 1, 27, 3),
    "asha-stopping": lambda: ASHAScheduler(CountingSearcher(), 40, 1, 27, 3, type="stopping"),
    "hypertune": lambda: HyperTuneScheduler(CountingSearcher(), 40, 1, 27, 3),
    "hypertune-stopping": lambda: HyperTuneScheduler(CountingSearcher(), 40, 1, 27, 3, type="stopping"),
}


def flaky_loss(config: dict, resource: int) -> float | None:
    return None if config["x"] % 7 == 3 and resource > 1 else scrambled_loss(config, resource)


@pytest.mark.parametrize("name", MULTI_FIDELITY)
@pytest.mark.parametrize("n_workers", [1, 3])
@pytest.mark.parametrize("max_results", [None, 11])
def test_every_trial_is_reported_ended_exactly_once(name: str, n_workers: int, max_results) -> None:
    scheduler = MULTI_FIDELITY[name]()
    run = simulate(scheduler, n_workers=n_workers, loss=flaky_loss, max_results=max_results)
    # synchronous schedulers create a round's trials at once, so some may end before their first job
    assert {job.trial_id for job in run.jobs} <= set(range(scheduler.n_started))
    reported = run.ended + run.finalized
    assert sorted(reported) == sorted(set(reported)) == list(range(scheduler.n_started))
    if max_results is None:
        assert scheduler.n_started == 40
        assert scheduler.next_job() is None
        at_top = {r.job.trial_id for r in run.results if r.job.resource == 27 and r.ok}
        assert at_top and at_top <= set(run.ended)


def expected_status(run: Run, trial_id: int, r_max: int) -> str:
    """How a trial of a simulated run ended, judged from its results alone."""
    results = [r for r in run.results if r.job.trial_id == trial_id]
    if results and not results[-1].ok:
        return FAILED
    if results and results[-1].job.resource == r_max:
        return COMPLETED
    return PAUSED if trial_id in run.finalized else STOPPED


@pytest.mark.parametrize("name", MULTI_FIDELITY)
@pytest.mark.parametrize("n_workers", [1, 3])
@pytest.mark.parametrize("max_results", [None, 11])
def test_every_trial_says_how_it_ended(name: str, n_workers: int, max_results) -> None:
    scheduler = MULTI_FIDELITY[name]()
    run = simulate(scheduler, n_workers=n_workers, loss=flaky_loss, max_results=max_results)
    statuses = {t: scheduler.trial_status(t) for t in range(scheduler.n_started)}
    assert statuses == {t: expected_status(run, t, 27) for t in statuses}
    counts = Counter(statuses.values())
    if max_results is None:
        assert counts[COMPLETED] >= 1 and counts[FAILED] >= 1
        if name in ("asha", "hypertune"):  # promotion type: trials wait at their rung instead of being stopped
            assert counts[STOPPED] == 0 and counts[PAUSED] >= 1
        else:  # a finished run leaves nothing waiting
            assert counts[STOPPED] >= 1 and counts[PAUSED] == 0


def test_successive_halving_stops_trials_at_each_rung() -> None:
    scheduler = SuccessiveHalvingScheduler(CountingSearcher(), 9, r_min=1, r_max=9, eta=3)
    run = simulate(scheduler, n_workers=2)
    reached = {job.trial_id: job.resource for job in run.jobs}
    ended = Counter((scheduler.trial_status(t), reached[t]) for t in range(9))
    # 9 trials at 1 epoch, the best 3 go on to 3 epochs, the best of those to 9
    assert ended == {(STOPPED, 1): 6, (STOPPED, 3): 2, (COMPLETED, 9): 1}


def test_fifo_trial_status() -> None:
    scheduler = FIFOScheduler(CountingSearcher(), 2, max_resource=5)
    first, second = scheduler.next_job(), scheduler.next_job()
    assert scheduler.on_result(done(first, 0.3)) == [0]
    assert scheduler.on_result(done(second, None)) == [1]
    assert [scheduler.trial_status(0), scheduler.trial_status(1)] == [COMPLETED, FAILED]


@pytest.mark.parametrize("name", MULTI_FIDELITY)
def test_deterministic(name: str) -> None:
    first = simulate(MULTI_FIDELITY[name](), n_workers=3)
    second = simulate(MULTI_FIDELITY[name](), n_workers=3)
    assert first.jobs == second.jobs and first.ended == second.ended


# registry ------------------------------------------------------------------------------------


def test_build_scheduler_defaults_r_max_to_max_resource() -> None:
    for name in ("successive_halving", "hyperband", "asha"):
        scheduler = build_scheduler(name, CountingSearcher(), 10, 27, r_min=1, eta=3, r_max=None)
        assert isinstance(scheduler, SCHEDULERS[name])
        assert scheduler.levels == [1, 3, 9, 27]
    scheduler = build_scheduler(
        "asha", CountingSearcher(), 10, 27, r_min=3, r_max=9, eta=3, type="stopping"
    )
    assert (scheduler.levels, scheduler.type) == ([3, 9], "stopping")
    fifo = build_scheduler("fifo", CountingSearcher(), 10, 27)
    assert isinstance(fifo, FIFOScheduler) and fifo.max_resource == 27


def test_build_scheduler_errors() -> None:
    known = "fifo, successive_halving, hyperband, asha"
    with pytest.raises(ValueError, match=f"hpo.scheduler='bohb': unknown, choose one of {known}"):
        build_scheduler("bohb", CountingSearcher(), 10, 27)
    with pytest.raises(ValueError, match="hpo.grace=2: not an option of hpo.scheduler=asha"):
        build_scheduler("asha", CountingSearcher(), 10, 27, r_min=1, eta=3, grace=2)
    with pytest.raises(ValueError, match="hpo.eta=3: not an option of hpo.scheduler=fifo"):
        build_scheduler("fifo", CountingSearcher(), 10, 27, eta=3)
    with pytest.raises(ValueError, match="hpo.eta: required by hpo.scheduler=hyperband"):
        build_scheduler("hyperband", CountingSearcher(), 10, 27, r_min=1)
