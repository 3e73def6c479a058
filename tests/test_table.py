"""The recorded-curves table: loading, validation (errors name the line) and config lookup."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hydra_hpo.space import Categorical, Float, Int, SearchSpace
from hydra_hpo.table import Table, TableError


def write_rows(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def row(config: dict, errors=(0.5, 0.4, 0.3), elapsed=(1.0, 2.0, 3.0)) -> dict:
    return {"config": config, "val_error": list(errors), "elapsed": list(elapsed)}


LR_SPACE = SearchSpace([Float("model.lr", 1e-6, 1e-1, log=True)])


def test_load_reads_rows_and_epochs(tmp_path):
    path = write_rows(tmp_path / "t.jsonl", [row({"model.lr": 1e-3}), "", row({"model.lr": 1e-2}, errors=(0.9, 0.2, 0.1))])
    table = Table.load(path)
    assert len(table) == 2
    assert table.epochs == 3
    np.testing.assert_allclose(table.final_errors(), [0.3, 0.1])
    assert table.row(1).config == {"model.lr": 1e-2}


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{not json", "line 3: not valid JSON"),
        (json.dumps({"config": {"model.lr": 1e-3}, "val_error": [0.5, 0.4, 0.3]}), "line 3: missing key 'elapsed'"),
        (json.dumps(row({"model.lr": 1e-3}, errors=(0.5, 0.4))), "line 3: 'val_error' has 2 epochs but 'elapsed' has 3"),
        (json.dumps(row({"model.lr": 1e-3}, elapsed=(1.0, 1.0, 3.0))), "line 3: 'elapsed' must increase"),
        (json.dumps(row({"model.lr": 1e-3}, elapsed=(0.0, 1.0, 3.0))), "line 3: 'elapsed' must increase"),
        (json.dumps(row({"model.lr": 1e-3}, errors=(0.5, 0.4, 0.3, 0.2), elapsed=(1, 2, 3, 4))),
         "line 3: 4 epochs, but the first row has 3"),
        (json.dumps(row({"model.lr": 1e-3}, errors=(0.5, "x", 0.3))), "line 3: 'val_error' holds 'x'"),
    ],
)
def test_invalid_rows_name_their_line(tmp_path, bad, message):
    path = write_rows(tmp_path / "t.jsonl", [row({"model.lr": 1e-3}), row({"model.lr": 1e-2}), bad])
    with pytest.raises(TableError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Table.load(path)


def test_missing_file_and_empty_table(tmp_path):
    with pytest.raises(TableError, match="does not exist"):
        Table.load(tmp_path / "nope.jsonl")
    with pytest.raises(TableError, match="no rows"):
        Table.load(write_rows(tmp_path / "empty.jsonl", [""]))


def test_row_without_a_space_key_is_a_clear_error(tmp_path):
    path = write_rows(tmp_path / "t.jsonl", [row({"model.lr": 1e-3}), row({"model.momentum": 0.9})])
    table = Table.load(path)
    with pytest.raises(TableError, match=r"line 2: does not fit the search space.*'model.lr' is missing"):
        table.lookup({"model.lr": 1e-3}, LR_SPACE)


def test_exact_match_by_canonical_key():
    space = SearchSpace([Float("x", 0.0, 1.0), Int("n", 1, 10)])
    table = Table([{"x": 0.5, "n": 3}, {"x": 0.5, "n": 4}, {"x": 0.2, "n": 4}],
                  [[0.1], [0.2], [0.3]], [[1.0], [1.0], [1.0]])
    assert table.lookup({"x": 0.5, "n": 4}, space).index == 1
    # extra keys in the config are ignored; the space decides what matters
    assert table.lookup({"x": 0.2, "n": 4, "other": "y"}, space).index == 2


def test_nearest_neighbour_uses_log_scale_for_log_params():
    table = Table([{"model.lr": 2e-5}, {"model.lr": 5e-3}], [[0.1], [0.2]], [[1.0], [1.0]])
    # 1e-3 is closer to 2e-5 on a linear scale (by 0.98e-3 against 4e-3), but in log scale it is
    # 0.7 decades from 5e-3 against 1.7 from 2e-5
    assert abs(1e-3 - 2e-5) < abs(1e-3 - 5e-3)
    assert table.lookup({"model.lr": 1e-3}, LR_SPACE).index == 1
    linear = SearchSpace([Float("model.lr", 1e-6, 1e-1, log=False)])
    assert table.lookup({"model.lr": 1e-3}, linear).index == 0
    assert table.lookup({"model.lr": 1e-5}, LR_SPACE).index == 0


def test_nearest_neighbour_one_hot_categoricals():
    space = SearchSpace([Categorical("act", ("tanh", "relu", "gelu")), Float("model.lr", 1e-6, 1e-1, log=True)])
    table = Table(
        [{"act": "tanh", "model.lr": 1e-2}, {"act": "relu", "model.lr": 1e-4}, {"act": "gelu", "model.lr": 1e-2}],
        [[0.1], [0.2], [0.3]], [[1.0], [1.0], [1.0]],
    )
    # a different choice is farther than two decades of learning rate
    assert table.lookup({"act": "relu", "model.lr": 1e-2}, space).index == 1
    assert table.lookup({"act": "gelu", "model.lr": 1e-4}, space).index == 2


def test_lookup_is_deterministic_and_cached_per_space():
    space = SearchSpace([Float("x", 0.0, 1.0)])
    table = Table([{"x": 0.0}, {"x": 1.0}], [[0.1], [0.2]], [[1.0], [1.0]])
    # equidistant: the first row wins, every time
    assert [table.lookup_index({"x": 0.5}, space) for _ in range(3)] == [0, 0, 0]
    assert table.lookup_index({"x": 0.7}, SearchSpace([Float("x", 0.0, 1.0)])) == 1
    assert len(table._indexes) == 1  # an equal space reuses the encoded matrix


def test_head_takes_a_prefix_and_refuses_more_rows_than_there_are(tmp_path):
    path = write_rows(tmp_path / "t.jsonl", [row({"model.lr": 10.0 ** -k}) for k in range(1, 5)])
    table = Table.load(path)
    head = table.head(2)
    assert len(head) == 2 and head.configs == table.configs[:2]
    assert head.lookup_index({"model.lr": 1e-4}, LR_SPACE) == 1  # the nearest of the two rows left
    assert head.where(1) == table.where(1)
    for n in (0, 5):
        with pytest.raises(TableError, match=f"first {n} rows of 4"):
            table.head(n)
