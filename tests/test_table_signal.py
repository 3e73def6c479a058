"""benchmarks/table_signal.py: a GP learns a smooth table and not a scrambled one; nearest-row replay stays
within half the rows' spacing; the script prints its three parts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import table_signal  # noqa: E402
from hydra_hpo.space import Float, SearchSpace  # noqa: E402
from hydra_hpo.table import Table  # noqa: E402

SPACE = SearchSpace([Float("a", 0.0, 1.0), Float("b", 0.0, 1.0)])


def smooth_table(scramble: bool = False) -> Table:
    """300 rows; the error grows with the distance of ``a`` from 0.3 (``b`` does not matter); ``scramble``
    deals the same curves to the configurations at random."""
    rng = np.random.default_rng(0)
    configs = [{"a": float(a), "b": float(b)} for a, b in rng.random((300, 2))]
    final = np.array([0.01 + (c["a"] - 0.3) ** 2 for c in configs])
    if scramble:
        final = rng.permutation(final)
    return Table(configs, np.column_stack([final + 0.1, final]), [[1.0, 2.0]] * len(configs))


def test_a_gp_finds_the_target_rows_of_a_smooth_table_and_not_of_a_scrambled_one():
    table = smooth_table()
    _, reach = table_signal.target_rows(table)
    base = reach.mean()
    smooth = table_signal.learnable(table, SPACE, [40], reps=5)[40]
    scrambled = table_signal.learnable(smooth_table(scramble=True), SPACE, [40], reps=5)[40]
    assert smooth >= 5 * base
    assert scrambled < smooth


def test_the_replayed_row_is_the_nearest_one():
    space = SearchSpace([Float("a", 0.0, 1.0)])
    grid = Table([{"a": k / 100} for k in range(101)], [[0.5]] * 101, [[1.0]] * 101)
    gaps = table_signal.replay_distances(grid, space, n=500)["a"]
    assert gaps.max() <= 0.005 + 1e-9


def test_it_prints_the_three_parts(capsys, script_logging):
    assert table_signal.main(["--rows", "60", "--seeds", "1", "--reps", "2", "--sizes", "10",
                              "--algorithms", "random"]) == 0
    out = capsys.readouterr().out
    assert "fitted on   10 random rows" in out and "target rows replayed" in out
    assert [line for line in out.splitlines() if line.startswith("| random |")]
