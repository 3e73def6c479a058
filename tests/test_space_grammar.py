"""Hydra's sweep grammar -> typed parameters. These tests pin the documented semantics."""

from __future__ import annotations

import numpy as np
import pytest

from hydra_hpo.space import Categorical, Float, Int, SearchSpace, SearchSpaceError
from hydra_hpo.space_grammar import param_from_sweep_string, space_from_overrides
from hydra_hpo.space_structured import space_from_structured


@pytest.mark.parametrize(
    "value, expected",
    [
        # interval: continuous and closed; floats unless both bounds are ints or int(...) is used
        ("interval(1e-4,1e-1)", Float("k", 1e-4, 1e-1)),
        ("interval(0, 1.5)", Float("k", 0.0, 1.5)),
        ("tag(log,interval(1e-4,1e-1))", Float("k", 1e-4, 1e-1, log=True)),
        ("tag(log, interval(1e-5, 1))", Float("k", 1e-5, 1.0, log=True)),
        ("interval(8,256)", Int("k", 8, 256)),
        ("int(interval(8,256))", Int("k", 8, 256)),
        ("int(interval(8.0,256.0))", Int("k", 8, 256)),
        ("float(interval(8,256))", Float("k", 8.0, 256.0)),
        ("tag(log,int(interval(8,256)))", Int("k", 8, 256, log=True)),
        ("tag(log, interval(8, 256))", Int("k", 8, 256, log=True)),
        # choice: categorical, values keep their type
        ("choice(relu,tanh)", Categorical("k", ("relu", "tanh"))),
        ("relu,tanh", Categorical("k", ("relu", "tanh"))),
        ("choice(16, 32, 64)", Categorical("k", (16, 32, 64))),
        ("choice(true, false)", Categorical("k", (True, False))),
        ("choice(0.1, 'a b', x)", Categorical("k", (0.1, "a b", "x"))),
        ("choice([1,2],[3])", Categorical("k", ([1, 2], [3]))),
        # range: Python's end-exclusive range; an Int when int with step 1, else the values
        ("range(1,4)", Int("k", 1, 3)),
        ("shuffle(range(1,4))", Int("k", 1, 3)),
        ("tag(log, range(1, 101))", Int("k", 1, 100, log=True)),
        ("range(1,10,3)", Categorical("k", (1, 4, 7))),
        ("range(1,2)", Categorical("k", (1,))),
        ("range(0,1,0.25)", Categorical("k", (0.0, 0.25, 0.5, 0.75))),
        ("range(3,0,-1)", Categorical("k", (3, 2, 1))),
    ],
)
def test_grammar_forms(value: str, expected) -> None:
    param = param_from_sweep_string("k", value)
    assert param == expected
    assert type(param) is type(expected)


@pytest.mark.parametrize("value, ints", [("range(1,4)", {1, 2, 3}), ("range(0,10,5)", {0, 5})])
def test_range_never_includes_its_end(value: str, ints: set[int]) -> None:
    space = SearchSpace([param_from_sweep_string("k", value)])
    rng = np.random.default_rng(0)
    assert {space.sample(rng)["k"] for _ in range(200)} == ints


@pytest.mark.parametrize(
    "value, fragments",
    [
        ("0.1", ["'model.lr'", "0.1", "not a sweep"]),
        ("glob(*)", ["'model.lr'", "glob(*)"]),
        ("interval(1,1)", ["'model.lr'", "low=1 >= high=1"]),
        ("interval(0.5,0.1)", ["'model.lr'", "low=0.5 >= high=0.1"]),
        ("tag(log,interval(0,1.0))", ["'model.lr'", "low=0"]),
        ("tag(log,choice(1,2))", ["'model.lr'", "choice(1,2)"]),
        ("tag(log,range(0,1,0.5))", ["'model.lr'", "range(0,1,0.5)"]),
        ("tag(lg,interval(0.1,1.0))", ["'model.lr'", "unknown tag 'lg'"]),
        ("range(4,1)", ["'model.lr'", "empty range"]),
        ("choice()", ["'model.lr'", "choice()"]),
        ("interval(a,b)", ["'model.lr'", "interval(a,b)"]),
        ("choice(a,b", ["'model.lr'", "choice(a,b"]),
    ],
)
def test_invalid_sweeps_name_key_and_value(value: str, fragments: list[str]) -> None:
    with pytest.raises(SearchSpaceError) as info:
        param_from_sweep_string("model.lr", value)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_space_from_overrides_splits_sweeps_from_forwarded_overrides() -> None:
    overrides = [
        "hpo=random",
        "model.lr=tag(log,interval(1e-5,1))",
        "trainer.max_epochs=1",
        "model.activation=relu,tanh",
        "hydra/launcher=joblib",
        "+extra='a,b'",
        "data.batch_size=range(8,11)",
    ]
    space, forwarded = space_from_overrides(overrides)
    assert space.names == ["model.lr", "model.activation", "data.batch_size"]
    assert space["model.lr"] == Float("model.lr", 1e-5, 1.0, log=True)
    assert space["data.batch_size"] == Int("data.batch_size", 8, 10)
    assert forwarded == ["hpo=random", "trainer.max_epochs=1", "hydra/launcher=joblib", "+extra='a,b'"]


def test_space_from_overrides_without_sweeps() -> None:
    space, forwarded = space_from_overrides(["a=1", "b=x"])
    assert len(space) == 0 and forwarded == ["a=1", "b=x"]


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["a=choice(1,2)", "a=choice(3,4)"], "'a' is swept more than once"),
        (["+a=choice(1,2)"], "'a'"),
        (["model.lr=interval(1e-4,"], "'model.lr'"),
    ],
)
def test_space_from_overrides_errors(overrides: list[str], fragment: str) -> None:
    with pytest.raises(SearchSpaceError, match=fragment):
        space_from_overrides(overrides)


def test_command_line_replaces_file_entry() -> None:
    file_space = space_from_structured(
        {"model.lr": "tag(log, interval(1e-4, 1e-1))", "data.batch_size": {"type": "int", "low": 8, "high": 64}}
    )
    cli, _ = space_from_overrides(["model.lr=interval(0.01,0.1)"])
    merged = file_space.merge(cli)
    assert merged["model.lr"] == Float("model.lr", 0.01, 0.1)
    assert merged.names == ["model.lr", "data.batch_size"]


def test_grammar_round_trips_through_structured_form() -> None:
    space, _ = space_from_overrides(
        ["a=tag(log,interval(1e-4,1e-1))", "b=int(interval(1,9))", "c=choice(x,2,true)", "d=range(0,1,0.5)"]
    )
    assert space_from_structured(space.to_structured()) == space
