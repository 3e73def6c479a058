"""The typed search space: validation, sampling, unit cube, encoding, structured form, config files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from hydra_hpo.space import Categorical, Float, Int, SearchSpace, SearchSpaceError

CONF = Path(__file__).resolve().parents[1] / "conf" / "search_space"


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace(
        [
            Float("model.lr", 1e-4, 1e-1, log=True),
            Float("model.momentum", 0.0, 0.99),
            Int("data.batch_size", 8, 256, log=True),
            Int("model.num_layers", 1, 6),
            Categorical("model.activation", ("relu", "tanh")),
            Categorical("model.flag", (True, 16, "x")),
        ]
    )


@pytest.mark.parametrize(
    "make, fragments",
    [
        (lambda: Float("model.lr", 1.0, 0.1), ["'model.lr'", "low=1.0", "high=0.1"]),
        (lambda: Float("model.lr", 0.1, 0.1), ["'model.lr'", "low=0.1 >= high=0.1"]),
        (lambda: Float("model.lr", 0.0, 1.0, log=True), ["'model.lr'", "low=0"]),
        (lambda: Float("model.lr", -1.0, 1.0, log=True), ["'model.lr'", "low=-1.0"]),
        (lambda: Float("model.lr", "a", 1.0), ["'model.lr'", "'a'"]),
        (lambda: Int("data.batch_size", 8.5, 256), ["'data.batch_size'", "low=8.5"]),
        (lambda: Int("data.batch_size", 8, 4), ["'data.batch_size'", "low=8 >= high=4"]),
        (lambda: Int("data.batch_size", 0, 4, log=True), ["'data.batch_size'", "low=0"]),
        (lambda: Categorical("model.activation", ()), ["'model.activation'", "empty choice"]),
    ],
)
def test_invalid_parameters_name_key_and_value(make, fragments) -> None:
    with pytest.raises(SearchSpaceError) as info:
        make()
    for fragment in fragments:
        assert fragment in str(info.value)


def test_duplicate_names_rejected() -> None:
    with pytest.raises(SearchSpaceError, match="'model.lr' appears twice"):
        SearchSpace([Float("model.lr", 0.1, 1.0), Int("model.lr", 1, 2)])


def test_container_protocol(space: SearchSpace) -> None:
    assert len(space) == 6
    assert space.names[0] == "model.lr" and list(space) == space.names
    assert space.params["data.batch_size"] == Int("data.batch_size", 8, 256, log=True)
    assert [name for name, _ in space.items()] == space.names


def test_sample_types_bounds_and_determinism(space: SearchSpace) -> None:
    configs = [space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert configs[0] == configs[1]
    rng = np.random.default_rng(0)
    for _ in range(200):
        config = space.sample(rng)
        assert space.contains(config)
        assert type(config["model.lr"]) is float
        assert type(config["data.batch_size"]) is int and type(config["model.num_layers"]) is int
        assert config["model.flag"] in (True, 16, "x")


def test_sample_keeps_choice_types(space: SearchSpace) -> None:
    rng = np.random.default_rng(1)
    seen = {type(space.sample(rng)["model.flag"]) for _ in range(100)}
    assert seen == {bool, int, str}


def test_log_scale_sampling(space: SearchSpace) -> None:
    rng = np.random.default_rng(2)
    samples = [space.sample(rng) for _ in range(2000)]
    lr = np.array([c["model.lr"] for c in samples])
    assert abs(np.log10(np.median(lr)) - (-2.5)) < 0.1
    batch = np.array([c["data.batch_size"] for c in samples])
    # log-uniform over 8..256: about half the draws below the geometric midpoint sqrt(8 * 257)
    assert 0.45 < np.mean(batch < np.sqrt(8 * 257)) < 0.55
    layers = np.array([c["model.num_layers"] for c in samples])
    assert set(layers) == set(range(1, 7))
    assert np.all(np.abs(np.bincount(layers)[1:] / len(layers) - 1 / 6) < 0.04)


def test_unit_round_trip(space: SearchSpace) -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        config = space.sample(rng)
        u = space.to_unit(config)
        assert u.shape == (6,) and np.all((u >= 0) & (u <= 1))
        back = space.from_unit(u)
        # the contract: ints and choices exactly, floats to the last bits (which depend on the libm build),
        # and the canonical key exactly
        assert space.key(back) == space.key(config)
        for name, value in config.items():
            if isinstance(value, float):
                assert back[name] == pytest.approx(value, rel=1e-12, abs=0)
            else:
                assert back[name] == value


def test_key_snaps_floats_to_twelve_significant_digits(space: SearchSpace) -> None:
    config = space.sample(np.random.default_rng(0))
    nudged = {**config, "model.lr": float(np.nextafter(config["model.lr"], 1.0))}
    assert nudged["model.lr"] != config["model.lr"]
    assert space.key(nudged) == space.key(config)
    assert space.key({**config, "model.lr": config["model.lr"] * (1 + 1e-9)}) != space.key(config)


def test_from_unit_edges_and_equal_bins() -> None:
    space = SearchSpace([Int("n", 1, 4), Categorical("c", ("a", "b", "c"))])
    assert space.from_unit([0.0, 0.0]) == {"n": 1, "c": "a"}
    assert space.from_unit([1.0, 1.0]) == {"n": 4, "c": "c"}
    grid = np.linspace(0, 1, 4000, endpoint=False) + 1 / 8000
    counts = np.bincount([space.from_unit([u, u])["n"] for u in grid])[1:]
    assert np.all(counts == 1000)
    with pytest.raises(SearchSpaceError, match="expected 2 coordinates"):
        space.from_unit([0.5])


def test_log_float_from_unit_is_geometric() -> None:
    space = SearchSpace([Float("lr", 1e-4, 1e-1, log=True)])
    assert space.from_unit([0.5])["lr"] == pytest.approx(10**-2.5)
    assert space.to_unit({"lr": 1e-3})[0] == pytest.approx(1 / 3)


def test_encode(space: SearchSpace) -> None:
    config = {
        "model.lr": 1e-1,
        "model.momentum": 0.0,
        "data.batch_size": 8,
        "model.num_layers": 6,
        "model.activation": "tanh",
        "model.flag": 16,
    }
    vector = space.encode(config)
    assert space.encoded_dim == 4 + 2 + 3
    np.testing.assert_allclose(vector, [1, 0, 0, 1, 0, 1, 0, 1, 0])


def test_contains_and_key(space: SearchSpace) -> None:
    config = space.sample(np.random.default_rng(4))
    assert space.contains(config) and space.contains({**config, "other": 1})
    assert not space.contains({**config, "model.lr": 0.5})
    assert not space.contains({**config, "model.num_layers": 2.0})
    assert not space.contains({**config, "model.flag": 1})  # True is a choice, 1 is not
    assert not space.contains({k: v for k, v in config.items() if k != "model.lr"})
    assert space.key(config) == space.key(dict(config))
    assert hash(space.key(config)) == hash(space.key({**config, "other": 3}))
    other = "relu" if config["model.activation"] == "tanh" else "tanh"
    assert space.key(config) != space.key({**config, "model.activation": other})


def test_select(space: SearchSpace) -> None:
    config = space.sample(np.random.default_rng(5))
    assert space.select({**config, "seed": 1}) == config
    with pytest.raises(SearchSpaceError, match=r"'model.lr'.*0\.5"):
        space.select({**config, "model.lr": 0.5})


BASE = {
    "model": {"lr": 0.1, "momentum": 0.9, "activation": "relu", "num_layers": 2, "dropout": None},
    "data": {"batch_size": 16, "shuffle": True},
    "seed": 0,
}


def test_validate_against_accepts_fitting_types() -> None:
    SearchSpace(
        [
            Float("model.lr", 1e-4, 1.0, log=True),
            Int("model.momentum", 0, 1),  # int param on a float key is fine
            Categorical("model.activation", ("relu", "tanh")),
            Categorical("data.batch_size", (16, 32)),
            Categorical("data.shuffle", (True, False)),
            Float("model.dropout", 0.0, 0.5),  # None accepts anything
            Categorical("model", ("mlp", "lenet")),  # a config-group choice
        ]
    ).validate_against(BASE)


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
def test_validate_against_errors(param, fragments) -> None:
    with pytest.raises(SearchSpaceError) as info:
        SearchSpace([param]).validate_against(BASE)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_merge_replaces_entries_in_place_and_appends() -> None:
    file_space = SearchSpace([Float("model.lr", 1e-4, 1e-1, log=True), Int("data.batch_size", 8, 64)])
    cli = SearchSpace([Float("model.lr", 1e-5, 1.0), Categorical("model.activation", ("relu",))])
    merged = file_space.merge(cli)
    assert merged.names == ["model.lr", "data.batch_size", "model.activation"]
    assert merged["model.lr"] == Float("model.lr", 1e-5, 1.0)
    assert file_space["model.lr"].log  # the original is unchanged


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
    space = SearchSpace.from_structured(STRUCTURED)
    assert space.names == list(STRUCTURED)
    assert space["model.lr"] == Float("model.lr", 1e-4, 1e-1, log=True)
    assert space["model.momentum"] == Float("model.momentum", 0.0, 0.99)
    assert space["data.batch_size"] == Int("data.batch_size", 8, 256, log=True)
    assert space["model.num_layers"] == Int("model.num_layers", 1, 6)
    assert space["model.activation"] == Categorical("model.activation", ("tanh", "relu"))
    assert space["model.widths"].choices == ([16, 16], [32])
    assert space["model.dropout"] == Float("model.dropout", 0.0, 0.5)


def test_structured_round_trip() -> None:
    space = SearchSpace.from_structured(STRUCTURED)
    plain = space.to_structured()
    assert SearchSpace.from_structured(plain) == space
    assert SearchSpace.from_structured(OmegaConf.create(plain)) == space
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
        SearchSpace.from_structured({"model.x": entry})
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
    space = SearchSpace.from_structured(OmegaConf.load(CONF / f"{name}.yaml"))
    assert space.params == expected
    assert space.names == list(expected)
