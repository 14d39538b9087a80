"""The resume form: a Pause task's ``onResume`` inputs as HTML widgets, and back.

Values arrive as form strings; ``resolve_inputs`` (the same check the API
uses) coerces and validates them, so the form only has to pick widgets and
turn an empty field into "not given" so defaults apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.datastructures import FormData

from controlplane.domain.fields import Input, InputType
from controlplane.domain.tasktypes import iter_tasks
from controlplane.domain.tasktypes.flowable import Pause
from controlplane.services.revisions import stored_spec
from controlplane.store import executions as execution_store
from controlplane.store.tables import ExecutionRow, FlowRevisionRow

FIELD_PREFIX = "input."

# Input type → (widget, HTML input type) for single-value inputs.
_WIDGETS: dict[InputType, tuple[str, str]] = {
    InputType.STRING: ("input", "text"),
    InputType.URI: ("input", "url"),
    InputType.EMAIL: ("input", "email"),
    InputType.SECRET: ("input", "password"),
    InputType.INT: ("input", "number"),
    InputType.FLOAT: ("input", "number"),
    InputType.DATE: ("input", "date"),
    InputType.TIME: ("input", "time"),
    InputType.DATETIME: ("input", "datetime-local"),
    InputType.DURATION: ("input", "text"),
    InputType.BOOLEAN: ("boolean", ""),
    InputType.BOOL: ("boolean", ""),
    InputType.SELECT: ("select", ""),
    InputType.ENUM: ("select", ""),
    InputType.MULTISELECT: ("multiselect", ""),
    InputType.JSON: ("textarea", ""),
    InputType.YAML: ("textarea", ""),
    InputType.ARRAY: ("textarea", ""),
    InputType.FILE: ("unsupported", ""),
}


@dataclass(frozen=True)
class Widget:
    """One form field: how to draw it, its current value and its error."""

    id: str
    label: str
    description: str | None
    type: str
    widget: str
    html_type: str
    required: bool
    choices: list[Any]
    value: Any
    step: str | None
    placeholder: str
    error: str | None = None


@dataclass(frozen=True)
class ResumeForm:
    """The widgets of a paused run's resume form, and the form-wide error if any."""

    task_id: str
    widgets: list[Widget] = field(default_factory=list)
    error: str | None = None


def pause_inputs(engine: Engine, execution: ExecutionRow) -> tuple[str, list[Input]] | None:
    """The paused task's id and its ``onResume`` inputs; None when not paused on a Pause task."""
    with Session(engine) as session:
        paused = execution_store.paused_task_run(session, execution.id)
        revision = session.get(FlowRevisionRow, execution.revision_pk)
    if paused is None or revision is None:
        return None
    spec = stored_spec(revision.source)
    for lists in spec.all_task_lists().values():
        for _path, task in iter_tasks(lists, ()):
            if task.id == paused.task_id and isinstance(task, Pause):
                return paused.task_id, list(task.onResume or [])
    return paused.task_id, []


def build_form(
    task_id: str,
    declared: list[Input],
    *,
    given: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    error: str | None = None,
) -> ResumeForm:
    """Widgets for ``declared``, filled from ``given`` (a re-render) or the defaults."""
    widgets = []
    for item in declared:
        widget, html_type = _WIDGETS.get(item.type, ("input", "text"))
        if given is not None and item.id in given:
            value = given[item.id]
        else:
            value = item.prefill if item.prefill is not None else item.defaults
        if item.type == InputType.SECRET:
            value = None  # a secret is never sent back to the browser
        widgets.append(
            Widget(
                id=item.id,
                label=item.displayName or item.id,
                description=item.description,
                type=str(item.type),
                widget=widget,
                html_type=html_type,
                required=item.required and item.defaults is None,
                choices=item.values if isinstance(item.values, list) else [],
                value=value,
                step="1" if item.type == InputType.INT else "any",
                placeholder="e.g. PT5M" if item.type == InputType.DURATION else "",
                error=(errors or {}).get(item.id),
            )
        )
    return ResumeForm(task_id, widgets, error)


def form_values(declared: list[Input], form: FormData) -> dict[str, Any]:
    """The submitted values by input id; empty fields are left out so defaults apply."""
    values: dict[str, Any] = {}
    for item in declared:
        name = FIELD_PREFIX + item.id
        if item.type == InputType.MULTISELECT:
            chosen = [v for v in form.getlist(name) if isinstance(v, str)]
            if chosen:
                values[item.id] = chosen
            continue
        raw = form.get(name)
        if isinstance(raw, str) and raw.strip() != "":
            values[item.id] = raw
    return values


def field_errors(problems: list[Any]) -> dict[str, str]:
    """Problems from ``InvalidInputError`` by input id (their paths are ``inputs.<id>``)."""
    found: dict[str, str] = {}
    for problem in problems:
        name = str(problem.path).removeprefix("inputs.")
        found[name] = f"{found[name]}; {problem.message}" if name in found else problem.message
    return found
