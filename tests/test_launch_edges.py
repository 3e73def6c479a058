"""Edge cases of launching jobs through Hydra: list and dict choices reach the job as values."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import ListConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).parent / "stub_app"))
import stub  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_hydra():
    GlobalHydra.instance().clear()
    yield
    GlobalHydra.instance().clear()


def test_list_choices_reach_the_job_as_lists(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["stub.py", "-m", f"hydra.sweep.dir={tmp_path}", "hpo.n_trials=6",
                                      "hidden=choice([16,16],[32,32,'a b'])"])
    stub.main()
    seen = []
    for job_dir in sorted(p for p in tmp_path.iterdir() if (p / "times.json").exists()):
        job_config = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
        assert isinstance(job_config.hidden, ListConfig), job_config.hidden
        received = json.loads((job_dir / "times.json").read_text())["config"]["hidden"]
        assert received in ([16, 16], [32, 32, "a b"])
        seen.append(received)
    assert len(seen) == 6 and len({json.dumps(s) for s in seen}) == 2
    best = OmegaConf.load(tmp_path / "best_config.yaml")
    assert isinstance(best.hidden, ListConfig)
