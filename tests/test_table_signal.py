"""benchmarks/table_signal.py: a GP learns a smooth table and not a scrambled one; nearest-row replay stays
within half the rows' spacing; the script prints its four parts; near misses are counted right."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

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


def test_it_prints_the_four_parts(capsys, script_logging):
    assert table_signal.main(["--rows", "60", "--seeds", "1", "--reps", "2", "--sizes", "10",
                              "--algorithms", "random"]) == 0
    out = capsys.readouterr().out
    assert "fitted on   10 random rows" in out and "target rows replayed" in out and "4. near misses" in out
    (row,) = [line for line in out.splitlines() if line.startswith("| random |")]
    assert 0.0 <= float(row.split("|")[4]) <= 1.0  # share of the time on other rows trained to the end


def test_near_misses_are_the_rows_within_the_factor_that_never_reach_the_target():
    """Finals 0.20, 0.21, ..., 1.20: the target is the second (0.21). Row 5 (final 0.25) dips to the target at
    epoch 2; row 20 (final 0.40) dips to 0.30, within 1.5x; row 30 only to 0.35."""
    finals = [0.2 + 0.01 * k for k in range(101)]
    dips = {5: 0.2, 20: 0.3, 30: 0.35}
    curves = [[0.9, dips.get(k, f), f, f] for k, f in enumerate(finals)]
    table = Table([{"a": k / 100, "b": 0.5} for k in range(101)], curves, [[1.0, 2.0, 3.0, 4.0]] * 101)
    target, reach = table_signal.target_rows(table)
    assert target == pytest.approx(0.21) and sorted(np.flatnonzero(reach)) == [0, 1, 5]
    count, late_target, late_near = table_signal.near_misses(table, 1.5)
    assert count == 10  # rows 2-4 and 6-11 (finals 0.22-0.31), and row 20
    assert sorted(late_target) == pytest.approx([0.2, 0.21, 0.25])
    assert sorted(late_near) == pytest.approx(sorted([finals[k] for k in [2, 3, 4, 6, 7, 8, 9, 10, 11, 20]]))
