"""Check a search space against the composed job config before any job starts.

Each swept key must exist in the job config, and its parameter type must fit the value there (an int
parameter on an int key, a string choice on a string key or on a config group, ...). Hydra-free: the
plugin passes the composed config as a nested plain dict.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from hydra_hpo.space import Categorical, Int, Param, SearchSpace, SearchSpaceError, _is_int, _is_real


def validate_space(space: SearchSpace, job_config: Mapping[str, Any]) -> None:
    """Raise :class:`SearchSpaceError` naming the key when a key of ``space`` is missing from
    ``job_config`` (with the closest keys as a hint) or its type does not fit the value there.

    A ``None`` value accepts anything; a string choice on a key holding a mapping is taken as a
    config-group choice.
    """
    for name, p in space.items():
        found, current = _lookup(job_config, name)
        if not found:
            close = difflib.get_close_matches(name, _dotted_keys(job_config), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise SearchSpaceError(f"search space key '{name}' is not in the job config{hint}")
        _check_fits(p, current)


def _lookup(base: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = base
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _dotted_keys(base: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in base.items():
        dotted = f"{prefix}{k}"
        keys.append(dotted)
        if isinstance(v, Mapping):
            keys.extend(_dotted_keys(v, dotted + "."))
    return keys


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if _is_int(value):
        return "an int"
    if _is_real(value):
        return "a float"
    if isinstance(value, str):
        return "a str"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def _choice_fits(choice: Any, current: Any) -> bool:
    if choice is None:
        return True
    if isinstance(current, bool):
        return isinstance(choice, bool)
    if _is_int(current):
        return _is_int(choice)
    if _is_real(current):
        return _is_real(choice)
    if isinstance(current, str):
        return isinstance(choice, str)
    if isinstance(current, Mapping):
        # a string picks a config-group option (``model=choice(mlp,lenet)``)
        return isinstance(choice, (str, Mapping))
    if isinstance(current, Sequence):
        return isinstance(choice, Sequence) and not isinstance(choice, str)
    return True


def _check_fits(p: Param, current: Any) -> None:
    if current is None:
        return
    where = f"search space key '{p.name}'"
    if isinstance(p, Categorical):
        for choice in p.choices:
            if not _choice_fits(choice, current):
                raise SearchSpaceError(
                    f"{where}: choice {choice!r} is {_type_name(choice)} but the current value "
                    f"{current!r} is {_type_name(current)}"
                )
        return
    kind = "int" if isinstance(p, Int) else "float"
    if _is_real(current) and (isinstance(p, Int) or not _is_int(current)):
        return
    hint = ": use int bounds" if _is_int(current) else ""
    raise SearchSpaceError(
        f"{where}: a {kind} parameter does not fit the current value {current!r}, "
        f"which is {_type_name(current)}{hint}"
    )
