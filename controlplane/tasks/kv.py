"""Key-value tasks (``kv.Set/Get/Delete``) and Kestra's older ``state`` documents.

Both live in one per-namespace table. User keys follow Kestra's key rule
(letters, digits, ``.``, ``_``, ``-``), so the ``state:`` keys that hold state
documents can never collide with them.
"""

from __future__ import annotations

import re
from typing import Any

from controlplane.domain.durations import parse_duration
from controlplane.domain.tasktypes import core
from controlplane.store import kv as store
from controlplane.store.db import transaction
from controlplane.store.tables import utcnow
from controlplane.tasks.context import RunContext, TaskFailedError

_KEY = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")


def _address(task: core.KvSet | core.KvGet | core.KvDelete, run: RunContext) -> tuple[str, str]:
    namespace = str(run.render(task.namespace)) if task.namespace else run.execution.namespace
    key = str(run.render(task.key))
    if not _KEY.match(key):
        raise TaskFailedError(
            f"key {key!r} is not valid: use letters, digits, '.', '_' and '-' only"
        )
    return namespace, key


def _flag(run: RunContext, value: bool | str) -> bool:
    rendered = run.render(value)
    if isinstance(rendered, str):
        return rendered.strip().lower() == "true"
    return bool(rendered)


def run_kv_set(task: core.KvSet, run: RunContext) -> dict[str, Any]:
    """Store the rendered value; with ``overwrite: false`` an existing key fails the task."""
    namespace, key = _address(task, run)
    value = run.render(task.value)
    expires_at = None
    if task.ttl is not None:
        expires_at = utcnow() + parse_duration(str(run.render(task.ttl)))
    with transaction(run.engine) as session:
        if not _flag(run, task.overwrite) and store.get_entry(session, namespace, key):
            message = f"key {key!r} already exists in {namespace} and overwrite is false"
            raise TaskFailedError(message)
        store.put_entry(
            session, namespace, key, value, expires_at=expires_at, description=task.description
        )
    run.log("INFO", f"set key {key!r} in {namespace}")
    return {}


def run_kv_get(task: core.KvGet, run: RunContext) -> dict[str, Any]:
    """Expose the stored value as ``value`` (None when missing, unless ``errorOnMissing``)."""
    namespace, key = _address(task, run)
    with transaction(run.engine) as session:
        entry = store.get_entry(session, namespace, key)
        value = entry.value if entry else None
    if entry is None and _flag(run, task.errorOnMissing):
        raise TaskFailedError(f"no key {key!r} in {namespace}")
    return {"value": value}


def run_kv_delete(task: core.KvDelete, run: RunContext) -> dict[str, Any]:
    """Delete the key; ``deleted`` says whether it existed."""
    namespace, key = _address(task, run)
    with transaction(run.engine) as session:
        deleted = store.delete_entry(session, namespace, key)
    if not deleted and _flag(run, task.errorOnMissing):
        raise TaskFailedError(f"no key {key!r} in {namespace}")
    return {"deleted": deleted}


# --- state documents ---------------------------------------------------------------


def _state_key(task: core.StateGet | core.StateSet | core.StateDelete, run: RunContext) -> str:
    name = str(run.render(task.name))
    scope = "ns" if task.namespace else f"flow:{run.execution.flow_id}"
    return f"state:{scope}:{name}"


def _sub_key(task: core.StateGet | core.StateSet | core.StateDelete, run: RunContext) -> str | None:
    # With ``taskrunValue`` (the default) each loop value keeps its own part of the document.
    return run.taskrun_value if task.taskrunValue else None


def run_state_get(task: core.StateGet, run: RunContext) -> dict[str, Any]:
    """Expose the state document (or this loop value's part of it) as ``data``."""
    key, sub = _state_key(task, run), _sub_key(task, run)
    with transaction(run.engine) as session:
        entry = store.get_entry(session, run.execution.namespace, key)
        document = entry.value if entry and isinstance(entry.value, dict) else None
    data = document.get(sub) if document is not None and sub is not None else document
    if data is None:
        if task.errorOnMissing:
            raise TaskFailedError(f"no state named {run.render(task.name)!r}")
        data = {}
    return {"data": data, "key": key}


def run_state_set(task: core.StateSet, run: RunContext) -> dict[str, Any]:
    """Merge the rendered ``data`` into the state document; ``count`` is its size after."""
    key, sub = _state_key(task, run), _sub_key(task, run)
    data = run.render(task.data)
    with transaction(run.engine) as session:
        entry = store.get_entry(session, run.execution.namespace, key)
        document = dict(entry.value) if entry and isinstance(entry.value, dict) else {}
        if sub is None:
            document.update(data)
            merged = document
        else:
            merged = {**document.get(sub, {}), **data}
            document[sub] = merged
        store.put_entry(session, run.execution.namespace, key, document)
    return {"count": len(merged), "key": key}


def run_state_delete(task: core.StateDelete, run: RunContext) -> dict[str, Any]:
    """Delete the state document (or this loop value's part); ``deleted`` says if it existed."""
    key, sub = _state_key(task, run), _sub_key(task, run)
    with transaction(run.engine) as session:
        entry = store.get_entry(session, run.execution.namespace, key)
        document = dict(entry.value) if entry and isinstance(entry.value, dict) else None
        deleted = document is not None and (sub is None or sub in document)
        if document is not None and sub is not None:
            document.pop(sub, None)
            store.put_entry(session, run.execution.namespace, key, document)
        elif document is not None:
            store.delete_entry(session, run.execution.namespace, key)
    if not deleted and task.errorOnMissing:
        raise TaskFailedError(f"no state named {run.render(task.name)!r}")
    return {"deleted": deleted}
