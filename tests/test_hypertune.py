"""The Hyper-Tune-style scheduler: Hyperband's bracket weights before any evidence, brackets turned off when
a rung's ranking disagrees with the rungs above it, kept when it agrees; through the simulator and the
preset."""

from __future__ import annotations

import numpy as np
import pytest

from hydra_hpo.errors import SettingsError
from hydra_hpo.schedulers import WAIT, HyperTuneScheduler, build_scheduler
from hydra_hpo.schedulers.hypertune import tau_null_se
from hydra_hpo.simulate import compose, simulate
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.table import Table
from hydra_hpo.trial import COMPLETED, STOPPED, JobResult
from test_schedulers import CountingSearcher, simulate as run_scheduler


def quality(config: dict) -> float:
    """A configuration's true loss, scrambled against its id."""
    return ((config["x"] * 37) % 101) / 101


def anti_correlated(config: dict, resource: int) -> float:
    """Rung 1 ranks the configurations backwards; from 3 epochs on they rank by their true loss."""
    return 2.0 - quality(config) if resource == 1 else quality(config) + 1 / resource


def consistent(config: dict, resource: int) -> float:
    return quality(config) + 1 / resource


def start_brackets(run, levels: list[int]) -> list[int]:
    """The bracket (index of its starting rung) of every trial, in start order."""
    return [levels.index(job.resource) for job in run.jobs if job.previous_resource == 0]


def test_before_any_result_the_weights_are_hyperbands_bracket_sizes() -> None:
    scheduler = HyperTuneScheduler(CountingSearcher(), 10, r_min=1, r_max=27, eta=3)
    assert scheduler.levels == [1, 3, 9, 27]
    # synchronous Hyperband starts 27, 12, 6 and 4 configurations in brackets s = 3, 2, 1, 0
    assert scheduler.bracket_weights() == pytest.approx(np.array([27, 12, 6, 4]) / 49)
    assert scheduler.rung_agreement() == [None] * 4


def test_a_rung_that_ranks_backwards_loses_its_bracket() -> None:
    scheduler = HyperTuneScheduler(CountingSearcher(), 300, r_min=1, r_max=27, eta=3)
    run = run_scheduler(scheduler, n_workers=4, loss=anti_correlated)
    agreement = scheduler.rung_agreement()
    assert agreement[0] is not None and agreement[0][1] == pytest.approx(-1.0)
    assert agreement[1] is not None and agreement[1][1] == pytest.approx(1.0)  # rungs 3, 9, 27 agree
    weights = scheduler.bracket_weights()
    assert weights[0] == 0.0 and weights[1:].sum() == pytest.approx(1.0)
    # once the evidence is in, no new trial starts at 1 epoch; the other brackets keep Hyperband's ratios
    brackets = start_brackets(run, scheduler.levels)
    assert len(brackets) == 300 and 0 not in brackets[-100:]
    assert weights[1:] == pytest.approx(np.array([12, 6, 4]) / 22)


def test_rungs_that_agree_keep_hyperbands_weights() -> None:
    scheduler = HyperTuneScheduler(CountingSearcher(), 300, r_min=1, r_max=27, eta=3)
    run = run_scheduler(scheduler, n_workers=4, loss=consistent)
    assert all(a is not None and a[1] == pytest.approx(1.0) for a in scheduler.rung_agreement()[:-1])
    assert scheduler.bracket_weights() == pytest.approx(np.array([27, 12, 6, 4]) / 49)
    brackets = start_brackets(run, scheduler.levels)
    assert brackets.count(0) > brackets.count(3)  # the cheap bracket still starts the most trials


def test_a_few_noisy_pairs_do_not_turn_a_bracket_off() -> None:
    """Trust is tau plus its standard error for n unrelated pairs (capped to [0, 1]): a rung whose tau is 0 on
    6 pairs keeps part of its weight; tau 0 on 60 pairs keeps much less."""
    assert tau_null_se(6) == pytest.approx(np.sqrt(2 * 17 / (9 * 6 * 5)))
    assert tau_null_se(6) > 0.3 > 0.1 > tau_null_se(60)


def test_min_pairs_is_checked_and_hypertune_is_registered() -> None:
    scheduler = build_scheduler("hypertune", CountingSearcher(), 10, 20, r_min=1, eta=3)
    assert isinstance(scheduler, HyperTuneScheduler) and scheduler.levels == [1, 3, 9, 20]
    with pytest.raises(SettingsError, match="hpo.min_pairs=2: must be >= 3"):
        build_scheduler("hypertune", CountingSearcher(), 10, 20, r_min=1, eta=3, min_pairs=2)
    with pytest.raises(SettingsError, match="hpo.type='pause': must be one of promotion, stopping"):
        build_scheduler("hypertune", CountingSearcher(), 10, 20, r_min=1, eta=3, type="pause")
    assert build_scheduler("hypertune", CountingSearcher(), 10, 20, r_min=1, eta=3, type="stopping").type == "stopping"


def test_stopping_type_continues_a_trial_by_its_rank_in_its_bracket_and_rung() -> None:
    """type=stopping: after each result below r_max the trial either continues to the next rung at once or
    stops, by ASHA's stopping rule over the results its bracket has at that rung so far (checked against
    the rule replayed over the results in arrival order); nothing waits for a promotion."""
    scheduler = HyperTuneScheduler(CountingSearcher(), 120, r_min=1, r_max=27, eta=3, type="stopping")
    run = run_scheduler(scheduler, n_workers=4, loss=consistent)
    levels = scheduler.levels
    bracket = dict(zip([job.trial_id for job in run.jobs if job.previous_resource == 0],
                       start_brackets(run, levels)))
    assert len(set(bracket.values())) >= 3  # trials started in several brackets
    continued = {(job.trial_id, job.previous_resource) for job in run.jobs if job.previous_resource > 0}
    seen: dict[tuple[int, int], dict[int, float]] = {}
    decisions = []
    for result in run.results:
        trial_id, resource = result.job.trial_id, result.job.resource
        if resource == levels[-1]:
            continue
        losses = seen.setdefault((bracket[trial_id], resource), {})
        losses[trial_id] = result.value
        better = sum(1 for other in losses.values() if other < result.value)
        expected = better < max(1, len(losses) // 3)
        decisions.append(expected)
        assert ((trial_id, resource) in continued) == expected, (trial_id, resource)
    assert True in decisions and False in decisions
    assert run.finalized == []  # a finished run leaves no trial waiting
    statuses = {scheduler.trial_status(t) for t in range(120)}
    assert statuses == {COMPLETED, STOPPED}


def backwards_table(rows: int = 120, epochs: int = 9) -> Table:
    """Epoch 1 ranks the rows backwards; from epoch 2 on they rank by (x - 0.3)^2."""
    xs = np.linspace(0.0, 1.0, rows)
    errors = [[1.5 - (x - 0.3) ** 2 if e == 1 else (x - 0.3) ** 2 + 1.0 / e for e in range(1, epochs + 1)]
              for x in xs]
    elapsed = [[0.1 * e for e in range(1, epochs + 1)] for _ in xs]
    return Table([{"x": float(x)} for x in xs], errors, elapsed)


def test_preset_in_the_simulator_moves_off_a_misleading_first_epoch() -> None:
    """hpo=hypertune (TPE in the adaptive brackets) on a table whose first epoch misleads: the sweep is
    the same for the same seed, and its late trials start above 1 epoch."""
    hpo = compose(["hpo=hypertune"])["hpo"]
    space = SearchSpace([Float("x", 0.0, 1.0)])
    table = backwards_table()
    runs = [simulate(hpo, space, table, n_workers=3, seed=1, n_trials=150, job_overhead_seconds=0.05)
            for _ in range(2)]
    first, second = runs
    assert first.extra["assignments"] == second.extra["assignments"]
    # each trial's first segment starts at its bracket's rung; a trial paused at the end may have none
    starts = [record.segments[0].resource for _, record in sorted(first.trials.items()) if record.segments]
    assert len(starts) >= 140
    assert starts[:60].count(1) > starts[-60:].count(1) == 0
    assert first.best.value < 0.2  # it found the good region despite the first epoch


def finish(scheduler: HyperTuneScheduler, job, loss: float, overhead: float, clock: float,
           later_overhead: float | None = None) -> float:
    """Report ``job`` as taking ``overhead + epochs`` seconds from ``clock`` (``later_overhead + epochs`` for a
    trial's later job, when given); returns the new clock."""
    if later_overhead is not None and job.previous_resource > 0:
        overhead = later_overhead
    end = clock + overhead + job.epochs
    scheduler.on_result(JobResult(job=job, status=COMPLETED, value=loss, started=clock, finished=end))
    return end


@pytest.mark.parametrize("overhead", [0.0, 2.0])
def test_job_overhead_is_measured_and_shifts_weight_to_brackets_with_fewer_jobs(overhead: float) -> None:
    """Jobs that cost ``overhead + epochs`` seconds: the fitted overhead is ``overhead`` epochs; without it
    the weights stay Hyperband's; with it, each bracket's size is scaled by its epochs per trial over its
    epochs plus overheads per trial (bracket 0 over levels 1, 3, 9: 1 + 2/3 + 6/9 epochs in 1 + 1/3 + 1/9
    jobs)."""
    scheduler = HyperTuneScheduler(CountingSearcher(), 40, r_min=1, r_max=9, eta=3)
    clock = 0.0
    while (job := scheduler.next_job()) is not None and job is not WAIT:
        clock = finish(scheduler, job, consistent(job.config, job.resource), overhead, clock)
    assert scheduler.job_overhead_epochs() == pytest.approx((overhead, overhead))
    epochs = np.array([1 + 2 / 3 + 6 / 9, 3 + 6 / 3, 9])
    jobs = np.array([1 + 1 / 3 + 1 / 9, 1 + 1 / 3, 1])
    assert scheduler.cost_correction() == pytest.approx(epochs / (epochs + overhead * jobs))
    hyperband = np.array([9, 5, 3]) / 17  # bracket sizes ceil(3/(s+1) * 3**s), s = 2, 1, 0
    weights = scheduler.bracket_weights()  # every rung agrees (tau 1), so only the cost moves them
    if overhead == 0.0:
        assert weights == pytest.approx(hyperband)
    else:
        assert weights[0] < hyperband[0] and weights[2] > hyperband[2]


def test_a_promotion_that_continues_the_waiting_process_is_charged_its_own_overhead() -> None:
    """With keep-alive a promotion continues the trial's job process: first jobs cost ``2 + epochs``
    seconds, later ones ``0.1 + epochs``. Both overheads are measured, and a bracket is charged one start-up
    per trial and the small overhead per promotion (the old single intercept mixed the two)."""
    scheduler = HyperTuneScheduler(CountingSearcher(), 40, r_min=1, r_max=9, eta=3)
    clock = 0.0
    while (job := scheduler.next_job()) is not None and job is not WAIT:
        clock = finish(scheduler, job, consistent(job.config, job.resource), 2.0, clock, later_overhead=0.1)
    assert scheduler.job_overhead_epochs() == pytest.approx((2.0, 0.1))
    epochs = np.array([1 + 2 / 3 + 6 / 9, 3 + 6 / 3, 9])
    promotions = np.array([1 / 3 + 1 / 9, 1 / 3, 0])
    assert scheduler.cost_correction() == pytest.approx(epochs / (epochs + 2.0 + 0.1 * promotions))


def test_no_overhead_is_fitted_before_job_lengths_determine_it() -> None:
    """Only first jobs of one length: the start-up and the per-epoch cost cannot be told apart."""
    scheduler = HyperTuneScheduler(CountingSearcher(), 40, r_min=1, r_max=9, eta=3)
    assert scheduler.job_overhead_epochs() == (0.0, 0.0)
    job = scheduler.next_job()
    finish(scheduler, job, 0.5, 2.0, 0.0)
    assert scheduler.job_overhead_epochs() == (0.0, 0.0)
    assert scheduler.cost_correction() == pytest.approx(np.ones(3))
