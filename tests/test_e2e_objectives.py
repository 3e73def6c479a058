"""End to end on digits: the done-when command of several objectives, and a constrained sweep (slow)."""

from __future__ import annotations

import csv
import json

import pytest
from omegaconf import OmegaConf

from test_e2e import job_results, train

pytestmark = pytest.mark.slow


def test_asha_with_two_objectives_writes_the_front_and_rerunnable_configs(tmp_path):
    sweep = tmp_path / "sweep"
    train("-m", "hpo=asha", "model=mlp", "search_space=mlp", "hpo.objectives={validation_error: min, inference_ms: min}",
          "trainer=fast", "hpo.n_trials=6", "hpo.r_max=3", "hpo.progress=off", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    results = job_results(sweep)
    for result in results.values():
        assert {"train_seconds", "n_params", "inference_ms", "peak_memory_mb"} <= set(result["metrics"])
    with open(sweep / "pareto_front.csv") as f:
        front = list(csv.DictReader(f))
    assert front and (sweep / "pareto.png").exists()
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert [m.trial_id for m in summary.pareto_front] == [int(r["trial_id"]) for r in front]
    assert summary.hypervolume > 0
    for row in front:  # every member's config reruns: the same error for the same epochs
        rerun = tmp_path / f"rerun{row['trial_id']}"
        train("--config-path", str(sweep / "pareto"), "--config-name", row["trial_id"], f"hydra.run.dir={rerun}",
              cwd=tmp_path)
        again = json.loads((rerun / "result.json").read_text())
        assert again["epochs"] == int(row["epochs"])
        assert again["value"] == pytest.approx(float(row["validation_error"]), abs=1e-6)


def test_a_constrained_sweep_reports_a_feasible_incumbent_and_refuses_bad_bounds(tmp_path):
    sweep = tmp_path / "sweep"
    # model=mlp with 32..1024 units and 1..6 layers: the bound rules out the larger ones
    train("-m", "hpo=random", "model=mlp", "search_space=mlp", "hpo.constraints={n_params: {max: 60000}}",
          "trainer=fast", "hpo.n_trials=5", "hpo.progress=off", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    results = job_results(sweep)
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    best = [r for r in results.values() if r["trial_id"] == summary.best_trial]
    assert best and all(r["metrics"]["n_params"] <= 60000 for r in best)
    assert any(r["metrics"]["n_params"] > 60000 for r in results.values())  # the bound excluded trials
    feasible = [r["value"] for r in results.values() if r["metrics"]["n_params"] <= 60000]
    assert summary.best_value == pytest.approx(min(feasible))
    bad = train("-m", "hpo=random", "hpo.constraints={flops: {max: 3}}", f"hydra.sweep.dir={tmp_path / 'bad'}",
                cwd=tmp_path, check=False)
    assert bad.returncode == 1 and "Error: hpo.constraints: unknown metric 'flops'" in bad.stderr
    assert not (tmp_path / "bad").exists()  # refused before any job
