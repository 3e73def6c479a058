"""The simulator with several objectives: a table's extra per-row and per-epoch columns come back as metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hydra_hpo.errors import SettingsError
from hydra_hpo.simulate import simulate
from hydra_hpo.space import Float, SearchSpace
from hydra_hpo.table import Table, TableError

SPACE = SearchSpace([Float("x", 0.0, 1.0)])
EPOCHS = 9


def write_table(path, rows: int = 60, extras: bool = True) -> Table:
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        for i in range(rows):
            x = float(rng.uniform())
            error = [(x - 0.3) ** 2 + 0.5 / e for e in range(1, EPOCHS + 1)]
            row = {"config": {"x": x}, "val_error": error, "elapsed": [float(e) for e in range(1, EPOCHS + 1)]}
            if extras:
                row["n_params"] = int(1000 * (1 - x))                        # per row
                row["inference_ms"] = [(1 - x) + 0.001 * e for e in range(EPOCHS)]  # per epoch
            f.write(json.dumps(row) + "\n")
    return Table.load(path)


def test_extra_columns_pass_through_as_metrics(tmp_path):
    table = write_table(tmp_path / "t.jsonl")
    assert table.metrics_at(3, 2) == {"train_seconds": 2.0, "n_params": table.extras[3]["n_params"],
                                      "inference_ms": table.extras[3]["inference_ms"][1]}
    assert table.head(5).extras == table.extras[:5]


def test_a_bad_extra_column_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"config": {"x": 0.1}, "val_error": [0.5, 0.4], "elapsed": [1, 2],
                                "inference_ms": [0.1]}) + "\n")
    with pytest.raises(TableError, match=r"bad.jsonl, line 1: 'inference_ms' has 1 entries; a per-epoch metric needs 2"):
        Table.load(path)


def test_a_simulated_mo_asha_sweep_writes_its_front(tmp_path):
    table = write_table(tmp_path / "t.jsonl")
    hpo = {"searcher": "random", "scheduler": "asha", "n_trials": 30, "r_min": 1, "eta": 3,
           "objectives": {"validation_error": "min", "inference_ms": "min"}, "constraints": {"n_params": {"max": 900}}}
    outcome = simulate(hpo, SPACE, table, n_workers=4, output_dir=tmp_path / "out")
    front = (tmp_path / "out" / "pareto_front.csv").read_text().splitlines()
    assert len(front) >= 3  # a header and at least two trade-offs
    for record in outcome.trials.values():
        for segment in record.segments:
            assert {"validation_error", "inference_ms", "n_params", "train_seconds"} <= set(segment.metrics)
    best = outcome.trials[outcome.best.trial_id].segments[-1]
    assert best.metrics["n_params"] <= 900


def test_a_table_without_the_column_stops_the_sweep_at_the_first_result(tmp_path):
    table = write_table(tmp_path / "t.jsonl", extras=False)
    hpo = {"searcher": "random", "scheduler": "fifo", "n_trials": 4,
           "objectives": {"validation_error": "min", "inference_ms": "min"}}
    outcome = simulate(hpo, SPACE, table, n_workers=2)
    assert outcome.fatal is not None and "'inference_ms'" in str(outcome.fatal)
    with pytest.raises(SettingsError, match="hpo.objectives.inference_ms='fast'"):
        simulate({**hpo, "objectives": {"inference_ms": "fast"}}, SPACE, table)
