"""From flow source text to a validated ``Flow``, or every problem at once.

Three passes, each reporting all it finds:
1. YAML parsing with positions (``parse.py``);
2. the pydantic models (schema, types, unknown keys, unknown task types);
3. semantic checks the schema cannot express (unique ids, Dag references and
   cycles, cron and time zones, template syntax, input types and defaults).
Template syntax is checked on the raw document, so it is reported even when
the schema pass fails elsewhere.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import ValidationError

from controlplane.domain import expressions
from controlplane.domain.dag import find_cycle
from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import Input, InputType, StrictModel
from controlplane.domain.parse import Path, SourceMap, format_path, parse_document
from controlplane.domain.spec import Flow
from controlplane.domain.tasktypes import (
    TASK_TYPES,
    TaskBase,
    canonical_type,
    iter_tasks,
    suggest_task_type,
)
from controlplane.domain.tasktypes.flowable import Dag, Pause
from controlplane.domain.triggers import Schedule
from controlplane.errors import InvalidFlowError, Problem

# Kestra types we know of and deliberately do not run, with the reason.
UNSUPPORTED_TYPES = {
    "io.kestra.plugin.core.flow.ForEachItem": (
        "ForEachItem is not supported: it splits files held in Kestra's internal storage; "
        "use ForEach over a list, or a Subflow per item"
    ),
}

_ID_HINT = "must start with a letter or digit and hold only letters, digits, '_' or '-'"
_FLOW_ID_HINT = "must start with a letter or digit and hold only letters, digits, '.', '_' or '-'"
_NAMESPACE_HINT = (
    "must start with a lowercase letter or digit and hold only lowercase letters, digits, "
    "'.', '_' or '-'"
)


@dataclass(frozen=True)
class ValidatedFlow:
    """A flow that passed every check, with the source it came from."""

    spec: Flow
    source: str
    source_map: SourceMap
    file: str | None = None

    @property
    def namespace(self) -> str:
        """The flow's namespace."""
        return self.spec.namespace

    @property
    def id(self) -> str:
        """The flow's id."""
        return self.spec.id

    def problem(self, message: str, path: Path) -> Problem:
        """A problem placed at ``path`` in this flow's source."""
        where = self.source_map.locate(path)
        line, column = where or (None, None)
        return Problem(message, format_path(path), line, column, self.file)


def validate_flow(source: str, *, file: str | None = None) -> ValidatedFlow:
    """Parse and validate one flow source; raise ``InvalidFlowError`` with every problem."""
    document = parse_document(source, file=file)
    reporter = _Reporter(document.data, document.source_map, file)
    reporter.check_templates(document.data, ())
    flow: Flow | None = None
    try:
        flow = Flow.model_validate(document.data)
    except ValidationError as exc:
        for error in exc.errors():
            reporter.add_pydantic_error(error)
    if flow is not None:
        _SemanticChecks(flow, reporter).run()
    if reporter.problems:
        raise InvalidFlowError(sorted(reporter.problems, key=_position))
    assert flow is not None  # noqa: S101 - no problems means the model validated
    return ValidatedFlow(flow, source, document.source_map, file)


def _position(problem: Problem) -> tuple[int, int, str]:
    return (problem.line or 0, problem.column or 0, problem.path)


class _Reporter:
    """Collects problems and places them in the text."""

    def __init__(self, data: dict[str, Any], source_map: SourceMap, file: str | None) -> None:
        self.data = data
        self.source_map = source_map
        self.file = file
        self.problems: list[Problem] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, message: str, path: Path, *, line_offset: int = 0) -> None:
        key = (format_path(path), message)
        if key in self._seen:
            return
        self._seen.add(key)
        where = self.source_map.locate(path)
        line, column = where or (None, None)
        if line is not None and line_offset:
            line, column = line + line_offset, None
        self.problems.append(Problem(message, format_path(path), line, column, self.file))

    def check_templates(self, value: Any, path: Path) -> None:
        """Report template syntax errors in every string of the raw document."""
        if isinstance(value, str):
            if expressions.is_templated(value):
                error = expressions.check_syntax(value)
                if error is not None:
                    # Inside a block scalar the template's first line is the mark's next line.
                    offset = error.line - (0 if path in self.source_map.block_scalars else 1)
                    self.add(f"invalid expression: {error.message}", path, line_offset=offset)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.check_templates(item, (*path, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.check_templates(item, (*path, index))

    def add_pydantic_error(self, error: Any) -> None:
        path, node = self._data_path(error["loc"], error["type"])
        self.add(self._message(error, path, node), path)

    def _data_path(self, loc: tuple[Any, ...], kind: str) -> tuple[Path, Any]:
        """Follow ``loc`` through the raw data, dropping union tags and validator names.

        Pydantic puts the chosen union member into the location
        (``tasks.0.io.kestra.plugin.core.log.Log.message``); walking the data
        tells real keys from such labels.
        """
        node: Any = self.data
        path: list[str | int] = []
        for index, element in enumerate(loc):
            last = index == len(loc) - 1
            if isinstance(node, list) and isinstance(element, int) and element < len(node):
                node = node[element]
                path.append(element)
            elif isinstance(node, dict) and element in node:
                node = node[element]
                path.append(str(element))
            elif (
                isinstance(node, dict)
                and isinstance(element, str)
                and (key := _alias_in(element, node))
            ):
                node = node[key]
                path.append(key)
            elif last and kind == "missing":
                path.append(str(element))
                node = None
        return tuple(path), node

    def _message(self, error: Any, path: Path, node: Any) -> str:  # noqa: PLR0911 - one case each
        kind, ctx = error["type"], error.get("ctx", {})
        if kind == "missing":
            return "required property is missing"
        if kind == "extra_forbidden":
            return _unknown_property(str(path[-1]) if path else "")
        if kind == "union_tag_invalid":
            return _unknown_type(str(ctx.get("tag")))
        if kind == "union_tag_not_found":
            return "property 'type' is missing"
        if kind in {"unsupported_task_runner", "unknown_condition", "unknown_trigger"}:
            tag = node.get("type") if isinstance(node, dict) else None
            return UNSUPPORTED_TYPES.get(str(tag), str(error["msg"]))
        if kind == "string_pattern_mismatch":
            return _pattern_message(path, node)
        if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
            symbol = {"greater_than_equal": "≥", "greater_than": ">"}.get(kind)
            symbol = symbol or {"less_than_equal": "≤", "less_than": "<"}[kind]
            bound = next(iter(ctx.values()))
            return f"must be {symbol} {bound}"
        if kind == "too_short" and ctx.get("min_length") == 1:
            return "must not be empty"
        message = str(error["msg"])
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return message.replace("Input should be", "must be")


def _alias_in(field_name: str, node: dict[str, Any]) -> str | None:
    """The YAML key of a model field (``else_`` → ``else``, ``maxAttempts`` ← ``maxAttempt``)."""
    for key in (field_name.rstrip("_"), "maxAttempt" if field_name == "maxAttempts" else ""):
        if key and key in node:
            return key
    return None


def _known_property_names() -> set[str]:
    names: set[str] = set()
    stack: list[type[StrictModel]] = [StrictModel]
    while stack:
        model = stack.pop()
        stack.extend(model.__subclasses__())
        for name, info in model.model_fields.items():
            names.add(info.alias or name)
    return names


_PROPERTY_NAMES = _known_property_names()


def _unknown_property(name: str) -> str:
    # A name known on another type is close to itself: never suggest the same name.
    match = difflib.get_close_matches(name, _PROPERTY_NAMES - {name}, n=1, cutoff=0.75)
    hint = f"; did you mean {match[0]!r}?" if match else ""
    return f"unknown property {name!r}{hint}"


def _unknown_type(name: str) -> str:
    if name in UNSUPPORTED_TYPES:
        return UNSUPPORTED_TYPES[name]
    suggestion = suggest_task_type(name)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    return f"unknown task type {name!r}{hint}"


def _pattern_message(path: Path, node: Any) -> str:
    field = path[-1] if path else ""
    if path == ("namespace",):
        return f"{node!r} {_NAMESPACE_HINT}"
    if path == ("id",):
        return f"{node!r} {_FLOW_ID_HINT}"
    if field == "id":
        return f"{node!r} {_ID_HINT}"
    return f"{node!r} does not match the expected pattern"


class _SemanticChecks:
    """Rules that need the whole validated flow."""

    def __init__(self, flow: Flow, reporter: _Reporter) -> None:
        self.flow = flow
        self.reporter = reporter

    def run(self) -> None:
        tasks = list(self._all_tasks())
        self._unique_task_ids(tasks)
        for path, task in tasks:
            if isinstance(task, Dag):
                self._dag(path, task)
            if isinstance(task, Pause) and task.onResume:
                self._inputs(task.onResume, (*path, "onResume"))
        self._inputs(self.flow.inputs or [], ("inputs",))
        self._unique([o.id for o in self.flow.outputs or []], ("outputs",), "output id")
        self._unique([t.id for t in self.flow.triggers or []], ("triggers",), "trigger id")
        for index, trigger in enumerate(self.flow.triggers or []):
            if isinstance(trigger, Schedule):
                self._schedule(("triggers", index), trigger)
        for index, default in enumerate(self.flow.pluginDefaults or []):
            known = canonical_type(default.type) or any(
                full.startswith(default.type.rstrip(".") + ".") for full in TASK_TYPES
            )
            if not known:
                self.reporter.add(_unknown_type(default.type), ("pluginDefaults", index, "type"))

    def _all_tasks(self) -> Iterator[tuple[Path, TaskBase]]:
        for key, tasks in self.flow.all_task_lists().items():
            yield from iter_tasks(tasks, (key,))

    def _unique_task_ids(self, tasks: list[tuple[Path, TaskBase]]) -> None:
        seen: dict[str, Path] = {}
        for path, task in tasks:
            if task.id in seen:
                first = format_path(seen[task.id])
                self.reporter.add(
                    f"task id {task.id!r} is already used at {first}; task ids are unique "
                    "within a flow",
                    (*path, "id"),
                )
            else:
                seen[task.id] = path

    def _unique(self, ids: list[str], path: Path, what: str) -> None:
        seen: set[str] = set()
        for index, value in enumerate(ids):
            if value in seen:
                self.reporter.add(f"{what} {value!r} is given twice", (*path, index, "id"))
            seen.add(value)

    def _dag(self, path: Path, dag: Dag) -> None:
        siblings = [node.task.id for node in dag.tasks]
        edges: dict[str, list[str]] = {}
        for index, node in enumerate(dag.tasks):
            edges[node.task.id] = list(node.dependsOn)
            for dep_index, dep in enumerate(node.dependsOn):
                if dep not in siblings:
                    near = difflib.get_close_matches(dep, siblings, n=1)
                    hint = f"; did you mean {near[0]!r}?" if near else ""
                    self.reporter.add(
                        f"depends on {dep!r}, which is not a task of this Dag{hint}",
                        (*path, "tasks", index, "dependsOn", dep_index),
                    )
        cycle = find_cycle(edges)
        if cycle:
            self.reporter.add("dependency cycle: " + " → ".join(cycle), (*path, "tasks"))

    def _schedule(self, path: Path, trigger: Schedule) -> None:
        if not _templated(trigger.cron):
            fields = len(trigger.cron.split())
            expected = 6 if trigger.withSeconds else 5
            if trigger.cron.strip().startswith("@"):
                valid = croniter.is_valid(trigger.cron)
            else:
                valid = fields == expected and croniter.is_valid(trigger.cron)
            if not valid:
                self.reporter.add(
                    f"{trigger.cron!r} is not a valid cron expression "
                    f"({expected} fields{', with seconds' if trigger.withSeconds else ''})",
                    (*path, "cron"),
                )
        try:
            ZoneInfo(trigger.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.reporter.add(f"unknown time zone {trigger.timezone!r}", (*path, "timezone"))

    def _inputs(self, inputs: list[Input], path: Path) -> None:
        self._unique([i.id for i in inputs], path, "input id")
        for index, spec in enumerate(inputs):
            for message, field in _input_problems(spec):
                self.reporter.add(message, (*path, index, *((field,) if field else ())))


_CHOICE_TYPES = {InputType.SELECT, InputType.ENUM, InputType.MULTISELECT}
_FILE_INPUT_REFUSED = (
    "a required FILE input is not supported: Flowplane takes no file upload when a run starts; "
    "pass the content as a STRING input, or keep the file as a namespace file and read() it"
)


def _input_problems(spec: Input) -> Iterator[tuple[str, str]]:
    """Type-specific rules of one input, as ``(message, field)`` pairs."""
    if spec.type == InputType.FILE and spec.required and spec.defaults is None:
        # Refused here rather than at every start: a run has no way to receive the file.
        # An optional one stays valid; a value given for it is refused when the run starts.
        yield (_FILE_INPUT_REFUSED, "type")
    if spec.type in _CHOICE_TYPES and not spec.values and not spec.expression:
        yield (f"a {spec.type} input needs values (or an expression)", "type")
    if spec.type == InputType.ARRAY and spec.itemType is None:
        yield ("an ARRAY input needs itemType", "type")
    if spec.validator is not None:
        try:
            re.compile(spec.validator)
        except re.error as exc:
            yield (f"validator is not a valid regular expression: {exc}", "validator")
    if spec.defaults is not None and not _templated(spec.defaults):
        problem = default_problem(spec)
        if problem:
            yield (problem, "defaults")
    numeric = isinstance(spec.min, int | float) and isinstance(spec.max, int | float)
    if numeric and spec.min > spec.max:
        yield (f"min {spec.min} is greater than max {spec.max}", "min")


def default_problem(spec: Input) -> str | None:
    """Why ``spec.defaults`` does not fit ``spec.type``, or None when it fits."""
    value, kind = spec.defaults, spec.type
    checks: dict[InputType, tuple[type | tuple[type, ...], str]] = {
        InputType.INT: (int, "an integer"),
        InputType.FLOAT: ((int, float), "a number"),
        InputType.BOOLEAN: (bool, "true or false"),
        InputType.BOOL: (bool, "true or false"),
        InputType.ARRAY: ((list, str), "a list"),
        InputType.MULTISELECT: ((list, str), "a list"),
    }
    if kind in checks:
        expected, description = checks[kind]
        wrong_bool = kind in {InputType.INT, InputType.FLOAT} and isinstance(value, bool)
        if wrong_bool or not isinstance(value, expected):
            return f"default {value!r} is not {description}"
    choices = spec.values if isinstance(spec.values, list) else None
    single_choice = kind in {InputType.SELECT, InputType.ENUM} and choices is not None
    if single_choice and value not in (choices or []) and not spec.allowCustomValue:
        return f"default {value!r} is not one of the values {spec.values}"
    if kind == InputType.DURATION and isinstance(value, str):
        try:
            parse_duration(value)
        except ValueError as exc:
            return f"default {exc}"
    return None


def _templated(value: Any) -> bool:
    return isinstance(value, str) and expressions.is_templated(value)
