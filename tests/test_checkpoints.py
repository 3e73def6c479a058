"""The checkpoint store and ASHA's bound on paused trials' checkpoints (fake executor, and the stub through
the sweeper)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from fakes import FakeExecutor
from hydra_hpo.checkpoints import CheckpointStore
from hydra_hpo.journal import Journal
from hydra_hpo.schedulers import build_scheduler
from hydra_hpo.searchers import build_searcher
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.trial import COMPLETED, Job
from hydra_hpo.tuner import Tuner

SPACE = SearchSpace({"x": Float("x", 0.0, 1.0)})
CKPT_BYTES = 1000


def outcome(job: Job):
    x = float(job.config["x"])
    return COMPLETED, (x - 0.3) ** 2 + 1.0 / job.resource, 1.0 + (job.trial_id % 3) * 0.4


class CheckpointWritingExecutor(FakeExecutor):
    """Each job writes its trial's checkpoint when it is submitted (the tuner sees it after the result)."""

    def __init__(self, store: CheckpointStore, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.store = store

    def submit(self, job: Job) -> None:
        directory = self.store.dir(job.trial_id)
        assert job.previous_resource == 0 or (directory / "last.ckpt").exists(), "promoted without a checkpoint"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "last.ckpt").write_bytes(b"\0" * CKPT_BYTES)
        super().submit(job)


def run_asha(tmp_path, bound, n_trials=40, workers=2, keep=False):
    store = CheckpointStore(tmp_path / "checkpoints", keep=keep)
    searcher = build_searcher("random", SPACE, seed=5)
    scheduler = build_scheduler("asha", searcher, n_trials, 8, r_min=1, eta=2, max_paused_checkpoints=bound)
    journal = Journal(tmp_path / "journal.jsonl")
    tuner = Tuner(scheduler, CheckpointWritingExecutor(store, workers, outcome), seed=5, journal=journal,
                  checkpoints=store)
    return tuner.run(), Journal(tmp_path / "journal.jsonl").read(), store


def test_without_a_bound_every_paused_trial_keeps_its_checkpoint_until_the_end(tmp_path):
    result, events, store = run_asha(tmp_path, None)
    assert result.extra["checkpoint_bytes_final"] == 0 and not store.root.exists()
    # most trials pause at the lowest rung and keep their checkpoint until the sweep ends
    assert result.extra["checkpoint_bytes_peak"] >= 20 * CKPT_BYTES
    deleted = [e for e in events if e["event"] == "checkpoint_deleted"]
    assert {e["trial_id"] for e in deleted} == set(result.trials)
    assert all(e["bytes"] == CKPT_BYTES and e["reason"] == "the trial ended" for e in deleted)


@pytest.mark.parametrize("bound", [1, 3])
def test_the_bound_keeps_the_best_paused_checkpoints_per_rung(tmp_path, bound):
    unbounded, _, _ = run_asha(tmp_path / "free", None)
    result, events, _ = run_asha(tmp_path / "bounded", bound)
    rungs_below_top = 3  # rungs 1, 2, 4 below r_max=8
    assert result.extra["checkpoint_bytes_peak"] <= (bound * rungs_below_top + 2) * CKPT_BYTES
    assert result.extra["checkpoint_bytes_peak"] < unbounded.extra["checkpoint_bytes_peak"]
    assert result.extra["checkpoint_bytes_final"] == 0
    released = {e["trial_id"]: i for i, e in enumerate(events)
                if e["event"] == "checkpoint_deleted" and "max_paused_checkpoints" in e["reason"]}
    assert released
    # a released trial is never promoted afterwards (the executor would also refuse: no checkpoint)
    for trial_id, position in released.items():
        assert not any(e["event"] == "segment_started" and e["trial_id"] == trial_id for e in events[position:])
    # released trials are those with worse losses at their rung than the kept ones
    assert len(result.trials) == len(unbounded.trials)
    assert result.best.value <= unbounded.best.value + 0.05


def test_keep_checkpoints_deletes_nothing(tmp_path):
    result, events, store = run_asha(tmp_path, 1, keep=True)
    assert not any(e["event"] == "checkpoint_deleted" for e in events)
    assert result.extra["checkpoint_bytes_final"] == len(result.trials) * CKPT_BYTES


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_bound_names_the_key(value):
    with pytest.raises(ValueError, match="hpo.max_paused_checkpoints"):
        build_scheduler("asha", build_searcher("random", SPACE, seed=0), 4, 8, r_min=1, eta=2,
                        max_paused_checkpoints=value)


def test_bound_needs_the_promotion_type():
    with pytest.raises(ValueError, match="only with hpo.type=promotion"):
        build_scheduler("asha", build_searcher("random", SPACE, seed=0), 4, 8, r_min=1, eta=2, type="stopping",
                        max_paused_checkpoints=2)


sys.path.insert(0, str(Path(__file__).parent / "stub_app"))
import stub  # noqa: E402


def test_the_summary_reports_checkpoint_disk_use(tmp_path, monkeypatch):
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", [
        "stub.py", "-m", f"hydra.sweep.dir={tmp_path}", "hpo.scheduler=asha", "+hpo.r_min=1", "+hpo.eta=2",
        "trainer.max_epochs=4", "hpo.n_trials=10", "+hpo.max_paused_checkpoints=1", f"+ckpt_bytes={CKPT_BYTES}"])
    try:
        stub.main()
    finally:
        GlobalHydra.instance().clear()
    summary = OmegaConf.load(tmp_path / "optimization_results.yaml")
    # one paused trial per rung below the top (rungs 1 and 2) and the one job running; the stub adds a few bytes
    assert CKPT_BYTES <= summary.checkpoint_bytes_peak <= 3 * CKPT_BYTES + 100
    assert summary.checkpoint_bytes_final == 0 and not (tmp_path / "checkpoints").exists()
    events = [line for line in (tmp_path / "journal.jsonl").read_text().splitlines() if "checkpoint_deleted" in line]
    assert any("max_paused_checkpoints" in line for line in events)
