"""A search space checked against the composed job config: missing keys and types that do not fit."""

from __future__ import annotations

import pytest

from hydra_hpo.space import Categorical, Float, Int, SearchSpace, SearchSpaceError
from hydra_hpo.space_validation import validate_space

BASE = {
    "model": {"lr": 0.1, "momentum": 0.9, "activation": "relu", "num_layers": 2, "dropout": None},
    "data": {"batch_size": 16, "shuffle": True},
    "seed": 0,
}


def test_validate_space_accepts_fitting_types() -> None:
    space = SearchSpace(
        [
            Float("model.lr", 1e-4, 1.0, log=True),
            Int("model.momentum", 0, 1),  # int param on a float key is fine
            Categorical("model.activation", ("relu", "tanh")),
            Categorical("data.batch_size", (16, 32)),
            Categorical("data.shuffle", (True, False)),
            Float("model.dropout", 0.0, 0.5),  # None accepts anything
            Categorical("model", ("mlp", "lenet")),  # a config-group choice
        ]
    )
    validate_space(space, BASE)


@pytest.mark.parametrize(
    "param, fragments",
    [
        (Float("model.lrr", 0.1, 1.0), ["'model.lrr'", "not in the job config", "'model.lr'"]),
        (Float("nothing.here", 0.1, 1.0), ["'nothing.here'", "not in the job config"]),
        (Float("model.lr.x", 0.1, 1.0), ["'model.lr.x'", "not in the job config"]),
        (Float("data.batch_size", 8, 256), ["'data.batch_size'", "16", "an int", "use int bounds"]),
        (Float("model.activation", 0.1, 1.0), ["'model.activation'", "'relu'", "a str"]),
        (Int("model.activation", 1, 3), ["'model.activation'", "'relu'"]),
        (Int("data.shuffle", 0, 1), ["'data.shuffle'", "True", "a bool"]),
        (Categorical("data.batch_size", ("big", "small")), ["'data.batch_size'", "'big'", "16"]),
        (Categorical("model.activation", ("relu", 3)), ["'model.activation'", "3", "'relu'"]),
    ],
)
def test_validate_space_errors(param, fragments) -> None:
    with pytest.raises(SearchSpaceError) as info:
        validate_space(SearchSpace([param]), BASE)
    for fragment in fragments:
        assert fragment in str(info.value)
