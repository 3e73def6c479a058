"""The peer rows of the benchmarks (benchmarks/peers.py, compare.py, compare_mo.py): Optuna's samplers on the
same table, simulated clock and per-job overhead as ours."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")  # a benchmark-only dependency (pip install -e '.[bench]')

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import compare  # noqa: E402
import compare_mo  # noqa: E402
import peers  # noqa: E402

from hydra_hpo.objectives import parse_objectives  # noqa: E402
from hydra_hpo.space import Float, SearchSpace  # noqa: E402
from hydra_hpo.table import Table  # noqa: E402

SPACE = SearchSpace({"x": Float("x", 0.0, 1.0)})
TABLES = REPO / "benchmarks" / "tables"


def even_table(rows: int = 40, epochs: int = 3) -> Table:
    """Every epoch takes 1 s; the error falls with the epochs and depends on x (best near 0.3)."""
    xs = np.linspace(0.0, 1.0, rows)
    errors = [[0.1 + (x - 0.3) ** 2 + 0.5 / e for e in range(1, epochs + 1)] for x in xs]
    elapsed = [[float(e) for e in range(1, epochs + 1)] for _ in xs]
    extras = [{"n_params": int(1000 * (1 + x)), "inference_ms": [0.1 * e for e in range(1, epochs + 1)]} for x in xs]
    return Table([{"x": float(x)} for x in xs], errors, elapsed, extras=extras)


@pytest.mark.parametrize("name", ["optuna_gp", "optuna_tpe"])
def test_full_fidelity_rows_train_every_trial_fully_and_pay_the_overhead_once_per_trial(name):
    table = even_table()
    # 2 workers, 3 s a trial: without overhead trials end at 3, 6, 9 and each end starts the next (8 asked);
    # with 0.5 s a job they end at 3.5 and 7 (6 asked). A pruned trial would end early and start more.
    trace, n_trials = peers.run_optuna(name, table, SPACE, seed=0, n_workers=2, budget=10.0, job_overhead=0.0)
    assert n_trials == 8
    assert trace[0][0] == pytest.approx(1.0)  # the first epoch's error is the first incumbent
    trace, n_trials = peers.run_optuna(name, table, SPACE, seed=0, n_workers=2, budget=10.0, job_overhead=0.5)
    assert n_trials == 6
    assert trace[0][0] == pytest.approx(1.5)  # the overhead comes before the first epoch
    assert {t % 3.5 for t, _ in trace} <= {1.5, 2.5, 0.0}  # epochs end 1, 2 and 3 s after a job's overhead
    assert [v for _, v in trace] == sorted((v for _, v in trace), reverse=True)


@pytest.mark.parametrize("name", ["optuna_gp", "optuna_tpe"])
def test_full_fidelity_rows_are_seeded_past_their_random_start_up(name):
    table = even_table()
    # 2 workers, 3 s a trial: 16 trials, 6 of them after Optuna's 10 random start-up trials
    runs = [peers.run_optuna(name, table, SPACE, seed=s, n_workers=2, budget=22.0) for s in (1, 1, 2)]
    assert runs[0][1] == 16
    assert runs[0] == runs[1] and runs[0] != runs[2]


@pytest.mark.parametrize("name", peers.MO_OPTUNA_NAMES)
def test_multi_objective_rows_tell_every_ended_job_its_objectives(name):
    table = even_table()
    metrics = compare_mo.row_metrics(table)
    directions = {"validation_error": "min", "n_params": "min"}
    results = peers.run_optuna_mo(name, table, SPACE, seed=0, n_workers=2, budget=14.0, directions=directions,
                                  metrics=metrics, job_overhead=0.5)
    assert [t for t, _ in results] == [3.5] * 2 + [7.0] * 2 + [10.5] * 2 + [14.0] * 2  # full fidelity, overhead
    possible = [metrics(row, table.epochs) for row in range(len(table))]
    for _, values in results:
        assert values in possible  # a row's objectives after its last epoch
        assert values["inference_ms"] == pytest.approx(0.3)  # the per-epoch extra after the last epoch


def test_objectives_option_and_missing_metrics_are_one_line_errors():
    assert compare_mo.parse_objectives_option("validation_error:min,inference_ms:max") == {
        "validation_error": "min", "inference_ms": "max"}
    for bad, words in [("validation_error", "NAME:min"), ("validation_error:low", "NAME:min"),
                       ("n_params:min,n_params:min", "listed twice")]:
        with pytest.raises(ValueError, match=words):
            compare_mo.parse_objectives_option(bad)
    with pytest.raises(ValueError, match="'peak_memory_mb' is not recorded.*n_params"):
        compare_mo.prepare_table(even_table(), {"validation_error": "min", "peak_memory_mb": "min"})
    bare = Table([{"x": 0.5}], [[0.2]], [[1.0]])
    with pytest.raises(ValueError, match="n_params is not recorded.*not MLPs"):
        compare_mo.prepare_table(bare, {"validation_error": "min", "n_params": "min"})


def test_recorded_n_params_are_used_and_the_mlp_formula_fills_them_in_otherwise():
    table = even_table()
    assert compare_mo.prepare_table(table, {"n_params": "min"}) is table  # recorded: kept as it is
    mlp = Table.load(TABLES / "mlp_digits.jsonl").head(5)
    filled = compare_mo.prepare_table(mlp, {"validation_error": "min", "n_params": "min"})
    assert [e["n_params"] for e in filled.extras] == [compare_mo.mlp_params(c) for c in mlp.configs]
    objectives = parse_objectives({"validation_error": "min", "n_params": "min"}, None)
    reference, origin = compare_mo.reference_and_origin(filled, objectives)
    assert reference.tolist() == pytest.approx([1.0, 1.1 * max(compare_mo.mlp_params(c) for c in mlp.configs)])
    assert origin.tolist() == [0.0, 0.0]


def test_compare_mo_runs_ours_and_optuna_on_a_table_with_recorded_metrics(tmp_path, capsys, script_logging):
    lines = (TABLES / "mlp_digits.jsonl").read_text().splitlines()[:40]
    path = tmp_path / "with_latency.jsonl"
    path.write_text("".join(json.dumps({**json.loads(line), "inference_ms": 0.01 * (i + 1)}) + "\n"
                            for i, line in enumerate(lines)))
    code = compare_mo.main(["--table", str(path), "--space", "mlp", "--seeds", "1", "--budget", "20",
                            "--methods", "random,optuna-nsga2,optuna-motpe",
                            "--objectives", "validation_error:min,inference_ms:min"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ")}
    assert {"random", "optuna-nsga2", "optuna-motpe"} <= set(rows)
    assert "inference_ms 0.44" in out  # the reference: the worst recorded latency (0.40) plus a tenth
    for name in ("random", "optuna-nsga2", "optuna-motpe"):
        assert 0.0 < float(rows[name].split(" | ")[2]) < 1.0


@pytest.mark.slow  # the benchmark script on the real tables (tens of seconds)
@pytest.mark.parametrize("table,space", [("mlp_digits.jsonl", "mlp"), ("lenet_digits.jsonl", "lenet_digits")])
def test_compare_runs_the_full_fidelity_optuna_rows_on_both_tables(tmp_path, capsys, script_logging, table,
                                                                    space):
    code = compare.main(["--table", str(TABLES / table), "--space", space, "--rows", "60", "--seeds", "1",
                         "--budget", "15", "--algorithms", "random,optuna_gp,optuna_tpe", "--out", str(tmp_path)])
    assert code == 0
    text = (tmp_path / "compare.md").read_text()
    for name in ("random", "optuna_gp", "optuna_tpe"):
        assert f"| {name} | 1 |" in text
