"""Values typed SECRET never leave the server: execution inputs and Pause ``onResume`` outputs.

The worker needs the real values, so the store keeps them; every reader that
shows an execution (API, UI) masks them through ``SecretFields``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.domain.fields import InputType
from controlplane.domain.spec import Flow
from controlplane.domain.tasktypes import iter_tasks
from controlplane.domain.tasktypes.flowable import Pause
from controlplane.services.revisions import stored_spec
from controlplane.store.tables import ExecutionRow, FlowRevisionRow

MASK = "******"


@dataclass(frozen=True)
class SecretFields:
    """Which inputs of a flow revision, and which Pause resume inputs, are SECRET."""

    inputs: frozenset[str] = frozenset()
    resume: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, source: str) -> SecretFields:
        """The SECRET fields of a stored revision's source (empty for a tombstone)."""
        if not source.strip():
            return cls()
        return cls.of_spec(stored_spec(source))

    @classmethod
    def of_spec(cls, spec: Flow) -> SecretFields:
        """The SECRET fields of a parsed flow."""
        inputs = frozenset(i.id for i in spec.inputs or [] if i.type == InputType.SECRET)
        resume: dict[str, frozenset[str]] = {}
        for lists in spec.all_task_lists().values():
            for _path, task in iter_tasks(lists, ()):
                if isinstance(task, Pause):
                    ids = frozenset(i.id for i in task.onResume or [] if i.type == InputType.SECRET)
                    if ids:
                        resume[task.id] = ids
        return cls(inputs, resume)

    def values_in(
        self, inputs: Mapping[str, Any], task_outputs: Mapping[str, Mapping[str, Any]]
    ) -> set[str]:
        """The SECRET values among a run's inputs and its Pause tasks' ``onResume`` outputs.

        ``task_outputs`` maps task id to outputs. The worker masks these in every
        log line and output, as it masks values rendered with ``secret()``.
        """
        found = {str(v) for k, v in inputs.items() if k in self.inputs and v not in (None, "")}
        for task_id, hidden in self.resume.items():
            resumed = task_outputs.get(task_id, {}).get("onResume")
            if isinstance(resumed, Mapping):
                found |= {str(v) for k, v in resumed.items() if k in hidden and v not in (None, "")}
        return found

    def mask_inputs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Execution inputs with every SECRET value replaced by the mask."""
        return _masked(values, self.inputs)

    def mask_outputs(self, task_id: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """A task run's outputs with its SECRET ``onResume`` values masked."""
        hidden = self.resume.get(task_id)
        result = dict(outputs)
        if hidden and isinstance(result.get("onResume"), Mapping):
            result["onResume"] = _masked(result["onResume"], hidden)
        return result


def _masked(values: Mapping[str, Any], hidden: frozenset[str]) -> dict[str, Any]:
    return {k: MASK if k in hidden and v is not None else v for k, v in values.items()}


def secret_fields_of(engine: Engine, execution: ExecutionRow) -> SecretFields:
    """The SECRET fields of the revision an execution is pinned to."""
    with Session(engine) as session:
        return secret_fields_by_revision(session, [execution.revision_pk])[execution.revision_pk]


def secret_fields_by_revision(
    session: Session, revision_pks: Iterable[int]
) -> dict[int, SecretFields]:
    """SECRET fields for many revisions in one query (for listing executions)."""
    wanted = set(revision_pks)
    found = dict.fromkeys(wanted, SecretFields())
    if wanted:
        rows = session.exec(
            select(FlowRevisionRow).where(col(FlowRevisionRow.pk).in_(wanted))
        ).all()
        for row in rows:
            if row.pk is not None and not row.deleted:
                found[row.pk] = SecretFields.of(row.source)
    return found
