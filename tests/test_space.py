"""The typed search space: validation of parameters, sampling, unit cube, encoding, keys, merging.

The structured YAML form is tested in test_space_structured.py, the check against the job config in
test_space_validation.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from hydra_hpo.space import Categorical, Float, Int, SearchSpace, SearchSpaceError


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


def test_merge_replaces_entries_in_place_and_appends() -> None:
    file_space = SearchSpace([Float("model.lr", 1e-4, 1e-1, log=True), Int("data.batch_size", 8, 64)])
    cli = SearchSpace([Float("model.lr", 1e-5, 1.0), Categorical("model.activation", ("relu",))])
    merged = file_space.merge(cli)
    assert merged.names == ["model.lr", "data.batch_size", "model.activation"]
    assert merged["model.lr"] == Float("model.lr", 1e-5, 1.0)
    assert file_space["model.lr"].log  # the original is unchanged
