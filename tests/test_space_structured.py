"""The structured YAML form of a search space, and the search space files under conf/search_space."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hydra_hpo.space import Categorical, Float, Int, SearchSpaceError
from hydra_hpo.space_structured import space_from_structured

CONF = Path(__file__).resolve().parents[1] / "conf" / "search_space"


STRUCTURED = {
    "model.lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "model.momentum": {"type": "float", "low": 0, "high": 0.99},
    "data.batch_size": {"type": "int", "low": 8, "high": 256, "log": True},
    "model.num_layers": {"type": "int", "low": 1, "high": 6},
    "model.activation": {"type": "categorical", "choices": ["tanh", "relu"]},
    "model.widths": {"choices": [[16, 16], [32]]},
    "model.dropout": "interval(0.0, 0.5)",
}


def test_from_structured() -> None:
    space = space_from_structured(STRUCTURED)
    assert space.names == list(STRUCTURED)
    assert space["model.lr"] == Float("model.lr", 1e-4, 1e-1, log=True)
    assert space["model.momentum"] == Float("model.momentum", 0.0, 0.99)
    assert space["data.batch_size"] == Int("data.batch_size", 8, 256, log=True)
    assert space["model.num_layers"] == Int("model.num_layers", 1, 6)
    assert space["model.activation"] == Categorical("model.activation", ("tanh", "relu"))
    assert space["model.widths"].choices == ([16, 16], [32])
    assert space["model.dropout"] == Float("model.dropout", 0.0, 0.5)


def test_structured_round_trip() -> None:
    space = space_from_structured(STRUCTURED)
    plain = space.to_structured()
    assert space_from_structured(plain) == space
    assert space_from_structured(OmegaConf.create(plain)) == space
    assert OmegaConf.to_container(OmegaConf.create(plain)) == plain  # serializable as YAML/JSON


@pytest.mark.parametrize(
    "entry, fragments",
    [
        ({"type": "float", "low": 0.1, "high": 1, "lgo": True}, ["'model.x'", "unknown field 'lgo'"]),
        ({"type": "categorical", "choices": [1], "low": 0}, ["'model.x'", "unknown field 'low'"]),
        ({"type": "double", "low": 0.1, "high": 1}, ["'model.x'", "unknown type 'double'"]),
        ({"low": 0.1, "high": 1}, ["'model.x'", "unknown type None"]),
        ({"type": "float", "low": 0.1}, ["'model.x'", "needs 'high'"]),
        ({"type": "float", "low": 1, "high": 0.1}, ["'model.x'", "low=1", "high=0.1"]),
        ({"type": "float", "low": 0, "high": 1, "log": True}, ["'model.x'", "low=0"]),
        ({"type": "float", "low": 0.1, "high": 1, "log": "yes"}, ["'model.x'", "log='yes'"]),
        ({"type": "int", "low": 1.5, "high": 4}, ["'model.x'", "low=1.5"]),
        ({"type": "categorical", "choices": []}, ["'model.x'", "empty choice"]),
        ({"type": "categorical", "choices": "relu"}, ["'model.x'", "'relu'"]),
        (0.5, ["'model.x'", "0.5"]),
        ("0.5", ["'model.x'", "0.5"]),
    ],
)
def test_from_structured_errors(entry, fragments) -> None:
    with pytest.raises(SearchSpaceError) as info:
        space_from_structured({"model.x": entry})
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("softmax", {"model.lr": Float("model.lr", 1e-4, 1e-1, log=True)}),
        (
            "mlp",
            {
                "model.lr": Float("model.lr", 1e-6, 1e-1, log=True),
                "data.batch_size": Int("data.batch_size", 8, 256, log=True),
                "model.momentum": Float("model.momentum", 0.0, 0.99),
                "model.activation": Categorical("model.activation", ("tanh", "relu")),
                "model.num_units": Int("model.num_units", 32, 1024, log=True),
                "model.num_layers": Int("model.num_layers", 1, 6),
            },
        ),
        (
            "lenet",
            {
                "model.lr": Float("model.lr", 1e-2, 1.0, log=True),
                "data.batch_size": Int("data.batch_size", 32, 256),
            },
        ),
    ],
)
def test_config_files_load(name: str, expected: dict) -> None:
    space = space_from_structured(OmegaConf.load(CONF / f"{name}.yaml"))
    assert space.params == expected
    assert space.names == list(expected)


def test_space_modules_import_no_hydra_and_space_imports_none_of_the_readers() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import hydra_hpo.space\n"
        "assert not any(m.startswith('hydra_hpo.space_') for m in sys.modules), sorted(sys.modules)\n"
        "import hydra_hpo.space_structured, hydra_hpo.space_validation\n"
        "hydra_hpo.space_structured.space_from_structured({'a': {'type': 'int', 'low': 1, 'high': 3}})\n"
        "assert 'hydra' not in sys.modules and 'omegaconf' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
