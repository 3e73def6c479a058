"""benchmarks/region_oracle.py: the region is the rows best over the second half of training, and it runs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import region_oracle  # noqa: E402
from hydra_hpo.searchers import SEARCHERS  # noqa: E402
from hydra_hpo.space import Float, SearchSpace  # noqa: E402
from hydra_hpo.table import Table  # noqa: E402


def test_the_region_is_the_rows_best_over_the_second_half():
    # row 0 is best at epoch 1 only, row 2 best late: the region of one row is row 2
    table = Table([{"x": 0.1}, {"x": 0.5}, {"x": 0.9}],
                  [[0.1, 0.9, 0.9, 0.9], [0.5, 0.5, 0.5, 0.5], [0.9, 0.8, 0.2, 0.3]],
                  [[1, 2, 3, 4]] * 3)
    assert [c["x"] for c in region_oracle.top_rows(table, 1).configs] == [0.9]
    assert [c["x"] for c in region_oracle.top_rows(table, 2).configs] == [0.9, 0.5]
    assert np.array_equal(region_oracle.top_rows(table, 1).val_error[0], [0.9, 0.8, 0.2, 0.3])


def test_it_prints_a_row_per_region_and_algorithm(capsys, script_logging):
    assert region_oracle.main(["--rows", "60", "--seeds", "2", "--top", "10"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| top 10") or
            line.startswith("| all 60")]
    assert len(rows) == 2 * len(region_oracle.ALGORITHMS)


def test_the_startup_oracle_draws_its_startup_from_the_table_then_the_region_rows_once_each():
    table = Table([{"x": x / 10} for x in range(10)], [[0.5, 0.5]] * 10, [[1, 2]] * 10)
    space = SearchSpace([Float("x", 0.0, 1.0)])
    searcher = region_oracle.startup_oracle(table, np.array([7, 8, 9]))(space, seed=3, startup=4)
    suggested = [searcher.ask(trial_id)["x"] for trial_id in range(10)]
    assert all(x in {c["x"] for c in table.configs} for x in suggested)
    assert sorted(suggested[4:7]) == [0.7, 0.8, 0.9]  # the region, once each, right after the start-up
    # the same seed, the same suggestions
    again = region_oracle.startup_oracle(table, np.array([7, 8, 9]))(space, seed=3, startup=4)
    assert [again.ask(trial_id)["x"] for trial_id in range(10)] == suggested


def test_startup_rows_print_and_leave_the_searcher_registry_as_it_was(capsys, script_logging):
    before = dict(SEARCHERS)
    assert region_oracle.main(["--rows", "60", "--seeds", "2", "--top", "10", "--startup", "0,3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| top 10 of 60 |")]
    assert [row.split(" | ")[1] for row in rows] == ["0", "3"]
    assert all(len(row.split(" | ")) == 3 + len(region_oracle.ALGORITHMS) for row in rows)
    assert SEARCHERS == before
