"""``result.json``: what a job reports to the sweeper, written atomically and read back with validation."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra_hpo.atomic import atomic_write_text

RESULT_FILE = "result.json"
REQUIRED_KEYS = ("metric", "value", "status")


def _finite_or_none(value: Any) -> Any:
    # JSON has no NaN or inf: write null and let "status" say why.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def write_result(path_or_dir: str | Path, result: Mapping[str, Any]) -> Path:
    """Write ``result`` as JSON (non-finite floats as null) to ``path_or_dir`` or ``<dir>/result.json``."""
    path = Path(path_or_dir)
    if path.is_dir() or path.suffix != ".json":
        path = path / RESULT_FILE
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing:
        raise ValueError(f"result for {path} lacks the keys {missing}")
    atomic_write_text(path, json.dumps(_finite_or_none(dict(result)), indent=2, allow_nan=False) + "\n")
    return path


def read_result(directory: str | Path) -> dict[str, Any] | None:
    """The result a job wrote into ``directory``, or None when there is no ``result.json``.

    ``value`` is a float or None (failed, diverged, timeout); null entries of ``curve`` and
    ``epoch_seconds`` come back as NaN. Raises ValueError, naming the file, for content that is not a result.
    """
    path = Path(directory)
    if path.is_dir():
        path = path / RESULT_FILE
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(result, dict):
        raise ValueError(f"{path} holds a {type(result).__name__}, not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in result]
    if missing:
        raise ValueError(f"{path} lacks the keys {missing}")
    if not isinstance(result["status"], str):
        raise ValueError(f"{path}: status must be a string, got {result['status']!r}")
    value = result["value"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"{path}: value must be a number or null, got {value!r}")
    result["value"] = None if value is None else float(value)
    for key in ("curve", "epoch_seconds"):
        entries = result.get(key, [])
        if not isinstance(entries, list):
            raise ValueError(f"{path}: {key} must be a list, got {entries!r}")
        result[key] = [math.nan if v is None else float(v) for v in entries]
    return result
