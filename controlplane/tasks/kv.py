"""Key-value tasks (``kv.Set/Get/Delete``) and Kestra's older ``state`` documents.

Both live in one per-namespace table. User keys follow Kestra's key rule
(letters, digits, ``.``, ``_``, ``-``), so the ``state:`` keys that hold state
documents can never collide with them.

A flow reaches another namespace's keys only when that namespace lists the
flow's namespace in ``allowed_namespaces``. A stored string that carries a
revealed secret is sealed to the server's key (as SECRET inputs are) and opened
again only inside a task that reads it, where it stays masked.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session

from controlplane.domain.durations import parse_duration
from controlplane.domain.tasktypes import core
from controlplane.errors import FlowplaneError
from controlplane.services.namespaces import ensure_namespace_allowed
from controlplane.services.sealing import is_sealed, seal
from controlplane.store import kv as store
from controlplane.store.db import transaction
from controlplane.store.tables import utcnow
from controlplane.tasks.context import RunContext, TaskFailedError

_KEY = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")


def _address(task: core.KvSet | core.KvGet | core.KvDelete, run: RunContext) -> tuple[str, str]:
    """The namespace and key a task names, once the namespace lets this flow in."""
    namespace = str(run.render(task.namespace)) if task.namespace else run.execution.namespace
    key = str(run.render(task.key))
    if not _KEY.match(key):
        raise TaskFailedError(
            f"key {key!r} is not valid: use letters, digits, '.', '_' and '-' only"
        )
    action = {core.KvSet: "kv.Set", core.KvGet: "kv.Get", core.KvDelete: "kv.Delete"}[type(task)]
    _ensure_allowed(run, namespace, action)
    return namespace, key


def _ensure_allowed(run: RunContext, namespace: str, action: str) -> None:
    try:
        ensure_namespace_allowed(run.engine, run.execution.namespace, namespace, action)
    except FlowplaneError as exc:
        raise TaskFailedError(str(exc)) from None


def _seal_secrets(run: RunContext, session: Session, value: Any) -> tuple[Any, bool]:
    """``value`` with every string that carries a revealed secret sealed; and whether any did."""
    if isinstance(value, str):
        if value and run.is_secret(value):
            return seal(session, {"value": value}, ["value"])["value"], True
        return value, False
    if is_sealed(value):
        # Only this module writes sealed values; a look-alike from a template could
        # make kv.Get open any ciphertext sealed to the server.
        raise TaskFailedError("a value shaped like a sealed value ({'sealed': ...}) is reserved")
    if isinstance(value, dict):
        if any(run.is_secret(str(k)) for k in value):
            raise TaskFailedError("a key of the value carries a secret; only values are sealed")
        pairs = {k: _seal_secrets(run, session, v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_seal_secrets(run, session, v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def _open_secrets(run: RunContext, value: Any) -> Any:
    """``value`` with every sealed string opened for this task (and masked from then on)."""
    if is_sealed(value):
        return run.unseal(value)
    if isinstance(value, dict):
        return {k: _open_secrets(run, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_open_secrets(run, v) for v in value]
    return value


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
        stored, sealed = _seal_secrets(run, session, value)
        store.put_entry(
            session, namespace, key, stored, expires_at=expires_at, description=task.description
        )
    run.log("INFO", f"set key {key!r} in {namespace}" + (" (secret, sealed)" if sealed else ""))
    return {}


def run_kv_get(task: core.KvGet, run: RunContext) -> dict[str, Any]:
    """Expose the stored value as ``value`` (None when missing, unless ``errorOnMissing``)."""
    namespace, key = _address(task, run)
    with transaction(run.engine) as session:
        entry = store.get_entry(session, namespace, key)
        value = entry.value if entry else None
    if entry is None and _flag(run, task.errorOnMissing):
        raise TaskFailedError(f"no key {key!r} in {namespace}")
    return {"value": _open_secrets(run, value)}


def run_kv_delete(task: core.KvDelete, run: RunContext) -> dict[str, Any]:
    """Delete the key; ``deleted`` says whether it existed."""
    namespace, key = _address(task, run)
    with transaction(run.engine) as session:
        deleted = store.delete_entry(session, namespace, key)
    if not deleted and _flag(run, task.errorOnMissing):
        raise TaskFailedError(f"no key {key!r} in {namespace}")
    return {"deleted": deleted}


# --- state documents ---------------------------------------------------------------


# A state document always lives in the flow's own namespace: Kestra's ``namespace``
# is a boolean (share the document across the namespace's flows), never a name.


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
    return {"data": _open_secrets(run, data), "key": key}


def run_state_set(task: core.StateSet, run: RunContext) -> dict[str, Any]:
    """Merge the rendered ``data`` into the state document; ``count`` is its size after."""
    key, sub = _state_key(task, run), _sub_key(task, run)
    data = run.render(task.data)
    with transaction(run.engine) as session:
        data, _ = _seal_secrets(run, session, data)
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
