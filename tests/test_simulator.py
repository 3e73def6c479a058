"""The simulated executor and simulate(): hand-computed schedules, determinism, budgets, artifacts."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from hydra_hpo.executors.simulator import Assignment, SimulatedExecutor
from hydra_hpo.journal import Journal
from hydra_hpo.schedulers import FIFOScheduler, SuccessiveHalvingScheduler
from hydra_hpo.searchers.base import Searcher
from hydra_hpo.simulate import simulate
from hydra_hpo.space import Categorical, Float, SearchSpace
from hydra_hpo.table import Table
from hydra_hpo.trial import Job
from hydra_hpo.tuner import Tuner

# Four configurations, four epochs; seconds per epoch 1, 2, 0.5, 3 (binary fractions: exact sums).
TINY_SPACE = SearchSpace([Categorical("id", (0, 1, 2, 3))])
TINY = Table(
    [{"id": 0}, {"id": 1}, {"id": 2}, {"id": 3}],
    [[0.5, 0.4, 0.3, 0.2], [0.6, 0.5, 0.45, 0.4], [0.3, 0.25, 0.2, 0.1], [0.9, 0.8, 0.7, 0.6]],
    [[1, 2, 3, 4], [2, 4, 6, 8], [0.5, 1, 1.5, 2], [3, 6, 9, 12]],
)


class ScriptedSearcher(Searcher):
    """Suggests the ids 0, 1, 2, 3 in order."""

    def __init__(self) -> None:
        super().__init__(TINY_SPACE)
        self._next = 0

    def suggest(self):
        if self._next >= 4:
            return None
        self._next += 1
        return {"id": self._next - 1}


def run_tiny(scheduler) -> tuple[SimulatedExecutor, object]:
    executor = SimulatedExecutor(TINY, TINY_SPACE, n_workers=2)
    outcome = Tuner(scheduler, executor).run()
    return executor, outcome


def test_fifo_schedule_on_two_workers():
    executor, outcome = run_tiny(FIFOScheduler(ScriptedSearcher(), n_trials=4, max_resource=4))
    # t=0: trials 0 (4 s) and 1 (8 s) start; t=4: trial 0 ends, trial 2 (2 s) takes worker 0;
    # t=6: trial 2 ends, trial 3 (12 s) takes worker 0; trial 1 ends at 8, trial 3 at 18.
    assert executor.assignments == [
        Assignment(0, 0, 0, 0.0, 4.0),
        Assignment(1, 1, 1, 0.0, 8.0),
        Assignment(2, 2, 0, 4.0, 6.0),
        Assignment(3, 3, 0, 6.0, 18.0),
    ]
    assert outcome.wallclock == 18.0
    assert outcome.incumbent_trace == [(4.0, 0.2), (6.0, 0.1), (8.0, 0.1), (18.0, 0.1)]
    assert outcome.best.trial_id == 2
    assert outcome.trials[1].curve == [0.6, 0.5, 0.45, 0.4]
    assert outcome.busy_seconds == 4 + 8 + 2 + 12


def test_successive_halving_promotions_pay_only_the_extra_epochs():
    scheduler = SuccessiveHalvingScheduler(ScriptedSearcher(), n_trials=4, r_min=1, r_max=4, eta=2)
    executor, outcome = run_tiny(scheduler)
    # rung 1 epoch: 0 [0,1] 1 [0,2] 2 [1,1.5] 3 [1.5,4.5]; worker 1 waits at the barrier from t=2.
    # best two at epoch 1: trials 2 (0.3) and 0 (0.5); their 2nd epoch costs 0.5 s and 1 s.
    # best of those at epoch 2: trial 2 (0.25); epochs 3-4 cost it 2 - 1 = 1 s.
    assert executor.assignments == [
        Assignment(0, 0, 0, 0.0, 1.0),
        Assignment(1, 1, 1, 0.0, 2.0),
        Assignment(2, 2, 0, 1.0, 1.5),
        Assignment(3, 3, 0, 1.5, 4.5),
        Assignment(4, 2, 0, 4.5, 5.0),
        Assignment(5, 0, 1, 4.5, 5.5),
        Assignment(6, 2, 0, 5.5, 6.5),
    ]
    assert outcome.epochs_total == 4 + 2 + 2
    assert outcome.best.value == 0.1 and outcome.best.resource == 4
    assert [s.seconds for s in outcome.trials[2].segments] == [0.5, 0.5, 1.0]
    assert outcome.trials[2].curve == [0.3, 0.25, 0.2, 0.1]
    # per epoch, as it happened: trial 0's first epoch ends at 1 (0.5); trial 2's at 1.5 (0.3), its second
    # at 5.0 (0.25), its third and fourth at 6.0 and 6.5 (one job from epoch 2 to 4, 0.5 s an epoch)
    assert executor.anytime_trace() == [(1.0, 0.5), (1.5, 0.3), (5.0, 0.25), (6.0, 0.2), (6.5, 0.1)]
    # the tuner hears of a job's epochs when it ends: the same values, no sooner
    assert outcome.incumbent_trace[-1] == (6.5, 0.1)


def test_simultaneous_finishes_come_back_together_in_job_order():
    executor = SimulatedExecutor(TINY, TINY_SPACE, n_workers=3)
    executor.submit(Job(0, {"id": 1}, resource=1, job_idx=5))  # 2 s
    executor.submit(Job(1, {"id": 0}, resource=2, job_idx=4))  # 2 s
    executor.submit(Job(2, {"id": 2}, resource=1, job_idx=6))  # 0.5 s
    assert [r.job.job_idx for r in executor.wait()] == [6]
    assert [r.job.job_idx for r in executor.wait()] == [4, 5]
    assert executor.clock() == 2.0 and executor.num_running() == 0


def test_resource_beyond_the_table_names_r_max():
    executor = SimulatedExecutor(TINY, TINY_SPACE, n_workers=1)
    with pytest.raises(ValueError, match=r"resource 5 epochs.*E=4.*hpo.r_max"):
        executor.submit(Job(0, {"id": 0}, resource=5))
    with pytest.raises(ValueError, match=r"hpo.r_max=8 exceeds the 4 epochs"):
        simulate({"scheduler": "asha", "r_min": 1, "r_max": 8, "eta": 2}, TINY_SPACE, TINY, n_trials=4)


# A larger synthetic table over a continuous space for the end-to-end tests.
X_SPACE = SearchSpace([Float("x", 0.0, 1.0)])


def synthetic_table(rows: int = 40, epochs: int = 8) -> Table:
    xs = np.linspace(0.0, 1.0, rows)
    errors = [[(x - 0.3) ** 2 + 1.0 / e for e in range(1, epochs + 1)] for x in xs]
    elapsed = [[(1.0 + x) * e for e in range(1, epochs + 1)] for x in xs]
    return Table([{"x": float(x)} for x in xs], errors, elapsed)


ASHA = {"searcher": "random", "scheduler": "asha", "type": "promotion", "r_min": 1, "eta": 2, "n_trials": 30}


def events(path):
    return Journal(path).read()


def test_same_seed_same_sweep_and_another_seed_differs(tmp_path):
    table = synthetic_table()
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        simulate(ASHA, X_SPACE, table, n_workers=3, seed=seed, output_dir=tmp_path / name)
    assert events(tmp_path / "a" / "journal.jsonl") == events(tmp_path / "b" / "journal.jsonl")
    assert events(tmp_path / "a" / "journal.jsonl") != events(tmp_path / "c" / "journal.jsonl")


def test_artifacts_are_written(tmp_path):
    outcome = simulate(ASHA, X_SPACE, synthetic_table(), n_workers=2, seed=0, output_dir=tmp_path, plots=True)
    for name in ("journal.jsonl", "trials.csv", "optimization_results.yaml", "incumbent.png", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    finished = [e for e in events(tmp_path / "journal.jsonl") if e["event"] == "segment_finished"]
    assert len(finished) == len(outcome.extra["assignments"])
    assert max(e["finished"] for e in finished) == outcome.wallclock  # simulated seconds
    text = (tmp_path / "optimization_results.yaml").read_text()
    assert "clock: simulated" in text and f"best_value: {outcome.best.value}" in text
    assert "assignments" not in text
    assert len((tmp_path / "trials.csv").read_text().splitlines()) == len(outcome.trials) + 1


def test_no_plots_unless_asked(tmp_path):
    simulate(ASHA, X_SPACE, synthetic_table(), n_workers=2, output_dir=tmp_path)
    assert (tmp_path / "trials.csv").exists() and not (tmp_path / "incumbent.png").exists()


def test_budget_in_trials_seconds_and_epochs():
    table = synthetic_table()
    fifo = {"searcher": "random", "scheduler": "fifo"}
    assert len(simulate(fifo, X_SPACE, table, n_workers=2, n_trials=5).trials) == 5

    unbounded = 10**6
    timed = simulate(fifo, X_SPACE, table, n_workers=2, n_trials=unbounded, budget_seconds=50.0)
    starts = [a.start for a in timed.extra["assignments"]]
    assert max(starts) < 50.0 and timed.wallclock >= 50.0  # nothing starts after the budget; running jobs end
    assert 4 <= len(timed.trials) <= 2 * 50 / 8 + 2
    assert "time budget" in timed.stop_reason

    epochs = simulate(ASHA, X_SPACE, table, n_workers=2, n_trials=unbounded, budget_epochs=20)
    assert 20 <= epochs.epochs_total < 20 + 2 * table.epochs
    assert "epochs" in epochs.stop_reason


def test_one_thousand_random_trials_run_to_the_end():
    # the speed of this (target: under 5 s) is printed by benchmarks/simulator_speed.py, not asserted here
    table = synthetic_table(rows=300, epochs=20)
    outcome = simulate({"searcher": "random", "scheduler": "fifo"}, X_SPACE, table, n_workers=4, n_trials=1000)
    assert len(outcome.trials) == 1000 and outcome.epochs_total == 1000 * 20
    assert all(t.resource == 20 for t in outcome.trials.values())


@pytest.mark.slow
def test_command_line_writes_the_summary(tmp_path):
    import subprocess
    import sys

    table_path = tmp_path / "table.jsonl"
    table = synthetic_table(rows=10, epochs=4)
    table_path.write_text("".join(
        json.dumps({"config": {"model.lr": 1e-5 * 10 ** (i / 3)}, "val_error": list(table.val_error[i]),
                    "elapsed": list(table.elapsed[i])}) + "\n" for i in range(len(table))
    ))
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "hydra_hpo.simulate", "hpo=successive_halving", "search_space=softmax",
         f"table={table_path}", "n_workers=3", "budget_trials=8", "hpo.r_min=1", f"output_dir={out}", "plots=false",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "8 trials" in completed.stdout and "best validation_error=" in completed.stdout
    text = (out / "optimization_results.yaml").read_text()
    assert "n_trials: 8" in text and "scheduler: successive_halving" in text and "n_workers: 3" in text


def test_simulate_config_composes_the_sweep_groups():
    from hydra_hpo.simulate import compose

    config = compose(["hpo=hyperband", "n_workers=3"])
    assert config["hpo"]["scheduler"] == "hyperband" and config["hpo"]["eta"] == 3
    assert config["n_workers"] == 3 and config["table"].endswith("mlp_digits.jsonl")
    assert "model.lr" in config["search_space"]


def test_job_overhead_is_charged_on_every_segment_before_its_first_epoch():
    scheduler = SuccessiveHalvingScheduler(ScriptedSearcher(), n_trials=4, r_min=1, r_max=4, eta=2)
    executor = SimulatedExecutor(TINY, TINY_SPACE, n_workers=2, job_overhead_seconds=0.25)
    outcome = Tuner(scheduler, executor).run()
    # the schedule of the test above with 0.25 s more per job: rung 1 0 [0,1.25] 1 [0,2.25] 2 [1.25,2]
    # 3 [2,5.25]; rung 2: 2 [5.25,6] 0 [5.25,6.5]; rung 4: 2 [6.5,7.75]
    assert executor.assignments == [
        Assignment(0, 0, 0, 0.0, 1.25),
        Assignment(1, 1, 1, 0.0, 2.25),
        Assignment(2, 2, 0, 1.25, 2.0),
        Assignment(3, 3, 0, 2.0, 5.25),
        Assignment(4, 2, 0, 5.25, 6.0),
        Assignment(5, 0, 1, 5.25, 6.5),
        Assignment(6, 2, 0, 6.5, 7.75),
    ]
    # a job's seconds are its training; the overhead is the rest of the time it held its worker
    assert [s.seconds for s in outcome.trials[2].segments] == [0.5, 0.5, 1.0]
    assert [s.overhead_seconds for s in outcome.trials[2].segments] == [0.25, 0.25, 0.25]
    assert outcome.trials[2].overhead_seconds == 0.75
    # epochs end after the job's start-up: trial 2's second epoch at 5.25 + 0.25 + 0.5
    assert (6.0, 0.25) in executor.anytime_trace() and executor.anytime_trace()[0] == (1.25, 0.5)


def test_job_overhead_in_the_summary_and_trials_csv(tmp_path):
    space = SearchSpace([Float("x", 0.0, 1.0)])
    table = Table([{"x": 0.1}, {"x": 0.9}], [[0.5, 0.4], [0.3, 0.2]], [[1.0, 2.0], [1.0, 2.0]])
    outcome = simulate({"searcher": "random", "scheduler": "fifo"}, space, table, n_workers=1, n_trials=3,
                       output_dir=tmp_path, job_overhead_seconds=0.5)
    assert outcome.wallclock == 3 * (0.5 + 2.0)
    summary = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert summary["n_jobs"] == 3 and summary["job_overhead_seconds"] == 0.5
    assert summary["busy_seconds"] == 7.5 and summary["train_seconds"] == 6.0
    assert summary["overhead_seconds"] == 1.5 and summary["overhead_seconds_per_job_median"] == 0.5
    rows = (tmp_path / "trials.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert [row.split(",")[header.index("overhead_seconds")] for row in rows[1:]] == ["0.5"] * 3
    assert [row.split(",")[header.index("seconds")] for row in rows[1:]] == ["2"] * 3
    with pytest.raises(ValueError, match="job_overhead_seconds=-1"):
        SimulatedExecutor(table, space, 1, job_overhead_seconds=-1)


def test_command_line_charges_the_configured_job_overhead(tmp_path):
    from hydra_hpo.simulate import DEFAULT_JOB_OVERHEAD_SECONDS, compose, run_from_config

    config = compose(["hpo=random", "budget_trials=2", "n_workers=1", "plots=false"])
    assert config["job_overhead_seconds"] == DEFAULT_JOB_OVERHEAD_SECONDS > 0
    charged = run_from_config(config, tmp_path / "a")
    free = run_from_config({**config, "job_overhead_seconds": 0}, tmp_path / "b")
    assert charged.wallclock == pytest.approx(free.wallclock + 2 * DEFAULT_JOB_OVERHEAD_SECONDS)


def test_trials_csv_gives_each_trial_its_best_epoch_beside_its_last(tmp_path):
    """The incumbent counts a trial's best epoch; trials.csv shows it next to the last epoch's value."""
    space = SearchSpace([Float("x", 0.0, 1.0)])
    table = Table([{"x": 0.5}], [[0.5, 0.3, 0.4]], [[1.0, 2.0, 3.0]])
    simulate({"searcher": "random", "scheduler": "fifo"}, space, table, n_workers=1, n_trials=1, output_dir=tmp_path)
    with open(tmp_path / "trials.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["value"], row["best_value"], row["best_epoch"], row["epochs"]) == ("0.4", "0.3", "2", "3")


def test_trials_csv_and_the_incumbent_name_the_same_epoch_on_a_tie(tmp_path):
    """Equal values at epochs 2 and 4: both name the later one, whose checkpoint holds the best value."""
    space = SearchSpace([Float("x", 0.0, 1.0)])
    table = Table([{"x": 0.5}], [[0.5, 0.3, 0.4, 0.3, 0.6]], [[1.0, 2.0, 3.0, 4.0, 5.0]])
    outcome = simulate({"searcher": "random", "scheduler": "fifo"}, space, table, n_workers=1, n_trials=1,
                       output_dir=tmp_path)
    with open(tmp_path / "trials.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["best_value"], row["best_epoch"]) == ("0.3", "4")
    assert (outcome.best.value, outcome.best.resource) == (0.3, 4)


def test_best_epoch_follows_the_mode_and_skips_diverged_epochs():
    from hydra_hpo.results import curve_best

    assert curve_best([0.5, float("nan"), 0.2, 0.3]) == (0.2, 3)
    assert curve_best([0.5, 0.9, None, 0.7], mode="max") == (0.9, 2)
    assert curve_best([float("nan")]) is None
    assert curve_best([0.5, 0.2, 0.2, 0.4]) == (0.2, 3)  # a tie goes to the later epoch
    assert curve_best([0.1, 0.9, 0.9], mode="max") == (0.9, 3)
