"""Hydra's sweep grammar -> search-space parameters, parsed by Hydra's own ``OverridesParser``.

Semantics (pinned by tests/test_space_grammar.py):

- ``interval(a, b)``: continuous on the closed interval ``[a, b]`` (a :class:`Float`) ...
- ... unless both bounds are written as ints (``interval(8, 256)``) or cast with ``int(...)``: then an
  :class:`Int` over ``a, ..., b`` inclusive. ``float(interval(8, 256))`` forces a Float.
- ``tag(log, ...)``: log scale (log-uniform) for an interval or an int range.
- ``choice(a, b, c)`` and the simple form ``a,b,c``: a :class:`Categorical` (values keep their type).
- ``range(start, stop[, step])``: Python's end-exclusive range, like Hydra's basic sweeper
  (``range(1, 4)`` is 1, 2, 3, never 4). With int bounds and step 1 (and at least two values) it is an
  :class:`Int` over ``start, ..., stop - 1``; otherwise (a float or other step) a :class:`Categorical`
  of the range's values.

Anything else (a plain value, ``glob(...)``, adding or deleting keys) is rejected with a
:class:`SearchSpaceError` naming the key.
"""

from __future__ import annotations

from typing import Any, Union

from hydra_hpo.space import Categorical, Float, Int, Param, SearchSpace, SearchSpaceError


def _interval_keeping_ints(start: Union[int, float], end: Union[int, float]) -> Any:
    """Hydra's ``interval`` casts both bounds to float; keep ints so ``interval(8, 256)`` is an Int."""
    from hydra.core.override_parser.types import IntervalSweep

    return IntervalSweep(start=start, end=end)


def _parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    # same signature as Hydra's own function, so the grammar's type checks stay as they are
    parser.functions.functions["interval"] = _interval_keeping_ints
    return parser


def _parse(overrides: list[str]) -> list[Any]:
    from hydra.errors import OverrideParseException

    parser = _parser()
    parsed = []
    for text in overrides:
        try:
            parsed.extend(parser.parse_overrides([text]))
        except OverrideParseException as e:
            key, _, value = text.partition("=")
            lines = e.message.splitlines()
            reasons = [x for x in lines if not x.startswith(("Error parsing override", "See https"))]
            raise SearchSpaceError(
                f"search space key '{key}': cannot parse {value!r}: {(reasons or lines)[0]}"
            ) from e
    return parsed


def _unquote(value: Any) -> Any:
    from hydra.core.override_parser.types import QuotedString

    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {k: _unquote(v) for k, v in value.items()}
    return value


def _param_from_override(override: Any) -> Param:
    from hydra.core.override_parser.types import (
        ChoiceSweep,
        IntervalSweep,
        OverrideType,
        RangeSweep,
    )

    key = override.key_or_group
    text = override.input_line
    if not override.is_sweep_override():
        raise SearchSpaceError(f"search space key '{key}': {text!r} is not a sweep")
    if override.type != OverrideType.CHANGE or override.package is not None:
        raise SearchSpaceError(
            f"search space key '{key}': {text!r}: only plain keys can be swept "
            "(no +, ++, ~ or @package)"
        )
    value = override.value()
    log = "log" in getattr(value, "tags", set())
    unknown_tags = sorted(set(getattr(value, "tags", set())) - {"log"})
    if unknown_tags:
        raise SearchSpaceError(f"search space key '{key}': unknown tag {unknown_tags[0]!r} in {text!r}")

    if isinstance(value, IntervalSweep):
        if isinstance(value.start, int) and isinstance(value.end, int):
            return Int(key, value.start, value.end, log)
        return Float(key, float(value.start), float(value.end), log)
    if isinstance(value, RangeSweep):
        values = list(value.range())
        if not values:
            raise SearchSpaceError(f"search space key '{key}': {text!r} is an empty range")
        if value.step == 1 and isinstance(value.start, int) and len(values) >= 2:
            return Int(key, values[0], values[-1], log)
        if log:
            raise SearchSpaceError(
                f"search space key '{key}': tag(log, ...) needs an interval or a step-1 int range, "
                f"got {text!r}"
            )
        return Categorical(key, tuple(values))
    if isinstance(value, ChoiceSweep) or override.is_choice_sweep():
        if log:
            raise SearchSpaceError(f"search space key '{key}': a choice cannot be log-scaled: {text!r}")
        choices = value.list if isinstance(value, ChoiceSweep) else None
        if choices is None:  # glob(...): its options come from the config loader, unknown here
            raise SearchSpaceError(f"search space key '{key}': {text!r} (glob) cannot be a search space")
        return Categorical(key, tuple(_unquote(c) for c in choices))
    raise SearchSpaceError(f"search space key '{key}': unsupported sweep {text!r}")


def param_from_sweep_string(key: str, value: str) -> Param:
    """Parse one sweep, e.g. ``param_from_sweep_string("model.lr", "tag(log, interval(1e-4, 1e-1))")``."""
    (override,) = _parse([f"{key}={value}"])
    return _param_from_override(override)


def space_from_overrides(overrides: list[str]) -> tuple[SearchSpace, list[str]]:
    """Split command-line overrides into the swept keys (a space) and the rest (forwarded unchanged)."""
    params: list[Param] = []
    forwarded: list[str] = []
    for text, override in zip(overrides, _parse(list(overrides))):
        if override.is_sweep_override():
            params.append(_param_from_override(override))
        else:
            forwarded.append(text)
    names = [p.name for p in params]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SearchSpaceError(f"search space key '{duplicates[0]}' is swept more than once")
    return SearchSpace(params), forwarded
