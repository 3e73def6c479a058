"""Population based training end to end on digits (subprocesses, slow): copies, lineage, the rerunnable schedule."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from test_e2e import job_results, train

pytestmark = pytest.mark.slow
TINY = ["hpo=pbt", "model=mlp", "search_space=mlp", "trainer=fast", "model.num_units=16", "model.num_layers=1",
        "data.batch_size=32", "model.activation=relu"]


def events(sweep: Path) -> list[dict]:
    return [json.loads(line) for line in (sweep / "journal.jsonl").read_text().splitlines()]


def test_pbt_copies_checkpoints_applies_new_values_and_its_schedule_reruns(tmp_path):
    """The basic launcher runs one job at a time: the order of results, hence every decision, is fixed."""
    sweep = tmp_path / "sweep"
    train("-m", *TINY, "trainer.max_epochs=4", "hpo.population_size=2", "hpo.perturbation_interval=1",
          "hpo.n_trials=2", "hpo.n_workers=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    log = events(sweep)
    results = job_results(sweep)
    started = {e["job_idx"]: e for e in log if e["event"] == "segment_started"}
    copies = [e for e in log if e["event"] == "checkpoint_copied"]
    assert copies, "no member copied another's checkpoint"
    for copy in copies:
        job = started[copy["job_idx"]]
        assert job["source_trial"] == copy["source_trial"] != job["trial_id"]
        mine = results[copy["job_idx"]]
        # the donor's segment that ended at the copied epoch, before this job started
        donor = max((j for j, e in started.items() if e["trial_id"] == copy["source_trial"]
                     and e["resource"] == copy["resource"] and j < copy["job_idx"]))
        assert mine["curve"][: copy["resource"]] == results[donor]["curve"]
        # the new values took effect after the restore, in every epoch this job trained
        for values in mine["optimizer"].values():
            assert values["lr"] == pytest.approx(job["config"]["model.lr"])
            assert values["momentum"] == pytest.approx(job["config"]["model.momentum"])
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert summary.trial_statuses == {"completed": 2}
    assert summary.best_schedule[0].start_epoch == 0 and summary.best_schedule[-1].end_epoch == summary.best_epochs
    assert "lineage" in (sweep / "trials.csv").read_text().splitlines()[0]
    assert (sweep / "lineage.png").stat().st_size > 10_000
    assert not (sweep / "checkpoints").exists()

    best = OmegaConf.load(sweep / "best_config.yaml")
    assert [dict(e) for e in best.trial.schedule] == [dict(e) for e in summary.best_schedule]
    rerun = tmp_path / "rerun"
    train("--config-path", str(sweep), "--config-name", "best_config", f"hydra.run.dir={rerun}", cwd=tmp_path)
    again = json.loads((rerun / "result.json").read_text())
    assert again["status"] == "completed" and again["epochs"] == summary.best_epochs
    for entry in summary.best_schedule:  # from scratch, following the schedule epoch by epoch
        for epoch in range(entry.start_epoch + 1, entry.end_epoch + 1):
            assert again["optimizer"][str(epoch)]["lr"] == pytest.approx(entry.lr)
            assert again["optimizer"][str(epoch)]["momentum"] == pytest.approx(entry.momentum)


def test_pbt_with_joblib_and_two_workers_runs_to_the_end(tmp_path):
    sweep = tmp_path / "sweep"
    train("-m", *TINY, "hydra/launcher=joblib", "hpo.n_workers=2", "trainer.max_epochs=4", "hpo.population_size=3",
          "hpo.perturbation_interval=1", "hpo.n_trials=4", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    summary = OmegaConf.load(sweep / "optimization_results.yaml")
    assert summary.n_failures == 0 and summary.trial_statuses == {"completed": 3}
    # every member reached trainer.max_epochs; how many epochs that took depends on which member finished
    # first (a member that copies a donor further ahead skips epochs, one that copies a donor behind it, as
    # asynchronous PBT may, trains some again), so only the accounting is exact: every epoch trained is one
    # of a journaled segment, and the summary counts each once
    rows = list(csv.DictReader((sweep / "trials.csv").open()))
    assert len(rows) == 3 and all(int(row["epochs"]) == 4 for row in rows)
    trained = [json.loads(p.read_text())["epochs_trained"] for p in sweep.glob("[0-9]*/result.json")]
    log = events(sweep)
    segments = [e for e in log if e["event"] == "segment_finished" and e["status"] == "completed"]
    assert summary.epochs_total == sum(trained) == sum(e["resource"] - e["previous_resource"] for e in segments)
    assert all("config" in e for e in log if e["event"] == "segment_started")
    for name in ("lineage.png", "best_config.yaml", "trials.csv"):
        assert (sweep / name).exists(), name


def test_a_key_that_cannot_change_during_training_is_refused_before_any_job(tmp_path):
    proc = train("-m", "hpo=pbt", "model=mlp", "search_space=mlp", "hpo.mutable=[model.lr,model.num_units]",
                 f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "hpo.mutable: model.num_units cannot change during training" in proc.stderr
    assert not (tmp_path / "sweep" / "0").exists()


def test_pbt_killed_twice_resumes_to_the_same_lineage_and_best(tmp_path):
    """One job at a time (basic launcher): the uninterrupted sweep's decisions are the reference."""
    import sys

    from test_e2e import ROOT, _final_state, _kill_after_finished_segments

    args = ["-m", *TINY, "trainer.max_epochs=4", "hpo.population_size=2", "hpo.perturbation_interval=1",
            "hpo.n_trials=2", "hpo.n_workers=1"]
    reference = tmp_path / "reference"
    train(*args, f"hydra.sweep.dir={reference}", cwd=tmp_path)
    sweep = tmp_path / "killed"
    for attempt, threshold in enumerate((2, 5)):  # kills after the 2nd and 5th of 8 finished segments
        cmd = [sys.executable, str(ROOT / "train.py"), *args, f"hydra.sweep.dir={sweep}",
               *(["hpo.resume=true"] if attempt else [])]
        _kill_after_finished_segments(cmd, tmp_path, sweep / "journal.jsonl", threshold, tmp_path / f"{attempt}.log")
    train(*args, f"hydra.sweep.dir={sweep}", "hpo.resume=true", cwd=tmp_path)
    rows, best = _final_state(sweep)
    ref_rows, ref_best = _final_state(reference)
    lineage = {t: row.rsplit(",", 1)[-1] for t, row in rows.items()}
    assert lineage == {t: row.rsplit(",", 1)[-1] for t, row in ref_rows.items()}  # every decision made again
    assert best == pytest.approx(ref_best, abs=1e-6)
    copies = [e for e in events(sweep) if e["event"] == "checkpoint_copied"]
    assert len({(e["trial_id"], e["source_trial"], e["resource"]) for e in copies}) == \
        len([e for e in events(reference) if e["event"] == "checkpoint_copied"])
