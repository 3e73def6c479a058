"""What a sweep with several objectives writes (pareto_front.csv, pareto.png, the summary's front and
hypervolume), and resume through the journal with several objectives (fake executor: no Hydra, no training)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from omegaconf import OmegaConf

from hydra_hpo.journal import Journal
from hydra_hpo.objectives import hypervolume, parse_objectives
from hydra_hpo.results import write_summary
from hydra_hpo.resume import ResumeLog
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import build_searcher
from hydra_hpo.trial import COMPLETED
from hydra_hpo.tuner import Tuner
from test_objectives import SPACE, MetricsExecutor

TWO = {"validation_error": "min", "inference_ms": "min"}


def tune(objectives, constraints=None, workers=3, journal=None, resume=None, crash_after=None):
    searcher = build_searcher("random", SPACE, seed=5)
    scheduler = build_scheduler("asha", searcher, 20, 9, r_min=1, eta=3)
    executor = MetricsExecutor(workers)
    executor.crash_after = crash_after
    return Tuner(scheduler, executor, searcher=searcher, seed=5, journal=journal, resume=resume,
                 fingerprint={"objectives": objectives},
                 objectives=parse_objectives(objectives, constraints)).run()


def latest(outcome, names):
    """Each trial's latest completed metrics, computed here independently of hydra_hpo.pareto."""
    rows = {}
    for trial_id, record in outcome.trials.items():
        done = [s for s in record.segments if s.status == COMPLETED]
        if done:
            last = max(done, key=lambda s: s.resource)
            rows[trial_id] = (last.resource, [last.metrics[n] for n in names], last.metrics)
    return rows


def brute_front(rows, feasible=lambda metrics: True):
    ok = {t: np.array(v) for t, (_, v, m) in rows.items() if feasible(m)}
    return sorted(t for t, a in ok.items()
                  if not any(np.all(b <= a) and np.any(b < a) for u, b in ok.items() if u != t))


def test_the_front_file_plot_and_summary_of_two_objectives(tmp_path):
    outcome = tune(TWO)
    summary = write_summary(outcome, tmp_path, "validation_error", "min")
    rows = latest(outcome, list(TWO))
    expected = brute_front(rows)
    with open(tmp_path / "pareto_front.csv") as f:
        table = list(csv.DictReader(f))
    assert sorted(int(r["trial_id"]) for r in table) == expected and len(expected) >= 2
    for r in table:
        epochs, values, _ = rows[int(r["trial_id"])]
        assert int(r["epochs"]) == epochs
        assert [float(r[n]) for n in TWO] == pytest.approx(values)
        assert float(r["x"]) == pytest.approx(outcome.trials[int(r["trial_id"])].config["x"])
    assert (tmp_path / "pareto.png").stat().st_size > 0
    written = OmegaConf.to_container(OmegaConf.load(tmp_path / "optimization_results.yaml"))
    assert [m["trial_id"] for m in written["pareto_front"]] == [int(r["trial_id"]) for r in table]
    # hypervolume: of the final front against the stated reference, and never shrinking over time
    front_values = np.array([rows[t][1] for t in expected])
    assert written["hypervolume"] == pytest.approx(hypervolume(front_values, written["hypervolume_reference"]))
    trace = [v for _, v in written["hypervolume_trace"]]
    assert trace == sorted(trace) and trace[-1] == pytest.approx(written["hypervolume"])
    assert summary["hypervolume"] == written["hypervolume"]


def test_infeasible_trials_are_never_in_the_front(tmp_path):
    bounds = {"n_params": {"max": 300.0}}
    outcome = tune(TWO, bounds)
    write_summary(outcome, tmp_path, "validation_error", "min", plots=False)
    rows = latest(outcome, list(TWO))
    expected = brute_front(rows, lambda m: m["n_params"] <= 300.0)
    with open(tmp_path / "pareto_front.csv") as f:
        got = sorted(int(r["trial_id"]) for r in csv.DictReader(f))
    assert got == expected
    assert all(rows[t][2]["n_params"] <= 300.0 for t in got)
    summary = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert summary.n_infeasible == sum(m["n_params"] > 300.0 for _, _, m in rows.values()) > 0
    assert size_of_best(outcome) <= 300.0


def size_of_best(outcome):
    return outcome.trials[outcome.best.trial_id].segments[-1].metrics["n_params"]


def test_three_objectives_plot_pairwise_panels(tmp_path):
    three = {**TWO, "n_params": "min"}
    outcome = tune(three)
    write_summary(outcome, tmp_path, "validation_error", "min")
    from PIL import Image

    width, height = Image.open(tmp_path / "pareto.png").size
    assert width > 2.5 * height  # three panels side by side
    with open(tmp_path / "pareto_front.csv") as f:
        assert next(csv.reader(f))[:4] == ["trial_id", "validation_error", "inference_ms", "n_params"]


def test_a_resumed_sweep_with_several_objectives_finds_the_front_of_an_uninterrupted_one(tmp_path):
    expected = tune(TWO, workers=1)
    path = tmp_path / "journal.jsonl"
    with pytest.raises(SystemExit):
        tune(TWO, workers=1, journal=Journal(path), crash_after=7)
    resumed = tune(TWO, workers=1, journal=Journal(path), resume=ResumeLog(Journal(path).read()))
    for directory, outcome in (("a", expected), ("b", resumed)):
        (tmp_path / directory).mkdir()
        write_summary(outcome, tmp_path / directory, "validation_error", "min", plots=False)
    assert (tmp_path / "a" / "pareto_front.csv").read_text() == (tmp_path / "b" / "pareto_front.csv").read_text()
    # the replayed results carried their metrics back from the journal
    assert all(s.metrics for r in resumed.trials.values() for s in r.segments if s.status == COMPLETED)
