"""The sweeper plugin in-process with a stub task (basic launcher): summary files, failures, bad input."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).parent / "stub_app"))
import stub  # noqa: E402

pytestmark = pytest.mark.usefixtures("clean_hydra")


def run_sweep(sweep_dir: Path, *overrides: str, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["stub.py", "-m", f"hydra.sweep.dir={sweep_dir}", *overrides])
    stub.main()


def read_trials(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def test_sweep_writes_its_summary(tmp_path, monkeypatch):
    run_sweep(tmp_path, "hpo.n_trials=5", "hpo.seed=3", monkeypatch=monkeypatch)
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    rows = read_trials(tmp_path)
    assert results.n_trials == 5 and len(rows) == 5 and results.n_failures == 0
    values = [float(r["value"]) for r in rows]
    assert results.best_value == pytest.approx(min(values), rel=1e-8)
    best_row = rows[values.index(min(values))]
    assert results.best_params.act == best_row["act"]
    assert float(results.best_params.x) == pytest.approx(float(best_row["x"]), rel=1e-5)
    for name in ("journal.jsonl", "incumbent.png", "curves.png", "best_config.yaml"):
        assert (tmp_path / name).stat().st_size > 0, name
    # one job directory per trial, numbered from 0
    assert sorted(int(r["jobs"]) for r in rows) == list(range(5))
    best = OmegaConf.load(tmp_path / "best_config.yaml")
    assert best.x == results.best_params.x and best.act == results.best_params.act
    assert "hydra" not in best


def test_same_seed_same_decisions(tmp_path, monkeypatch):
    run_sweep(tmp_path / "a", "hpo.n_trials=4", monkeypatch=monkeypatch)
    GlobalHydra.instance().clear()
    run_sweep(tmp_path / "b", "hpo.n_trials=4", monkeypatch=monkeypatch)
    strip = lambda rows: [(r["x"], r["act"], r["value"]) for r in rows]  # noqa: E731
    assert strip(read_trials(tmp_path / "a")) == strip(read_trials(tmp_path / "b"))


def test_failed_and_nan_trials_do_not_stop_the_sweep(tmp_path, monkeypatch):
    run_sweep(tmp_path, "hpo.n_trials=5", "+behaviour.1=fail", "+behaviour.2=diverge", monkeypatch=monkeypatch)
    rows = {int(r["trial_id"]): r for r in read_trials(tmp_path)}
    assert rows[1]["status"] == "failed" and "fails on purpose" in rows[1]["error"]
    assert rows[2]["status"] == "diverged"
    assert [rows[t]["status"] for t in (0, 3, 4)] == ["completed"] * 3
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert results.n_failures == 2 and results.best_trial in (0, 3, 4)


def test_all_failed_writes_the_summary_and_exits_nonzero(tmp_path, monkeypatch, capsys):
    fails = [f"+behaviour.{i}=fail" for i in range(3)]
    with pytest.raises(SystemExit) as exit_info:
        run_sweep(tmp_path, "hpo.n_trials=3", *fails, monkeypatch=monkeypatch)
    assert exit_info.value.code != 0
    assert "all 3 trials failed" in capsys.readouterr().err
    assert len(read_trials(tmp_path)) == 3
    assert OmegaConf.load(tmp_path / "optimization_results.yaml").best_value is None


def test_command_line_sweep_replaces_the_file_entry_and_plain_values_are_forwarded(tmp_path, monkeypatch):
    run_sweep(tmp_path, "hpo.n_trials=4", "x=interval(0.9,1.0)", "act=tanh", monkeypatch=monkeypatch)
    rows = read_trials(tmp_path)
    assert all(0.9 <= float(r["x"]) <= 1.0 for r in rows)
    assert "act" not in rows[0]  # fixed on the command line: no longer searched
    job_cfg = OmegaConf.load(tmp_path / rows[0]["jobs"] / ".hydra" / "config.yaml")
    assert job_cfg.act == "tanh" and job_cfg.trial.id == int(rows[0]["trial_id"])


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["+search_space.nope=interval(0,1)"], "nope"),
        (["x=interval(1.0,0.5)"], "'x'"),
        (["x=tag(log,interval(0.0,1.0))"], "'x'"),
        (["act=choice(1,2)"], "act"),
        (["hpo.n_trials=0"], "hpo.n_trials=0"),
        (["hpo.n_workers=0"], "hpo.n_workers=0"),
        (["+hpo.foo=1"], "foo"),
        (["hpo.scheduler=successive_halving", "+hpo.r_min=1", "+hpo.eta=1"], "hpo.eta=1"),
        (["hpo.scheduler=successive_halving", "+hpo.r_min=5", "+hpo.r_max=2", "+hpo.eta=2"], "hpo.r_min=5"),
        (["hpo.searcher=bogus"], "bogus"),
    ],
)
def test_bad_input_fails_before_any_job(tmp_path, monkeypatch, capsys, overrides, message):
    with pytest.raises(SystemExit):
        run_sweep(tmp_path, *overrides, monkeypatch=monkeypatch)
    assert message in capsys.readouterr().err
    assert not any(p.is_dir() and p.name.isdigit() for p in tmp_path.iterdir()) if tmp_path.exists() else True


def test_existing_journal_without_resume_is_refused(tmp_path, monkeypatch, capsys):
    run_sweep(tmp_path, "hpo.n_trials=2", monkeypatch=monkeypatch)
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit):
        run_sweep(tmp_path, "hpo.n_trials=2", monkeypatch=monkeypatch)
    assert "hpo.resume=true" in capsys.readouterr().err


def test_resume_continues_numbering_and_total(tmp_path, monkeypatch):
    run_sweep(tmp_path, "hpo.n_trials=3", monkeypatch=monkeypatch)
    GlobalHydra.instance().clear()
    run_sweep(tmp_path, "hpo.n_trials=5", "hpo.resume=true", monkeypatch=monkeypatch)
    rows = read_trials(tmp_path)
    assert len(rows) == 5  # n_trials is the total for the sweep
    assert sorted(int(r["jobs"]) for r in rows) == list(range(5))


def test_resume_with_a_different_search_space_is_refused(tmp_path, monkeypatch, capsys):
    run_sweep(tmp_path, "hpo.n_trials=2", monkeypatch=monkeypatch)
    GlobalHydra.instance().clear()
    with pytest.raises(SystemExit):
        run_sweep(tmp_path, "hpo.n_trials=2", "hpo.resume=true", "x=interval(0.5,1.0)", monkeypatch=monkeypatch)
    err = capsys.readouterr().err
    assert "another sweep's journal" in err and "search_space" in err


def test_grid_search_through_the_sweeper_runs_every_combination_once(tmp_path, monkeypatch):
    run_sweep(tmp_path, "hpo.searcher=grid", "+hpo.searcher_options.num_points=3", "hpo.n_trials=100",
              monkeypatch=monkeypatch)
    rows = read_trials(tmp_path)
    assert sorted((float(r["x"]), r["act"]) for r in rows) == sorted(
        (x, a) for x in (0.0, 0.5, 1.0) for a in ("relu", "tanh"))


def test_trials_csv_says_which_trials_successive_halving_stopped(tmp_path, monkeypatch):
    run_sweep(tmp_path, "hpo.scheduler=successive_halving", "+hpo.r_min=1", "+hpo.eta=2", "trainer.max_epochs=4",
              "hpo.n_trials=4", monkeypatch=monkeypatch)
    rows = read_trials(tmp_path)
    # 4 trials at 1 epoch, the best 2 go on to 2 epochs, the best of those to 4
    assert sorted((r["status"], r["epochs"]) for r in rows) == [
        ("completed", "4"), ("stopped", "1"), ("stopped", "1"), ("stopped", "2")]
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert results.trial_statuses == {"completed": 1, "stopped": 3} and results.n_failures == 0
