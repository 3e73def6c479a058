"""Every shipped config composes, and the sweep it describes validates, before any job could start."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import build_searcher
from hydra_plugins.hydra_hpo_sweeper._impl import SweepPlan

CONF = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
HPO = sorted(p.stem for p in (CONF / "hpo").glob("*.yaml"))


def plan_for(*overrides: str) -> SweepPlan:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    GlobalHydra.instance().clear()
    return SweepPlan.build(cfg, [], "hpo", "search_space")


@pytest.mark.parametrize("overrides", [[f"experiment={e}"] for e in EXPERIMENTS] + [[f"hpo={h}"] for h in HPO]
                         + [["model=mlp", "search_space=mlp"], ["model=lenet", "search_space=lenet"],
                            ["model=lenet", "search_space=lenet_digits", "data.image_size=28"],
                            ["model=mlp", "search_space=mlp_holdout", "data.image_size=28"]])
def test_config_builds_a_valid_sweep(overrides):
    plan = plan_for(*overrides)
    searcher = build_searcher(plan.settings.searcher, plan.space, seed=plan.settings.seed,
                              **plan.settings.searcher_options)
    scheduler = build_scheduler(plan.settings.scheduler, searcher, plan.settings.n_trials, plan.max_resource,
                                **plan.settings.scheduler_options)
    job = scheduler.next_job()
    assert job is not None and plan.space.contains(job.config)


def test_d2l_experiments_match_the_chapter():
    e4 = plan_for("experiment=d2l_sh_lenet")
    assert e4.settings.scheduler == "successive_halving" and e4.max_resource == 10
    assert (e4.settings.scheduler_options["r_min"], e4.settings.scheduler_options["eta"]) == (2, 2)
    assert e4.space.to_structured()["model.lr"] == {"type": "float", "low": 0.01, "high": 1.0, "log": True}
    e5 = plan_for("experiment=d2l_asha_lenet")
    assert e5.settings.scheduler == "asha" and e5.settings.n_workers == 2
    softmax = plan_for("experiment=d2l_softmax")
    assert softmax.settings.n_trials == 10 and softmax.max_resource == 8
    assert softmax.space.to_structured()["model.lr"]["low"] == pytest.approx(1e-4)
