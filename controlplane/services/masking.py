"""Secrets never leave the server: SECRET inputs, resume values and anything sealed.

The worker needs the real values, so the store keeps them; every reader that
shows an execution (API, UI) masks them through ``SecretFields``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.domain.fields import InputType
from controlplane.domain.spec import Flow
from controlplane.domain.tasktypes import iter_tasks
from controlplane.domain.tasktypes.flowable import Pause
from controlplane.services.revisions import stored_spec
from controlplane.services.sealing import is_sealed
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
        result: dict[str, Any] = mask_sealed(dict(outputs))
        if hidden and isinstance(result.get("onResume"), Mapping):
            result["onResume"] = _masked(result["onResume"], hidden)
        return result


def _masked(values: Mapping[str, Any], hidden: frozenset[str]) -> dict[str, Any]:
    return {
        k: MASK if (k in hidden and v is not None) or is_sealed(v) else mask_sealed(v)
        for k, v in values.items()
    }


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
        # Only the source: the stored spec's JSON is not needed to find SECRET fields.
        rows = session.exec(
            select(
                col(FlowRevisionRow.pk), col(FlowRevisionRow.deleted), col(FlowRevisionRow.source)
            ).where(col(FlowRevisionRow.pk).in_(wanted))
        ).all()
        for pk, deleted, source in rows:
            if pk is not None and not deleted:
                found[pk] = _secret_fields_of_source(source)
    return found


@lru_cache(maxsize=4096)
def _secret_fields_of_source(source: str) -> SecretFields:
    # Keyed by the source itself, so the same text always gives the same answer
    # whatever database or revision it came from.
    return SecretFields.of(source)


def mask_sealed(value: Any) -> Any:
    """``value`` with every sealed value (a secret carried through outputs) shown as the mask."""
    if is_sealed(value):
        return MASK
    if isinstance(value, Mapping):
        return {k: mask_sealed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_sealed(v) for v in value]
    return value


# Lines or encodings shorter than this are not masked on their own: masking
# every "a" or "{" in a log would hide the log, not the secret.
_MIN_VARIANT = 4


def secret_variants(secret: str) -> set[str]:
    """The forms of ``secret`` a script commonly prints, each to be masked.

    The value itself, each line of a multi-line value, its base64 (standard and
    URL-safe, with and without padding), URL and JSON escapes, and its upper-,
    lower-case and reversed forms. Arbitrary transforms (a hash, every other
    character, a custom cipher) cannot be caught: docs/security.md says so.
    """
    if not secret:
        return set()
    variants = {secret}
    candidates = [line.strip() for line in secret.splitlines()]
    raw = secret.encode()
    encoded = [
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    ]
    candidates += encoded + [e.rstrip("=") for e in encoded]
    candidates += [
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        secret.upper(),
        secret.lower(),
        secret[::-1],
    ]
    variants.update(c for c in candidates if len(c) >= _MIN_VARIANT)
    return variants


def mask_text(text: str, variants: Iterable[str]) -> str:
    """``text`` with every variant replaced by the mask, longest first."""
    for variant in sorted(variants, key=len, reverse=True):
        if variant in text:
            text = text.replace(variant, MASK)
    return text
