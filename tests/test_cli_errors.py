"""A user's mistake, through the real command lines: one line ``Error: ...``, a non-zero exit, no job, nothing lost.

Errors found before any job run in a few seconds; those found by a job (metric, dataset in a sweep) are slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from hydra_hpo.journal import JOURNAL_NAME
from hydra_plugins.hydra_hpo_sweeper._impl import SweepPlan

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, full_error: bool = False, module: str | None = None) -> tuple[int, list[str], str]:
    """Run train.py (or ``python -m module``); returns the exit status, the non-empty output lines
    (stdout and stderr together) and stderr."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    if full_error:
        env["HYDRA_FULL_ERROR"] = "1"
    command = [sys.executable, "-m", module] if module else [sys.executable, str(ROOT / "train.py")]
    proc = subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode, lines, proc.stderr


def assert_one_line(returncode: int, lines: list[str], *fragments: str) -> None:
    assert returncode == 1, lines
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize(
    "overrides,fragments",
    [
        (["hpo=asha", "hpo.r_min=0"], ["hpo.r_min=0: must be >= 1"]),
        (["hpo.searcher=bogus"], ["hpo.searcher='bogus'", "known: "]),
        (["model.nope=interval(0,1)"], ["'model.nope' is not in the job config", "did you mean"]),
        (["model.lr=interval(1.0,0.5)"], ["'model.lr'", "low=1.0 >= high=0.5"]),
        (["model.lr=tag(foo,interval(0.1,1.0))"], ["'model.lr'", "unknown tag 'foo'"]),
        (["~search_space"], ["search space is empty", "search_space="]),
        (["hpo=tpe", "hpo.searcher_options.gamma=2"], ["hpo.searcher option gamma=2", "between 0 and 1"]),
    ],
    ids=["r_min", "searcher", "unknown_key", "bad_interval", "bad_tag", "empty_space", "searcher_option"],
)
def test_a_bad_setting_or_search_space_is_one_line_and_no_sweep_folder(tmp_path, overrides, fragments):
    sweep = tmp_path / "sweep"
    returncode, lines, _ = run("-m", *overrides, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert_one_line(returncode, lines, *fragments)
    assert not sweep.exists()  # no job, no journal, not even the folder


def test_hydra_full_error_shows_the_traceback(tmp_path):
    sweep = tmp_path / "sweep"
    returncode, lines, stderr = run("-m", "hpo=asha", "hpo.r_min=0", f"hydra.sweep.dir={sweep}", cwd=tmp_path,
                                    full_error=True)
    assert returncode != 0
    assert "Traceback (most recent call last)" in stderr
    assert lines[-1] == "hydra_hpo.errors.SettingsError: hpo.r_min=0: must be >= 1"
    assert not sweep.exists()


def _sweep_dir_with_journal(sweep: Path, fingerprint: dict | None) -> dict[str, bytes]:
    """A sweep folder as an earlier sweep left it (journal and trials.csv); returns its files' bytes."""
    sweep.mkdir()
    event = {"event": "sweep_started", "fingerprint": fingerprint, "resumed": False, "clock": 0.0}
    (sweep / JOURNAL_NAME).write_text(json.dumps(event) + "\n")
    (sweep / "trials.csv").write_text("trial_id,model.lr,status,value\n0,0.01,completed,0.2\n")
    return {p.name: p.read_bytes() for p in sweep.iterdir()}


def _fingerprint(*overrides: str) -> dict:
    """The fingerprint the sweeper computes for ``train.py -m <overrides>`` (the same code, in-process)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            config = compose(config_name="config", overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()
    return SweepPlan.build(config, [], "hpo", "search_space").fingerprint()


def test_an_existing_journal_without_resume_is_refused_and_kept(tmp_path):
    sweep = tmp_path / "sweep"
    before = _sweep_dir_with_journal(sweep, _fingerprint())
    returncode, lines, _ = run("-m", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert_one_line(returncode, lines, str(sweep), "hpo.resume=true", "hydra.sweep.dir")
    assert {p.name: p.read_bytes() for p in sweep.iterdir()} == before


def test_resuming_another_sweeps_journal_is_refused_and_kept(tmp_path):
    sweep = tmp_path / "sweep"
    before = _sweep_dir_with_journal(sweep, _fingerprint("hpo.seed=7"))
    returncode, lines, _ = run("-m", "hpo.resume=true", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert_one_line(returncode, lines, "cannot resume", "its seed is 7 but this sweep's seed is 0")
    assert {p.name: p.read_bytes() for p in sweep.iterdir()} == before


def test_fashion_mnist_missing_in_a_single_run_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    returncode, lines, _ = run("data=fashion_mnist", "data.download=false", f"data.root={tmp_path / 'nowhere'}",
                               f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert_one_line(returncode, lines, f"data.root='{tmp_path / 'nowhere'}'", "data.download=False", "data=digits")
    assert json.loads((run_dir / "result.json").read_text())["status"] == "config_error"


@pytest.mark.slow
def test_fashion_mnist_missing_stops_a_sweep_at_the_first_job(tmp_path):
    sweep = tmp_path / "sweep"
    returncode, lines, stderr = run("-m", "hpo.n_trials=3", "data=fashion_mnist", "data.download=false",
                                    f"data.root={tmp_path / 'nowhere'}", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert returncode == 1 and "Traceback" not in stderr
    assert lines[-1].startswith("Error: Fashion-MNIST is not under data.root=") and "(trial 0, job dir" in lines[-1]
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0"]  # no second job
    assert "config_error" in (sweep / "trials.csv").read_text()


@pytest.mark.slow
def test_a_metric_the_run_does_not_log_is_one_line_and_keeps_what_was_computed(tmp_path):
    sweep = tmp_path / "sweep"
    returncode, lines, stderr = run("-m", "hpo.n_trials=3", "trainer=fast", "metric=val_acc",
                                    f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert returncode == 1 and "Traceback" not in stderr
    last = lines[-1]
    assert last.startswith("Error: metric 'val_acc' not produced; the run logs: [") and "'validation_error'" in last
    assert "set metric= to one of them" in last and "(trial 0, job dir" in last
    assert not any("Error" in line for line in lines[:-1]), lines
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0"]
    events = [json.loads(line) for line in (sweep / JOURNAL_NAME).read_text().splitlines()]
    finished = [e for e in events if e["event"] == "segment_finished"]
    assert [e["status"] for e in finished] == ["config_error"]
    assert events[-1]["event"] == "sweep_finished" and "not produced" in events[-1]["reason"]


@pytest.mark.parametrize(
    "table,fragments",
    [
        ("missing.jsonl", ["table=", "missing.jsonl: no such file", "benchmarks/record_table.py"]),
        ("bad.jsonl", ["bad.jsonl, line 2: not valid JSON"]),
    ],
)
def test_the_simulator_reports_a_bad_table_in_one_line(tmp_path, table, fragments):
    good = (ROOT / "benchmarks" / "tables" / "mlp_digits.jsonl").open().readline()
    (tmp_path / "bad.jsonl").write_text(good + "{not json\n" + good)
    out = tmp_path / "out"
    returncode, lines, _ = run(f"table={tmp_path / table}", f"output_dir={out}", f"hydra.run.dir={tmp_path / 'run'}",
                               cwd=tmp_path, module="hydra_hpo.simulate")
    assert_one_line(returncode, lines, *fragments)
    assert not out.exists()


def test_the_simulator_reports_a_bad_setting_in_one_line(tmp_path):
    returncode, lines, _ = run("hpo.r_max=1000", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                               module="hydra_hpo.simulate")
    assert_one_line(returncode, lines, "hpo.r_max=1000 exceeds the", "epochs recorded in")
