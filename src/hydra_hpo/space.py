"""The search space: typed parameters over dotted job-config keys.

Pure Python/numpy/scipy (no Hydra import, and no import of the modules that read spaces from config),
so searchers, schedulers and the simulator use it on their own. Hydra's sweep grammar
(``tag(log, interval(1e-4, 1e-1))``) is translated in :mod:`hydra_hpo.space_grammar`; the structured YAML
form is read by :mod:`hydra_hpo.space_structured`; :mod:`hydra_hpo.space_validation` checks a space
against the job config.

Mapping to the unit cube (used by Sobol and model-based searchers):

- ``Float``: linear, or linear in ``log`` for log parameters.
- ``Int``: the cube coordinate is cut into one bin per integer (bins of equal width, or of equal width
  in ``log(k)`` ... ``log(k + 1)`` for log parameters), so ``from_unit`` hits each integer with the
  same probability as :meth:`SearchSpace.sample`. ``to_unit`` returns the middle of the bin.
- ``Categorical``: ``floor(u * n)``; ``to_unit`` returns the middle of the choice's bin.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Union

import numpy as np
from scipy import stats

from hydra_hpo.errors import UserError

KEY_DIGITS = 12  # significant digits of a float in SearchSpace.key


class SearchSpaceError(UserError, ValueError):
    """An invalid search space; the message names the offending key and value."""


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_bounds(name: str, low: Any, high: Any, log: bool) -> None:
    for label, bound in (("low", low), ("high", high)):
        if not _is_real(bound) or not math.isfinite(bound):
            raise SearchSpaceError(
                f"search space key '{name}': {label}={bound!r} is not a finite number"
            )
    if low >= high:
        raise SearchSpaceError(f"search space key '{name}': low={low} >= high={high}")
    if log and low <= 0:
        raise SearchSpaceError(
            f"search space key '{name}': log scale needs bounds > 0, got low={low}"
        )


@dataclass(frozen=True)
class Float:
    """A continuous parameter on the closed interval ``[low, high]``."""

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_bounds(self.name, self.low, self.high, self.log)
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        object.__setattr__(self, "log", bool(self.log))


@dataclass(frozen=True)
class Int:
    """An integer parameter on ``low, ..., high`` (both inclusive); ``log``: log-uniform over the integers."""

    name: str
    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        for label, bound in (("low", self.low), ("high", self.high)):
            if not _is_int(bound):
                raise SearchSpaceError(
                    f"search space key '{self.name}': int parameter needs int bounds, "
                    f"got {label}={bound!r}"
                )
        _check_bounds(self.name, self.low, self.high, self.log)
        object.__setattr__(self, "low", int(self.low))
        object.__setattr__(self, "high", int(self.high))
        object.__setattr__(self, "log", bool(self.log))


@dataclass(frozen=True)
class Categorical:
    """An unordered choice among ``choices`` (values keep their type: ``"relu"``, ``16``, ``True``)."""

    name: str
    choices: tuple

    def __post_init__(self) -> None:
        if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, Sequence):
            raise SearchSpaceError(
                f"search space key '{self.name}': choices must be a list, got {self.choices!r}"
            )
        if len(self.choices) == 0:
            raise SearchSpaceError(f"search space key '{self.name}': empty choice {self.choices!r}")
        object.__setattr__(self, "choices", tuple(self.choices))

    def index(self, value: Any) -> int:
        """Position of ``value`` among the choices (``True`` does not match ``1``); -1 if absent."""
        for i, choice in enumerate(self.choices):
            if isinstance(choice, bool) == isinstance(value, bool) and choice == value:
                return i
        return -1


Param = Union[Float, Int, Categorical]


class SearchSpace:
    """An ordered mapping of dotted job-config keys to typed parameters."""

    def __init__(self, params: Mapping[str, Param] | Sequence[Param] = ()) -> None:
        items = list(params.values()) if isinstance(params, Mapping) else list(params)
        self._params: dict[str, Param] = {}
        self._distributions: dict[str, Any] = {}
        for param in items:
            if not isinstance(param, (Float, Int, Categorical)):
                raise SearchSpaceError(f"search space entry {param!r} is not a parameter")
            if param.name in self._params:
                raise SearchSpaceError(f"search space key '{param.name}' appears twice")
            self._params[param.name] = param

    # --- container -------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The parameter names (dotted job-config keys), in order."""
        return list(self._params)

    @property
    def params(self) -> dict[str, Param]:
        """A copy of the name -> parameter mapping."""
        return dict(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def items(self) -> Iterator[tuple[str, Param]]:
        return iter(self._params.items())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and list(self.items()) == list(other.items())

    def __repr__(self) -> str:
        return f"SearchSpace({list(self._params.values())!r})"

    def merge(self, other: SearchSpace) -> SearchSpace:
        """A new space: ``other``'s entries replace same-named ones (in place), new ones are appended."""
        merged = dict(self._params)
        merged.update(other._params)
        return SearchSpace(merged)

    # --- sampling and the unit cube --------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One configuration drawn from ``rng`` (uniform, or log-uniform for log parameters)."""
        config: dict[str, Any] = {}
        for name, p in self._params.items():
            if isinstance(p, Categorical):
                config[name] = p.choices[int(rng.integers(len(p.choices)))]
                continue
            x = self._distribution(p).rvs(random_state=rng)
            if isinstance(p, Float):
                config[name] = float(min(max(x, p.low), p.high))
            else:
                config[name] = int(min(max(math.floor(x), p.low), p.high))
        return config

    def _distribution(self, p: Float | Int) -> Any:
        """The parameter's frozen scipy distribution (cached: freezing costs more than drawing)."""
        if p.name not in self._distributions:
            if isinstance(p, Float):
                dist = stats.loguniform(p.low, p.high) if p.log else stats.uniform(p.low, p.high - p.low)
            elif p.log:
                # continuous log-uniform on [low, high + 1), floored: the same bins as from_unit
                dist = stats.loguniform(p.low, p.high + 1)
            else:
                dist = stats.randint(p.low, p.high + 1)
            self._distributions[p.name] = dist
        return self._distributions[p.name]

    def from_unit(self, u: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Map a point of the unit cube (one coordinate per parameter) to a configuration."""
        u = np.asarray(u, dtype=float).reshape(-1)
        if u.shape[0] != len(self):
            raise SearchSpaceError(f"from_unit: expected {len(self)} coordinates, got {u.shape[0]}")
        config: dict[str, Any] = {}
        for x, (name, p) in zip(np.clip(u, 0.0, 1.0), self._params.items()):
            if isinstance(p, Float):
                value = _from_unit_scale(x, p.low, p.high, p.log)
                config[name] = float(min(max(value, p.low), p.high))
            elif isinstance(p, Int):
                value = math.floor(_from_unit_scale(x, p.low, p.high + 1, p.log))
                config[name] = int(min(max(value, p.low), p.high))
            else:
                config[name] = p.choices[min(int(x * len(p.choices)), len(p.choices) - 1)]
        return config

    def to_unit(self, config: Mapping[str, Any]) -> np.ndarray:
        """Inverse of :meth:`from_unit`: integers and choices map to the middle of their bin."""
        u = np.empty(len(self))
        for i, (name, p) in enumerate(self._params.items()):
            value = self._value(config, name)
            if isinstance(p, Float):
                u[i] = _to_unit_scale(value, p.low, p.high, p.log)
            elif isinstance(p, Int):
                lo = _to_unit_scale(value, p.low, p.high + 1, p.log)
                hi = _to_unit_scale(value + 1, p.low, p.high + 1, p.log)
                u[i] = 0.5 * (lo + hi)
            else:
                u[i] = (self._choice_index(p, value) + 0.5) / len(p.choices)
        return u

    # --- encoding, membership, keys -------------------------------------------------------------

    @property
    def encoded_dim(self) -> int:
        """Length of :meth:`encode`'s vectors."""
        return sum(len(p.choices) if isinstance(p, Categorical) else 1 for p in self._params.values())

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Vector for distances: numbers scaled to [0, 1] (log scale for log params), one-hot choices."""
        parts: list[float] = []
        for name, p in self._params.items():
            value = self._value(config, name)
            if isinstance(p, Categorical):
                one_hot = [0.0] * len(p.choices)
                one_hot[self._choice_index(p, value)] = 1.0
                parts.extend(one_hot)
            else:
                parts.append(_to_unit_scale(value, p.low, p.high, p.log))
        return np.asarray(parts, dtype=float)

    def contains(self, config: Mapping[str, Any]) -> bool:
        """True when ``config`` has a valid value for every parameter (other keys are ignored)."""
        return all(name in config and _param_contains(p, config[name]) for name, p in self.items())

    def select(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The space's keys of ``config``; raises when one is missing or outside the space."""
        selected = {name: self._value(config, name) for name in self._params}
        for name, p in self._params.items():
            if not _param_contains(p, selected[name]):
                raise SearchSpaceError(
                    f"search space key '{name}': value {selected[name]!r} is outside {p}"
                )
        return selected

    def key(self, config: Mapping[str, Any]) -> tuple:
        """A hashable canonical key of a configuration (for duplicate detection).

        Floats are snapped to 12 significant digits: two values that differ only in the last bits
        (such as ``from_unit(to_unit(x))`` against ``x``, whose last bit depends on the numpy/libm
        build) are the same point.
        """
        key: list[Any] = []
        for name, p in self._params.items():
            value = self._value(config, name)
            if isinstance(p, Categorical):
                key.append(self._choice_index(p, value))
            elif isinstance(p, Int):
                key.append(int(value))
            else:
                key.append(float(f"{float(value):.{KEY_DIGITS}g}"))
        return tuple(key)

    # --- structured form -------------------------------------------------------------------------

    def to_structured(self) -> dict[str, dict[str, Any]]:
        """Plain-dict form (for serialization); round-trips through
        :func:`hydra_hpo.space_structured.space_from_structured`."""
        out: dict[str, dict[str, Any]] = {}
        for name, p in self._params.items():
            if isinstance(p, Categorical):
                out[name] = {"type": "categorical", "choices": list(p.choices)}
            else:
                kind = "int" if isinstance(p, Int) else "float"
                out[name] = {"type": kind, "low": p.low, "high": p.high, "log": p.log}
        return out

    # --- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _value(config: Mapping[str, Any], name: str) -> Any:
        if name not in config:
            raise SearchSpaceError(f"search space key '{name}' is missing from configuration {config!r}")
        return config[name]

    @staticmethod
    def _choice_index(p: Categorical, value: Any) -> int:
        index = p.index(value)
        if index < 0:
            raise SearchSpaceError(
                f"search space key '{p.name}': value {value!r} is not one of {list(p.choices)!r}"
            )
        return index


def _param_contains(p: Param, value: Any) -> bool:
    if isinstance(p, Categorical):
        return p.index(value) >= 0
    if isinstance(p, Int):
        return _is_int(value) and p.low <= value <= p.high
    return _is_real(value) and p.low <= value <= p.high


def _from_unit_scale(x: float, low: float, high: float, log: bool) -> float:
    if log:
        return math.exp(math.log(low) + x * (math.log(high) - math.log(low)))
    return low + x * (high - low)


def _to_unit_scale(value: float, low: float, high: float, log: bool) -> float:
    if log:
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)
