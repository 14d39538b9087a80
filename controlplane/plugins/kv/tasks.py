"""kv.Set/Get/Delete and state.Get/Set/Delete, through the run context's key-value store.

Both live in one per-namespace table. User keys follow Kestra's key rule
(letters, digits, ``.``, ``_``, ``-``), so the ``state:`` keys that hold state
documents can never collide with them. The context checks that the namespace
lets this flow in, and seals a stored string that carries a revealed secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from controlplane.domain.durations import parse_duration
from controlplane.domain.tasktypes import core
from controlplane.plugins.api import RunContext, TaskFailedError

_KEY = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*$")


def _address(task: core.KvSet | core.KvGet | core.KvDelete, context: RunContext) -> tuple[str, str]:
    """The namespace and key a task names (the context checks the namespace)."""
    namespace = (
        str(context.render(task.namespace)) if task.namespace else context.execution.namespace
    )
    key = str(context.render(task.key))
    if not _KEY.match(key):
        raise TaskFailedError(
            f"key {key!r} is not valid: use letters, digits, '.', '_' and '-' only"
        )
    return namespace, key


def _flag(context: RunContext, value: bool | str) -> bool:
    rendered = context.render(value)
    if isinstance(rendered, str):
        return rendered.strip().lower() == "true"
    return bool(rendered)


class KvSet(core.KvSet):
    """Store a value under a key in the namespace's key-value store."""

    def run(self, context: RunContext) -> dict[str, Any]:
        """Store the rendered value; with ``overwrite: false`` an existing key fails."""
        namespace, key = _address(self, context)
        value = context.render(self.value)
        ttl = None
        if self.ttl is not None:
            ttl = parse_duration(str(context.render(self.ttl))).total_seconds()
        sealed = context.kv_put(
            namespace,
            key,
            value,
            action="kv.Set",
            overwrite=_flag(context, self.overwrite),
            ttl_seconds=ttl,
            description=self.description,
        )
        suffix = " (secret, sealed)" if sealed else ""
        context.log("INFO", f"set key {key!r} in {namespace}{suffix}")
        return {}


class KvGet(core.KvGet):
    """Read a key of the namespace's key-value store into the ``value`` output."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {"value": "the stored value (null when missing)"}

    def run(self, context: RunContext) -> dict[str, Any]:
        """Expose the stored value as ``value`` (None when missing, unless ``errorOnMissing``)."""
        namespace, key = _address(self, context)
        found, value = context.kv_get(namespace, key, action="kv.Get")
        if not found and _flag(context, self.errorOnMissing):
            raise TaskFailedError(f"no key {key!r} in {namespace}")
        return {"value": value}


class KvDelete(core.KvDelete):
    """Delete a key of the namespace's key-value store; ``deleted`` says if it existed."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {"deleted": "whether the key existed"}

    def run(self, context: RunContext) -> dict[str, Any]:
        """Delete the key; ``deleted`` says whether it existed."""
        namespace, key = _address(self, context)
        deleted = context.kv_delete(namespace, key, action="kv.Delete")
        if not deleted and _flag(context, self.errorOnMissing):
            raise TaskFailedError(f"no key {key!r} in {namespace}")
        return {"deleted": deleted}


# A state document always lives in the flow's own namespace: Kestra's ``namespace``
# is a boolean (share the document across the namespace's flows), never a name.


def _state_key(task: core.StateGet | core.StateSet | core.StateDelete, context: RunContext) -> str:
    name = str(context.render(task.name))
    scope = "ns" if task.namespace else f"flow:{context.execution.flow_id}"
    return f"state:{scope}:{name}"


def _sub_key(
    task: core.StateGet | core.StateSet | core.StateDelete, context: RunContext
) -> str | None:
    # With ``taskrunValue`` (the default) each loop value keeps its own part of the document.
    return context.taskrun_value if task.taskrunValue else None


class StateGet(core.StateGet):
    """Read a flow-scoped state document."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "data": "the document (or this loop value's part)",
        "key": "its storage key",
    }

    def run(self, context: RunContext) -> dict[str, Any]:
        """Expose the state document (or this loop value's part of it) as ``data``."""
        key, sub = _state_key(self, context), _sub_key(self, context)
        _, stored = context.kv_get(context.execution.namespace, key, action="state.Get")
        document = stored if isinstance(stored, dict) else None
        data = document.get(sub) if document is not None and sub is not None else document
        if data is None:
            if self.errorOnMissing:
                raise TaskFailedError(f"no state named {context.render(self.name)!r}")
            data = {}
        return {"data": data, "key": key}


class StateSet(core.StateSet):
    """Merge values into a flow-scoped state document."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "count": "the size of the document after the merge",
        "key": "its storage key",
    }

    def run(self, context: RunContext) -> dict[str, Any]:
        """Merge the rendered ``data`` into the state document."""
        key, sub = _state_key(self, context), _sub_key(self, context)
        data, _ = context.seal_secrets(context.render(self.data))
        merged: dict[str, Any] = {}

        def change(stored: Any) -> Any:
            nonlocal merged
            document = dict(stored) if isinstance(stored, dict) else {}
            if sub is None:
                document.update(data)
                merged = document
            else:
                merged = {**document.get(sub, {}), **data}
                document[sub] = merged
            return document

        context.kv_update(context.execution.namespace, key, change, action="state.Set")
        return {"count": len(merged), "key": key}


class StateDelete(core.StateDelete):
    """Delete a flow-scoped state document."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {"deleted": "whether the document (or part) existed"}

    def run(self, context: RunContext) -> dict[str, Any]:
        """Delete the state document (or this loop value's part)."""
        key, sub = _state_key(self, context), _sub_key(self, context)
        deleted = False

        def change(stored: Any) -> Any:
            nonlocal deleted
            document = dict(stored) if isinstance(stored, dict) else None
            deleted = document is not None and (sub is None or sub in document)
            if document is None or sub is None:
                return None
            document.pop(sub, None)
            return document

        context.kv_update(context.execution.namespace, key, change, action="state.Delete")
        if not deleted and self.errorOnMissing:
            raise TaskFailedError(f"no state named {context.render(self.name)!r}")
        return {"deleted": deleted}
