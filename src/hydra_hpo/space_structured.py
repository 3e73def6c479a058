"""The structured YAML form of a search space: ``{key: {type, low, high, log, choices}}`` per dotted key.

An entry may instead be a string in Hydra's sweep grammar (``tag(log, interval(1e-4, 1))``), parsed by
:mod:`hydra_hpo.space_grammar` (which imports Hydra only when such an entry is read).
:meth:`SearchSpace.to_structured <hydra_hpo.space.SearchSpace.to_structured>` writes the plain-dict form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra_hpo.space import Categorical, Float, Int, Param, SearchSpace, SearchSpaceError
from hydra_hpo.space_grammar import param_from_sweep_string


def space_from_structured(mapping: Mapping[str, Any]) -> SearchSpace:
    """Build a space from ``{key: {type: float|int|categorical, low, high, log, choices}}``.

    An entry may instead be a string in Hydra's sweep grammar, e.g. ``tag(log, interval(1e-4, 1))``.
    """
    if not isinstance(mapping, Mapping):
        raise SearchSpaceError(f"search space must be a mapping of keys to entries, got {mapping!r}")
    params = []
    for name, entry in mapping.items():
        name = str(name)
        if isinstance(entry, str):
            params.append(param_from_sweep_string(name, entry))
        elif isinstance(entry, Mapping):
            params.append(_param_from_entry(name, entry))
        else:
            raise SearchSpaceError(
                f"search space key '{name}': entry {entry!r} is neither a mapping "
                "{type, low, high, log, choices} nor a sweep string"
            )
    return SearchSpace(params)


_STRUCTURED_FIELDS = {
    "float": {"type", "low", "high", "log"},
    "int": {"type", "low", "high", "log"},
    "categorical": {"type", "choices"},
}


def _param_from_entry(name: str, entry: Mapping[str, Any]) -> Param:
    kind = entry.get("type", "categorical" if "choices" in entry else None)
    if kind not in _STRUCTURED_FIELDS:
        raise SearchSpaceError(
            f"search space key '{name}': unknown type {kind!r} (known: float, int, categorical)"
        )
    unknown = sorted(set(entry) - _STRUCTURED_FIELDS[kind])
    if unknown:
        raise SearchSpaceError(
            f"search space key '{name}': unknown field {unknown[0]!r} for type {kind!r} "
            f"(known: {', '.join(sorted(_STRUCTURED_FIELDS[kind]))})"
        )
    if kind == "categorical":
        if "choices" not in entry:
            raise SearchSpaceError(f"search space key '{name}': categorical needs 'choices'")
        choices = entry["choices"]
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise SearchSpaceError(
                f"search space key '{name}': choices must be a list, got {choices!r}"
            )
        return Categorical(name, tuple(_plain(c) for c in choices))
    for field in ("low", "high"):
        if field not in entry:
            raise SearchSpaceError(f"search space key '{name}': type {kind!r} needs '{field}'")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise SearchSpaceError(f"search space key '{name}': log={log!r} is not true/false")
    cls = Int if kind == "int" else Float
    return cls(name, entry["low"], entry["high"], log)


def _plain(value: Any) -> Any:
    """Nested OmegaConf containers -> plain lists and dicts (without importing omegaconf)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_plain(v) for v in value]
    return value
