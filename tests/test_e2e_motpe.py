"""End to end on digits: MO-ASHA + MOTPE (hpo=motpe) with two objectives and a bound, and its resume (slow)."""

from __future__ import annotations

import csv
import json

import pytest
from omegaconf import OmegaConf

from test_e2e import job_results, train

pytestmark = pytest.mark.slow


def test_motpe_sweeps_two_objectives_under_a_bound_and_resumes(tmp_path):
    sweep = tmp_path / "sweep"
    common = ["-m", "hpo=motpe", "model=mlp", "search_space=mlp", "hpo.objectives={validation_error: min, n_params: min}",
              "hpo.constraints={n_params: {max: 200000}}", "hpo.searcher_options.n_startup=3", "hpo.r_max=3",
              "trainer=fast", "hpo.progress=off", f"hydra.sweep.dir={sweep}"]
    train(*common, "hpo.n_trials=7", cwd=tmp_path)
    first = OmegaConf.load(sweep / "optimization_results.yaml")
    assert first.n_trials == 7 and first.n_failures == 0
    with open(sweep / "pareto_front.csv") as f:
        front = list(csv.DictReader(f))
    results = job_results(sweep)
    sizes = {r["trial_id"]: r["metrics"]["n_params"] for r in results.values()}
    assert front and all(sizes[int(row["trial_id"])] <= 200000 for row in front)  # feasible members only
    train(*common, "hpo.n_trials=9", "hpo.resume=true", cwd=tmp_path)
    second = OmegaConf.load(sweep / "optimization_results.yaml")
    assert second.n_trials == 9 and second.n_failures == 0
    journal = [json.loads(line) for line in (sweep / "journal.jsonl").read_text().splitlines()]
    started = [e["trial_id"] for e in journal if e["event"] == "trial_started"]
    assert sorted(started) == list(range(9))  # the tuner checked each replayed trial's config against the journal
