"""The run context a task type receives: the worker's side of ``plugins.api.RunContext``.

Plugins never touch the database; every call that does is here, and every
call that reaches another namespace checks ``allowedNamespaces`` first
(``services.namespaces.ensure_namespace_allowed``). Resuming another run also
needs a reviewer behind the running revision (``services.task_authority``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlmodel import Session, col, select

from controlplane.domain.fields import State
from controlplane.domain.tasktypes import TaskBase
from controlplane.errors import FlowplaneError
from controlplane.plugins.api import (
    ExecutionInfo,
    GitSyncRequest,
    GitSyncResult,
    LogLine,
    NamespaceFlow,
    TaskFailedError,
)
from controlplane.runners.sandbox import Sandbox
from controlplane.services import own_database
from controlplane.services.execution_counts import count_executions
from controlplane.services.execution_files import ExecutionFiles
from controlplane.services.executions import resume_execution
from controlplane.services.namespaces import ensure_namespace_allowed
from controlplane.services.sealing import is_sealed, seal
from controlplane.services.task_authority import ensure_resume_authority
from controlplane.services.trigger_states import set_trigger_enabled
from controlplane.services.worker import git_flows
from controlplane.services.worker.boundary import LEVEL_RANK, field_of
from controlplane.services.worker.frames import Frame
from controlplane.services.worker.namespace_reads import matching_namespace_files
from controlplane.store import executions as executions_store
from controlplane.store import kv as kv_store
from controlplane.store.db import as_utc, transaction
from controlplane.store.tables import ExecutionRow, TaskRunRow, utcnow

if TYPE_CHECKING:
    from controlplane.services.worker.executor import Executor


def execution_info(row: ExecutionRow, failed_tasks: Sequence[str] = ()) -> ExecutionInfo:
    """What a plugin may see of an execution row."""
    return ExecutionInfo(
        id=row.id,
        namespace=row.namespace,
        flow_id=row.flow_id,
        state=row.state,
        flow_revision=row.flow_revision,
        labels=dict(row.labels),
        started_at=as_utc(row.created_at),
        ended_at=as_utc(row.ended_at) if row.ended_at else None,
        failed_tasks=tuple(failed_tasks),
    )


def _failed_tasks(session: Session, execution_id: str) -> list[str]:
    """The task ids of ``execution_id`` whose runs ended FAILED, oldest first."""
    return list(
        session.exec(
            select(TaskRunRow.task_id)
            .where(
                col(TaskRunRow.execution_id) == execution_id,
                col(TaskRunRow.state) == State.FAILED.value,
            )
            .order_by(col(TaskRunRow.ended_at))
        ).all()
    )


@dataclass
class TaskRunContext:
    """The RunContext handed to a task's ``run``."""

    executor: Executor
    task: TaskBase
    frame: Frame
    row: TaskRunRow

    # --- the run itself -------------------------------------------------------

    @property
    def working_dir(self) -> Path:  # noqa: D102 - see plugins.api.RunContext
        path = self.frame.shared_dir or self.executor.work_dir / self.row.id / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def sandbox(self) -> Sandbox:  # noqa: D102
        return self.executor.sandbox

    @property
    def execution(self) -> ExecutionInfo:  # noqa: D102
        return execution_info(self.executor.execution)

    @property
    def taskrun_value(self) -> str | None:  # noqa: D102
        return _text(self.frame.value) if self.frame.values else None

    def render(self, value: Any) -> Any:  # noqa: D102
        name = field_of(self.task, value)
        return self.executor.render(value, self.task, self.frame, self.row, name)

    def log(self, level: str, message: str) -> None:  # noqa: D102
        # The task's logLevel drops lines below it, as in Kestra.
        floor = self.task.logLevel
        if floor is not None and LEVEL_RANK.get(level, 2) < LEVEL_RANK.get(floor.value, 0):
            return
        self.executor.log(self.row, level, message)

    def should_stop(self) -> bool:
        """True once the run is killed, the lease lost, or the task's timeout passed."""
        return self.executor.should_stop() or self.timed_out()

    def timed_out(self) -> bool:
        """Whether the nearest enclosing ``timeout`` has passed."""
        return self.frame.deadline is not None and time.time() >= self.frame.deadline

    def remaining_seconds(self) -> float | None:  # noqa: D102
        if self.frame.deadline is None:
            return None
        return max(0.0, self.frame.deadline - time.time())

    def is_secret(self, value: str) -> bool:  # noqa: D102
        return any(secret in value for secret in self.executor.secrets.revealed)

    def secret(self, key: str) -> str | None:  # noqa: D102
        return self.executor.secrets.lookup(key)

    def unseal(self, value: Any) -> Any:  # noqa: D102
        return self.executor.secrets.open(value)

    # --- key-value store ------------------------------------------------------

    def _allow(self, namespace: str, action: str) -> None:
        try:
            ensure_namespace_allowed(
                self.executor.engine, self.executor.execution.namespace, namespace, action
            )
        except FlowplaneError as exc:
            raise TaskFailedError(str(exc)) from None

    def kv_get(self, namespace: str, key: str, *, action: str) -> tuple[bool, Any]:  # noqa: D102
        self._allow(namespace, action)
        with transaction(self.executor.engine) as session:
            entry = kv_store.get_entry(session, namespace, key)
            value = entry.value if entry else None
        return entry is not None, self._open(value)

    def kv_put(  # noqa: D102
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        action: str,
        overwrite: bool = True,
        ttl_seconds: float | None = None,
        description: str | None = None,
    ) -> bool:
        self._allow(namespace, action)
        expires_at = utcnow() + timedelta(seconds=ttl_seconds) if ttl_seconds is not None else None
        with transaction(self.executor.engine) as session:
            if not overwrite and kv_store.get_entry(session, namespace, key):
                message = f"key {key!r} already exists in {namespace} and overwrite is false"
                raise TaskFailedError(message)
            stored, sealed = self._seal(session, value)
            kv_store.put_entry(
                session, namespace, key, stored, expires_at=expires_at, description=description
            )
        return sealed

    def kv_delete(self, namespace: str, key: str, *, action: str) -> bool:  # noqa: D102
        self._allow(namespace, action)
        with transaction(self.executor.engine) as session:
            return kv_store.delete_entry(session, namespace, key)

    def kv_update(  # noqa: D102
        self, namespace: str, key: str, change: Callable[[Any], Any], *, action: str
    ) -> None:
        self._allow(namespace, action)
        with transaction(self.executor.engine) as session:
            entry = kv_store.get_entry(session, namespace, key)
            updated = change(entry.value if entry else None)
            if updated is None:
                if entry is not None:
                    kv_store.delete_entry(session, namespace, key)
            else:
                kv_store.put_entry(session, namespace, key, updated)

    def seal_secrets(self, value: Any) -> tuple[Any, bool]:  # noqa: D102
        with transaction(self.executor.engine) as session:
            return self._seal(session, value)

    def _seal(self, session: Session, value: Any) -> tuple[Any, bool]:
        """``value`` with strings that carry a revealed secret sealed; and whether any were."""
        if isinstance(value, str):
            if value and self.is_secret(value):
                return seal(session, {"value": value}, ["value"])["value"], True
            return value, False
        if is_sealed(value):
            # Only the worker writes sealed values; a look-alike from a template could
            # make kv.Get open any ciphertext sealed to the server.
            raise TaskFailedError(
                "a value shaped like a sealed value ({'sealed': ...}) is reserved"
            )
        if isinstance(value, dict):
            if any(self.is_secret(str(k)) for k in value):
                raise TaskFailedError("a key of the value carries a secret; only values are sealed")
            pairs = {k: self._seal(session, v) for k, v in value.items()}
            return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
        if isinstance(value, list):
            items = [self._seal(session, v) for v in value]
            return [v for v, _ in items], any(s for _, s in items)
        return value, False

    def _open(self, value: Any) -> Any:
        """``value`` with every sealed string opened for this task (and masked from then on)."""
        if is_sealed(value):
            return self.unseal(value)
        if isinstance(value, dict):
            return {k: self._open(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._open(v) for v in value]
        return value

    # --- executions -----------------------------------------------------------

    def find_execution(  # noqa: D102
        self,
        execution_id: str | None,
        namespace: str | None,
        flow_id: str | None,
        *,
        paused: bool,
        action: str,
    ) -> ExecutionInfo:
        # When both an id and a flow are given they must agree, so permissions stay explicit.
        if namespace:
            self._allow(namespace, action)  # before looking inside it at all
        with Session(self.executor.engine) as session:
            if execution_id:
                row = executions_store.get_execution(session, execution_id)
            elif namespace and flow_id and paused:
                row = session.exec(
                    select(ExecutionRow)
                    .where(
                        col(ExecutionRow.namespace) == namespace,
                        col(ExecutionRow.flow_id) == flow_id,
                        col(ExecutionRow.state) == State.PAUSED.value,
                    )
                    .order_by(col(ExecutionRow.created_at).desc())
                ).first()
            else:
                row = executions_store.get_execution(session, self.executor.execution.id)
            failed = _failed_tasks(session, row.id) if row is not None else []
        if row is None:
            raise TaskFailedError(f"no execution found for {execution_id or flow_id or 'this run'}")
        if namespace and row.namespace != namespace:
            raise TaskFailedError(f"execution {row.id} is not in namespace {namespace}")
        if flow_id and row.flow_id != flow_id:
            raise TaskFailedError(f"execution {row.id} is not a run of flow {flow_id}")
        self._allow(row.namespace, action)
        return execution_info(row, failed)

    def resume_execution(self, execution_id: str, inputs: dict[str, Any]) -> None:  # noqa: D102
        own = self.executor.execution
        target = self.find_execution(execution_id, None, None, paused=True, action="Resume")
        actor = f"flow:{own.namespace}/{own.flow_id}"
        try:
            ensure_resume_authority(self.executor.engine, own, target.namespace)
            resume_execution(self.executor.engine, target.id, actor=actor, inputs=inputs)
        except FlowplaneError as exc:
            raise TaskFailedError(str(exc)) from None

    def execution_logs(self, execution_id: str, *, action: str) -> list[LogLine]:  # noqa: D102
        if execution_id != self.executor.execution.id:
            self.find_execution(execution_id, None, None, paused=False, action=action)
        else:
            # This run's own lines may still wait in its write batch: commit them first.
            self.executor.writes.flush()
        with Session(self.executor.engine) as session:
            rows = executions_store.logs_of(session, execution_id)
        return [
            LogLine(r.task_id, r.task_run_id, r.level, r.message, as_utc(r.timestamp)) for r in rows
        ]

    def set_labels(self, labels: dict[str, str]) -> dict[str, Any]:  # noqa: D102
        with transaction(self.executor.engine) as session:
            row = executions_store.get_execution(session, self.executor.execution.id, lock=True)
            if row is None:
                raise TaskFailedError("the execution no longer exists")
            row.labels = {**row.labels, **labels}
            session.add(row)
            merged = dict(row.labels)
        # Later templates in this run see the new labels.
        self.executor.execution.labels = merged
        return merged

    # --- the execution's files, counts of runs, triggers, per-item templates -------

    def _files(self) -> ExecutionFiles:
        return ExecutionFiles(self.executor.work_dir, self.row.id)

    def put_file(self, source: Path, name: str) -> str:  # noqa: D102
        try:
            return self._files().put(source, name)
        except FlowplaneError as exc:
            raise TaskFailedError(str(exc)) from None

    def open_file(self, uri: str) -> BinaryIO:  # noqa: D102
        try:
            return self._files().open(uri)
        except FlowplaneError as exc:
            raise TaskFailedError(str(exc)) from None

    def delete_file(self, uri: str) -> bool:  # noqa: D102
        try:
            return self._files().delete(uri)
        except FlowplaneError as exc:
            raise TaskFailedError(str(exc)) from None

    def purge_files(self) -> list[str]:  # noqa: D102
        return self._files().purge()

    def render_with(self, value: Any, variables: dict[str, Any]) -> Any:  # noqa: D102
        own = self.executor.variables(self.task, self.frame, self.row)
        name = field_of(self.task, value)
        return self.executor.render_with(value, self.task, name, {**own, **variables})

    def count_executions(  # noqa: D102
        self,
        flows: Sequence[tuple[str, str]],
        namespaces: Sequence[str],
        *,
        states: Sequence[str],
        start: datetime,
        end: datetime,
    ) -> list[tuple[str, str | None, int]]:
        for namespace in sorted({ns for ns, _ in flows} | set(namespaces)):
            self._allow(namespace, "count its executions")
        return count_executions(
            self.executor.engine,
            flows=flows,
            namespaces=namespaces,
            states=states,
            start=start,
            end=end,
        )

    def toggle_trigger(  # noqa: D102
        self, namespace: str, flow_id: str, trigger_id: str, *, enabled: bool
    ) -> bool:
        self._allow(namespace, "toggle a trigger")
        own = self.executor.execution
        try:
            return set_trigger_enabled(
                self.executor.engine,
                namespace,
                flow_id,
                trigger_id,
                enabled=enabled,
                actor=f"flow:{own.namespace}/{own.flow_id}",
            )
        except FlowplaneError as exc:
            raise TaskFailedError(str(exc)) from None

    # --- namespace files --------------------------------------------------------

    def namespace_files(  # noqa: D102
        self, include: Sequence[str], exclude: Sequence[str], *, namespace: str | None = None
    ) -> dict[str, bytes]:
        return matching_namespace_files(self.executor, include, exclude, namespace)

    # --- flows and Git sources (git.PushFlows, git.SyncFlows) -------------------

    def namespace_flows(  # noqa: D102
        self, namespace: str, *, include_children: bool
    ) -> list[NamespaceFlow]:
        return git_flows.namespace_flows(
            self.executor, namespace, include_children=include_children
        )

    def sync_git_source(self, request: GitSyncRequest) -> GitSyncResult:  # noqa: D102
        return git_flows.sync_git_source(self.executor, request)

    # --- database tasks (jdbc) ----------------------------------------------------

    def ensure_not_server_database(self, host: str, port: int, dbname: str) -> None:  # noqa: D102
        own_database.ensure_not_server_database(self.executor.engine, host, port, dbname)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
