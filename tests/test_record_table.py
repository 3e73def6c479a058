"""The table recorder (benchmarks/record_table.py): sharded recording merges into the same table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recorder():
    spec = importlib.util.spec_from_file_location("record_table", REPO / "benchmarks" / "record_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_shards_merge_into_the_unsharded_table(recorder, tmp_path) -> None:
    whole, sharded = tmp_path / "whole.jsonl", tmp_path / "sharded.jsonl"
    common = ["--configs", "5", "--epochs", "2"]
    assert recorder.main(common + ["--out", str(whole)]) == 0
    assert recorder.main(["--configs", "1", "--epochs", "2", "--out", str(sharded)]) == 0  # rows already there
    for shard in ("1/2", "0/2"):
        assert recorder.main(common + ["--out", str(sharded), "--shard", shard]) == 0
    shard_rows = rows(recorder.shard_path(sharded, 1, 2))
    assert [row["index"] for row in shard_rows] == [1, 3]  # index % 2 == 1, after the row in --out
    assert recorder.main(common + ["--out", str(sharded), "--merge", "2"]) == 0

    expected, merged = rows(whole), rows(sharded)
    assert [r["config"] for r in merged] == [r["config"] for r in expected]
    # the same seeded training: identical curves (elapsed is measured CPU time, so only its shape is checked)
    assert [r["val_error"] for r in merged] == [r["val_error"] for r in expected]
    assert all(len(r["elapsed"]) == 2 and 0 < r["elapsed"][0] <= r["elapsed"][1] for r in merged)
    assert all("index" not in r for r in merged)
    # merging again adds nothing
    assert recorder.main(common + ["--out", str(sharded), "--merge", "2"]) == 0
    assert len(rows(sharded)) == 5


def test_merge_stops_at_a_gap(recorder, tmp_path) -> None:
    out = tmp_path / "table.jsonl"
    assert recorder.main(["--configs", "4", "--epochs", "1", "--out", str(out), "--shard", "1/2"]) == 0
    assert recorder.main(["--configs", "4", "--epochs", "1", "--out", str(out), "--merge", "2"]) == 0
    assert not out.exists() or rows(out) == []  # index 0 (shard 0) is missing: nothing can be appended
    assert recorder.main(["--configs", "4", "--epochs", "1", "--out", str(out), "--shard", "0/2"]) == 0
    assert recorder.main(["--configs", "4", "--epochs", "1", "--out", str(out), "--merge", "2"]) == 0
    assert len(rows(out)) == 4


def test_bad_shard_is_refused(recorder) -> None:
    with pytest.raises(SystemExit):
        recorder.main(["--shard", "2/2"])
