"""Execution inputs: checking and coercing given values against a flow's declared inputs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from typing import Any

from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import Input, InputType
from controlplane.errors import InvalidInputError, Problem

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip()):
        return int(value)
    raise ValueError("must be an integer")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number") from None


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ValueError("must be true or false")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError("must be a string")


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be JSON: {exc.msg}") from None
    return value


def _iso(parser: Callable[[str], Any], what: str) -> Callable[[Any], str]:
    def coerce(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be an ISO-8601 {what}")
        try:
            parser(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"must be an ISO-8601 {what}, not {value!r}") from None
        return value

    return coerce


def _duration(value: Any) -> str:
    parse_duration(_text(value))
    return str(value)


_COERCE: dict[InputType, Callable[[Any], Any]] = {
    InputType.STRING: _text,
    InputType.SECRET: _text,
    InputType.URI: _text,
    InputType.EMAIL: _text,
    InputType.INT: _integer,
    InputType.FLOAT: _number,
    InputType.BOOLEAN: _boolean,
    InputType.BOOL: _boolean,
    InputType.JSON: _json,
    InputType.YAML: lambda v: v,
    InputType.DATETIME: _iso(datetime.fromisoformat, "date-time"),
    InputType.DATE: _iso(date.fromisoformat, "date"),
    InputType.TIME: _iso(time.fromisoformat, "time"),
    InputType.DURATION: _duration,
}


def coerce_input(spec: Input, value: Any) -> Any:
    """One value converted to the input's type; ``ValueError`` says why it does not fit."""
    kind = spec.type
    if kind == InputType.FILE:
        raise ValueError("FILE inputs are not supported: Flowplane has no file storage for them")
    if kind in {InputType.SELECT, InputType.ENUM}:
        choices = spec.values if isinstance(spec.values, list) else []
        if value not in choices and not spec.allowCustomValue:
            raise ValueError(f"must be one of {choices}")
        return value
    if kind in {InputType.ARRAY, InputType.MULTISELECT}:
        items = _json(value)
        if not isinstance(items, list):
            raise ValueError("must be a list")
        if kind == InputType.MULTISELECT:
            choices = spec.values if isinstance(spec.values, list) else []
            unknown = [item for item in items if item not in choices]
            if unknown and not spec.allowCustomValue:
                raise ValueError(f"{unknown} are not among {choices}")
            return items
        item_spec = spec.model_copy(update={"type": spec.itemType or InputType.STRING})
        return [coerce_input(item_spec, item) for item in items]
    result = _COERCE[kind](value)
    _check_bounds(spec, result)
    return result


def _check_bounds(spec: Input, value: Any) -> None:
    if spec.validator and isinstance(value, str) and not re.fullmatch(spec.validator, value):
        raise ValueError(f"must match {spec.validator}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(spec.min, int | float) and value < spec.min:
            raise ValueError(f"must be ≥ {spec.min}")
        if isinstance(spec.max, int | float) and value > spec.max:
            raise ValueError(f"must be ≤ {spec.max}")


def resolve_inputs(declared: list[Input], given: Mapping[str, Any]) -> dict[str, Any]:
    """Given values checked, coerced and completed with defaults.

    Every problem is reported at once as ``InvalidInputError``; an unknown
    input name is a problem too, so a typo never silently drops a value.
    """
    problems: list[Problem] = []
    known = {spec.id for spec in declared}
    problems.extend(
        Problem(f"unknown input; the flow declares {sorted(known)}", path=f"inputs.{name}")
        for name in given
        if name not in known
    )
    resolved: dict[str, Any] = {}
    for spec in declared:
        path = f"inputs.{spec.id}"
        if spec.id in given and given[spec.id] is not None:
            try:
                resolved[spec.id] = coerce_input(spec, given[spec.id])
            except ValueError as exc:
                problems.append(Problem(str(exc), path=path))
        elif spec.defaults is not None:
            resolved[spec.id] = spec.defaults
        elif spec.required:
            problems.append(Problem(f"required {spec.type} input is missing", path=path))
        else:
            resolved[spec.id] = None
    if problems:
        raise InvalidInputError(problems)
    return resolved
