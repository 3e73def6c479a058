"""benchmarks/model_based.py and compare.py: an unknown algorithm name is one line naming it and the fix; median
times keep their decimals where a budget is short."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import model_based  # noqa: E402


def test_an_unknown_base_algorithm_is_one_line_with_the_variant_to_use(capsys):
    with pytest.raises(SystemExit) as exit_info:
        model_based.main(["--base", "asha,hypertune", "--seeds", "1"])
    assert exit_info.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert "--base 'hypertune'" in line and '--variant "hypertune=hpo=hypertune"' in line


def test_median_times_keep_their_decimals_on_a_short_budget():
    from compare import seconds_text

    assert [seconds_text(t) for t in (3.0, 3.456, 27.44, 110.6, float("inf"))] == ["3.00", "3.46", "27.4", "111", "-"]


def test_a_ratio_against_a_side_that_never_got_there_is_a_bound_and_intervals_stay_ordered():
    from compare import interval_bounds, ratio_text, time_ratio

    inf, nan = float("inf"), float("nan")
    assert time_ratio(3.0, 6.0) == 0.5 and time_ratio(3.0, inf) == 0.0 and time_ratio(inf, 6.0) == inf
    assert math.isnan(time_ratio(inf, inf))
    # a resample where neither side got there counts against the algorithm; NaN no longer scrambles the sort
    ratios = [nan, 0.5, 2.0, nan, 0.25, 1.0, nan, 0.75, 1.5, 3.0, 0.1]
    low, high = interval_bounds(ratios, level=0.6)  # sorted: 0.1 ... 3.0, then three inf; indices 2 and 8
    assert (low, high) == (0.5, inf)
    assert low <= high
    assert ratio_text(3.0, 6.0, 0.4, 0.9, budget=20.0) == "0.50 [0.40, 0.90]"
    assert ratio_text(5.0, inf, 0.0, 0.8, budget=20.0) == "< 0.25 [0.00, 0.80]"  # the reference is past 20 s
    assert ratio_text(inf, 4.0, 1.2, inf, budget=20.0) == "> 5.00 [1.20, inf]"
    assert ratio_text(inf, inf, 0.0, inf, budget=20.0) == "-"


def test_first_seed_runs_the_seeds_after_it(monkeypatch, capsys, script_logging):
    called = []
    real = model_based.overrides_runner

    def recording_runner(*args, **kwargs):
        run = real(*args, **kwargs)
        return lambda seed: called.append(seed) or run(seed)

    monkeypatch.setattr(model_based, "overrides_runner", recording_runner)
    assert model_based.main(["--rows", "60", "--seeds", "3", "--first-seed", "7", "--base", "random"]) == 0
    assert called == [7, 8, 9]
    assert "3 seeds from 7," in capsys.readouterr().out
