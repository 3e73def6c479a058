"""Recorded learning curves (a tabular benchmark) that the simulator replays.

Format: JSON lines, one configuration per line::

    {"config": {"model.lr": 0.01, ...}, "val_error": [e_1, ..., e_E], "elapsed": [t_1, ..., t_E]}

``val_error[i]`` is the validation error after epoch ``i + 1``; ``elapsed[i]`` the cumulative training
seconds after that epoch (strictly increasing). Every row has the same number of epochs ``E``.
Blank lines are ignored. Errors name the file and line. Any other key of a row is an extra metric the
simulator passes through in its results' ``metrics``: a number (per row, e.g. ``"n_params": 8010``) or a
list of ``E`` numbers (per epoch, e.g. ``"inference_ms": [...]``); ``train_seconds`` is ``elapsed``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hydra_hpo.errors import UserError
from hydra_hpo.space import SearchSpace, SearchSpaceError


class TableError(UserError, ValueError):
    """A table file is malformed, or does not fit the search space; the message names the line."""


@dataclass(frozen=True)
class TableRow:
    """One recorded configuration: its per-epoch validation errors and cumulative training seconds."""

    index: int
    config: dict[str, Any]
    val_error: np.ndarray
    elapsed: np.ndarray


class _SpaceIndex:
    """A table's rows seen through one search space: canonical keys and unit-cube encodings."""

    def __init__(self, table: Table, space: SearchSpace) -> None:
        self.space = space
        self.exact: dict[tuple, int] = {}
        encoded = np.empty((len(table), space.encoded_dim))
        for i, config in enumerate(table.configs):
            try:
                key = space.key(config)
                encoded[i] = space.encode(config)
            except (SearchSpaceError, ValueError, TypeError) as error:
                raise TableError(f"{table.where(i)}: does not fit the search space: {error}") from error
            self.exact.setdefault(key, i)  # duplicates: the first row wins
        self.encoded = encoded
        self._memo: dict[tuple, int] = {}

    def lookup(self, config: Mapping[str, Any]) -> int:
        key = self.space.key(config)
        found = self.exact.get(key)
        if found is None:
            found = self._memo.get(key)
        if found is None:
            distances = np.sum((self.encoded - self.space.encode(config)) ** 2, axis=1)
            found = int(np.argmin(distances))  # ties go to the first row: deterministic
            self._memo[key] = found
        return found


class Table:
    """Learning curves of ``len(table)`` configurations over ``epochs`` epochs each."""

    def __init__(
        self,
        configs: Sequence[Mapping[str, Any]],
        val_error: Sequence[Sequence[float]] | np.ndarray,
        elapsed: Sequence[Sequence[float]] | np.ndarray,
        path: str | os.PathLike | None = None,
        line_numbers: Sequence[int] | None = None,
        extras: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.configs = [dict(c) for c in configs]
        self._lines = list(line_numbers) if line_numbers is not None else None
        if not self.configs:
            raise TableError(f"{self._name()}: the table has no rows")
        epochs = len(val_error[0])
        for i in range(len(self.configs)):
            _check_row(self.where(i), val_error[i], elapsed[i], epochs)
        self.val_error = np.asarray(val_error, dtype=float)
        self.elapsed = np.asarray(elapsed, dtype=float)
        self.extras = [dict(e) for e in extras] if extras is not None else [{} for _ in self.configs]
        for i, extra in enumerate(self.extras):
            _check_extras(self.where(i), extra, epochs)
        self._indexes: list[_SpaceIndex] = []

    @classmethod
    def load(cls, path: str | os.PathLike) -> Table:
        """Read and validate a JSON-lines table."""
        path = Path(path)
        if not path.is_file():
            raise TableError(f"table file {str(path)!r} does not exist")
        configs, errors, elapsed, lines, extras = [], [], [], [], []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise TableError(f"{path}, line {number}: not valid JSON: {error}") from error
                missing = [k for k in ("config", "val_error", "elapsed") if not isinstance(row, dict) or k not in row]
                if missing:
                    raise TableError(f"{path}, line {number}: missing key {missing[0]!r}")
                if not isinstance(row["config"], dict):
                    raise TableError(f"{path}, line {number}: 'config' must be a mapping, got {row['config']!r}")
                configs.append(row["config"])
                errors.append(row["val_error"])
                elapsed.append(row["elapsed"])
                lines.append(number)
                extras.append({k: v for k, v in row.items() if k not in ("config", "val_error", "elapsed")})
        return cls(configs, errors, elapsed, path=path, line_numbers=lines, extras=extras)

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return len(self.configs)

    @property
    def epochs(self) -> int:
        """Epochs ``E`` recorded per configuration (the largest resource the table can replay)."""
        return int(self.val_error.shape[1])

    def final_errors(self) -> np.ndarray:
        """Each row's validation error after the last epoch."""
        return self.val_error[:, -1]

    def head(self, n: int) -> Table:
        """The first ``n`` rows as a table (a recorder's rows are a seeded random sample, so is any prefix)."""
        if not 1 <= n <= len(self):
            raise TableError(f"{self._name()}: cannot take the first {n} rows of {len(self)}")
        lines = self._lines[:n] if self._lines is not None else None
        return Table(self.configs[:n], self.val_error[:n], self.elapsed[:n], path=self.path, line_numbers=lines,
                     extras=self.extras[:n])

    def metrics_at(self, index: int, epoch: int) -> dict[str, float]:
        """Row ``index``'s extra metrics after ``epoch`` (1-based), with ``train_seconds`` from ``elapsed``."""
        metrics = {"train_seconds": float(self.elapsed[index, epoch - 1])}
        for name, value in self.extras[index].items():
            metrics[name] = float(value[epoch - 1] if isinstance(value, (list, tuple)) else value)
        return metrics

    def row(self, index: int) -> TableRow:
        return TableRow(index, dict(self.configs[index]), self.val_error[index], self.elapsed[index])

    def where(self, index: int) -> str:
        """``"<file>, line N"`` (or ``"row N"`` for an in-memory table) for error messages."""
        if self._lines is not None:
            return f"{self._name()}, line {self._lines[index]}"
        return f"{self._name()}, row {index}"

    def _name(self) -> str:
        return str(self.path) if self.path is not None else "table"

    # ------------------------------------------------------------------ lookup
    def lookup(self, config: Mapping[str, Any], space: SearchSpace) -> TableRow:
        """The row of ``config``: an exact match by the space's canonical key, else the nearest row in
        the space's unit-cube encoding (log scale for log parameters, one-hot choices)."""
        return self.row(self.lookup_index(config, space))

    def lookup_index(self, config: Mapping[str, Any], space: SearchSpace) -> int:
        """Index of :meth:`lookup`'s row (no copies: the simulator's fast path)."""
        return self._index(space).lookup(config)

    def _index(self, space: SearchSpace) -> _SpaceIndex:
        for index in self._indexes:
            if index.space is space:
                return index
        for index in self._indexes:
            if index.space == space:
                return index
        index = _SpaceIndex(self, space)
        self._indexes.append(index)
        return index


def _check_extras(where: str, extras: Mapping[str, Any], epochs: int) -> None:
    for name, value in extras.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, (list, tuple)) and len(value) != epochs:
            raise TableError(f"{where}: {name!r} has {len(value)} entries; a per-epoch metric needs {epochs}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TableError(f"{where}: {name!r} holds {v!r}, not a number (an extra metric is a number or "
                                 f"a list of {epochs} numbers)")


def _check_row(where: str, val_error: Any, elapsed: Any, epochs: int) -> None:
    for key, values in (("val_error", val_error), ("elapsed", elapsed)):
        if not isinstance(values, (list, tuple, np.ndarray)) or len(values) == 0:
            raise TableError(f"{where}: {key!r} must be a non-empty list of numbers")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise TableError(f"{where}: {key!r} holds {value!r}, not a number")
    if len(val_error) != len(elapsed):
        raise TableError(
            f"{where}: 'val_error' has {len(val_error)} epochs but 'elapsed' has {len(elapsed)}"
        )
    if len(val_error) != epochs:
        raise TableError(
            f"{where}: {len(val_error)} epochs, but the first row has {epochs}; every row needs the same number"
        )
    previous = 0.0
    for epoch, seconds in enumerate(elapsed, start=1):
        if not math.isfinite(seconds) or seconds <= previous:
            raise TableError(
                f"{where}: 'elapsed' must increase from > 0, but epoch {epoch} has {seconds} after {previous}"
            )
        previous = seconds
