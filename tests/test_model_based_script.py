"""benchmarks/model_based.py and compare.py: an unknown algorithm name is one line naming it and the fix; median
times keep their decimals where a budget is short."""

from __future__ import annotations

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
