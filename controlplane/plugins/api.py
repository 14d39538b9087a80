"""What a plugin sees of Flowplane: the run context, the flowable walk, and their errors.

A plugin imports this module, the domain (``controlplane.domain``) and, for
script runners, ``controlplane.runners``; never ``services`` or ``store``
(tests/test_plugin_boundaries.py). Everything that touches the database, other
namespaces or other runs goes through ``RunContext``, whose implementation in
the worker enforces the namespace rules (``allowedNamespaces``) and the
resume authority, and seals secrets before they are stored.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO, ClassVar, Protocol

from controlplane.domain.fields import State
from controlplane.domain.tasktypes.base import FlowableBase, TaskBase
from controlplane.runners.sandbox import Sandbox

__all__ = [
    "CancelledSignal",
    "ExecutionInfo",
    "Flowable",
    "FlowableBase",
    "GitSyncRequest",
    "GitSyncResult",
    "LogLine",
    "NamespaceFlow",
    "PausedSignal",
    "RunContext",
    "State",
    "StoppedSignal",
    "TaskBase",
    "TaskFailedError",
    "Walk",
    "refuse",
    "require_extra",
    "worst",
]


class TaskFailedError(Exception):
    """A task ended in failure; the message is logged and the run is FAILED."""


class PausedSignal(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The walk must wait, holding no worker thread, until ``wake_at`` (None: until resumed).

    A Pause leaves the run PAUSED. A subflow or a WaitFor interval (``running``)
    leaves it RUNNING, as Kestra shows it.
    """

    def __init__(self, wake_at: Any = None, *, running: bool = False) -> None:
        self.wake_at = wake_at
        self.running = running


class StoppedSignal(Exception):  # noqa: N818
    """The run was killed, or this worker lost its lease."""


class CancelledSignal(Exception):  # noqa: N818
    """A Pause with ``behavior: CANCEL`` reached its duration: the run ends CANCELLED."""


@dataclass
class ExecutionInfo:
    """An execution as a plugin sees it: identity, state and labels, no database row."""

    id: str
    namespace: str
    flow_id: str
    state: str
    flow_revision: int | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    # When the run was created (Kestra's startDate) and ended (None while it runs).
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # The tasks whose runs ended FAILED, in the order they ended.
    failed_tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogLine:
    """One stored log line of an execution (already masked)."""

    task_id: str | None
    task_run_id: str | None
    level: str
    message: str
    timestamp: datetime


@dataclass(frozen=True)
class NamespaceFlow:
    """A live flow as PushFlows exports it: where it lives, its revision, its exact source."""

    namespace: str
    flow_id: str
    revision: int
    source: str


@dataclass(frozen=True)
class GitSyncRequest:
    """What a SyncFlows task asks: sync the Git source of this repository, branch and directory.

    ``directory`` None matches the source whatever its flows path. Every
    namespace the sync touches must be ``namespace`` (or, with
    ``include_children``, one under it). ``delete`` must agree with the
    source's ``prune``. ``dry_run`` plans without storing anything.
    """

    url: str
    branch: str
    directory: str | None
    namespace: str
    include_children: bool
    delete: bool
    dry_run: bool


@dataclass(frozen=True)
class GitSyncResult:
    """The plan a sync made (or, on a dry run, would make).

    ``changes`` has one map per flow: ``namespace``, ``flow_id``, ``action``
    (``add``, ``change``, ``remove``, ``unchanged``, ``orphan``,
    ``take_over``), ``path``, ``from_revision``, ``to_revision``.
    """

    source_id: str
    plan_id: str | None
    status: str
    commit: str | None
    changes: tuple[dict[str, Any], ...]
    problems: tuple[str, ...]
    text: str


_RANK = {State.SUCCESS: 0, State.SKIPPED: 0, State.WARNING: 1, State.FAILED: 2}


def worst(states: Sequence[State]) -> State:
    """The most severe of SUCCESS < WARNING < FAILED (SUCCESS for none, or all skipped)."""
    result = max(states, key=lambda s: _RANK.get(s, 2), default=State.SUCCESS)
    return State.SUCCESS if result == State.SKIPPED else result


class RunContext(Protocol):
    """Everything a runnable task may do, provided by the worker for one task run."""

    @property
    def working_dir(self) -> Path:
        """A directory private to this task run (shared inside a WorkingDirectory)."""
        ...

    @property
    def sandbox(self) -> Sandbox:
        """How script tasks of this run are isolated from the server."""
        ...

    @property
    def execution(self) -> ExecutionInfo:
        """The running execution (its labels follow the Labels task)."""
        ...

    @property
    def taskrun_value(self) -> str | None:
        """The innermost loop value this task run carries, or None outside loops."""
        ...

    def render(self, value: Any) -> Any:
        """Render templates in ``value`` with the task's variables."""
        ...

    def log(self, level: str, message: str) -> None:
        """Write one log line for this task run (secrets masked)."""
        ...

    def should_stop(self) -> bool:
        """True once the run was killed, the lease lost, or the task's timeout passed."""
        ...

    def remaining_seconds(self) -> float | None:
        """Seconds left before the task's timeout, or None without one."""
        ...

    def is_secret(self, value: str) -> bool:
        """True when ``value`` contains a secret value this run has revealed."""
        ...

    def secret(self, key: str) -> str | None:
        """The namespace secret ``key`` (masked in logs from then on), or None."""
        ...

    def unseal(self, value: Any) -> Any:
        """``value`` with every value sealed to the server's key opened (dicts, lists walked)."""
        ...

    # --- key-value store: every call checks ``namespace`` lets this flow do ``action``

    def kv_get(self, namespace: str, key: str, *, action: str) -> tuple[bool, Any]:
        """``(found, value)`` of a key; sealed strings in the value come back opened."""
        ...

    def kv_put(
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
        """Store ``value`` (secrets sealed); return whether anything was sealed.

        Raises TaskFailedError when the key exists and ``overwrite`` is false.
        """
        ...

    def kv_delete(self, namespace: str, key: str, *, action: str) -> bool:
        """Delete a key; return whether it existed."""
        ...

    def kv_update(
        self, namespace: str, key: str, change: Callable[[Any], Any], *, action: str
    ) -> None:
        """Replace a key's stored value by ``change(stored)`` in one transaction.

        ``stored`` is the raw value (None when missing; sealed values stay
        sealed); returning None deletes the key. Seal new data first with
        ``seal_secrets``.
        """
        ...

    def seal_secrets(self, value: Any) -> tuple[Any, bool]:
        """``value`` with every string carrying a revealed secret sealed; and whether any did."""
        ...

    # --- executions: other runs are reached only where their namespace allows it

    def find_execution(
        self,
        execution_id: str | None,
        namespace: str | None,
        flow_id: str | None,
        *,
        paused: bool,
        action: str,
    ) -> ExecutionInfo:
        """The run a task names: by id, else the latest paused run of a flow, else this one."""
        ...

    def resume_execution(self, execution_id: str, inputs: dict[str, Any]) -> None:
        """Resume a paused run, with this flow recorded as the actor."""
        ...

    def execution_logs(self, execution_id: str, *, action: str) -> list[LogLine]:
        """The log lines of a run, oldest first."""
        ...

    def set_labels(self, labels: dict[str, str]) -> dict[str, Any]:
        """Add or override labels on this run; return all its labels."""
        ...

    # --- the execution's files, counts of runs, triggers, per-item templates

    def put_file(self, source: Path, name: str) -> str:
        """Move ``source`` into this task run's stored files as ``name``; return its URI."""
        ...

    def open_file(self, uri: str) -> BinaryIO:
        """Open a file of this execution for reading; TaskFailedError for any other path."""
        ...

    def delete_file(self, uri: str) -> bool:
        """Delete a file of this execution; return whether it existed."""
        ...

    def purge_files(self) -> list[str]:
        """Delete every file this execution's task runs stored; return their URIs."""
        ...

    def render_with(self, value: Any, variables: dict[str, Any]) -> Any:
        """Render ``value`` with ``variables`` added to the task's own (they win)."""
        ...

    def count_executions(
        self,
        flows: Sequence[tuple[str, str]],
        namespaces: Sequence[str],
        *,
        states: Sequence[str],
        start: datetime,
        end: datetime,
    ) -> list[tuple[str, str | None, int]]:
        """``(namespace, flow id, count)`` of runs created in ``[start, end]``.

        One row per listed flow (0 when none), then one per listed namespace
        that has runs (flow id None). Each namespace must let this flow in.
        """
        ...

    def toggle_trigger(
        self, namespace: str, flow_id: str, trigger_id: str, *, enabled: bool
    ) -> bool:
        """Switch a flow's trigger on or off; return whether its source disables it anyway."""
        ...

    # --- namespace files (Kestra's ``namespaceFiles`` of script tasks)

    def namespace_files(
        self, include: Sequence[str], exclude: Sequence[str], *, namespace: str | None = None
    ) -> dict[str, bytes]:
        """The files of ``namespace`` (default: the flow's) matching Kestra's globs, by path.

        A pattern matches the path with a leading ``/`` (Java glob syntax, or
        ``regex:``/``glob:``), one starting with a word character anywhere in the
        tree; no ``include`` means every file. Another namespace must let this flow in.
        """
        ...

    # --- flows and Git sources (git.PushFlows, git.SyncFlows)

    def namespace_flows(self, namespace: str, *, include_children: bool) -> list[NamespaceFlow]:
        """The live flows of ``namespace`` (and of those under it), by namespace then id.

        Every namespace read must let this flow in (``allowedNamespaces``).
        """
        ...

    def sync_git_source(self, request: GitSyncRequest) -> GitSyncResult:
        """Sync the Git source an admin registered for the request's repository and branch.

        The plan is stored and applied by the source's policy (``auto``), or
        waits for reviewers (``approval``); this flow is recorded as who asked
        and never counts as a reviewer. Refused (nothing stored) unless every
        namespace the source serves and the plan touches is in the request's
        scope and lets this flow in.
        """
        ...

    # --- database tasks (jdbc)

    def ensure_not_server_database(self, host: str, port: int, dbname: str) -> None:
        """Raise ``TaskFailedError`` when ``host:port/dbname`` is Flowplane's own database."""
        ...


class Walk(Protocol):
    """What a flowable task may do while the worker walks it: run children, park, end.

    Every child run goes through the worker's fault boundary, memo (replay)
    and timeouts; a flowable only decides which children run and what its
    own state becomes.
    """

    @property
    def task_run_id(self) -> str:
        """The id of the flowable's own task run."""
        ...

    @property
    def started_at(self) -> datetime:
        """When the flowable's task run started (UTC)."""
        ...

    @property
    def stored_outputs(self) -> dict[str, Any]:
        """The flowable's own stored outputs (its bookkeeping between replays)."""
        ...

    @property
    def stored_state(self) -> State:
        """The state stored on the flowable's task run (RUNNING until it ends)."""
        ...

    @property
    def shared_dir(self) -> Path | None:
        """The directory children share (WorkingDirectory), if any."""
        ...

    def render(self, value: Any, name: str) -> Any:
        """``value`` rendered; a failure names the task and the field ``name``."""
        ...

    def seconds(self, value: str, name: str) -> float:
        """A duration property rendered and parsed, in seconds."""
        ...

    def limit(self, value: Any, name: str) -> int:
        """A concurrency limit rendered (0 or none: the worker's maximum)."""
        ...

    def log(self, level: str, message: str) -> None:
        """Write one log line on the flowable's task run."""
        ...

    def keep_outputs(self, outputs: dict[str, Any], *, expose: bool = True) -> None:
        """Merge ``outputs`` into the stored ones (and the template view when ``expose``)."""
        ...

    def run_tasks(self, tasks: Sequence[TaskBase]) -> State:
        """Run ``tasks`` in order as children, stopping at the first failure."""
        ...

    def run_concurrently(self, tasks: Sequence[TaskBase], limit: int) -> list[State]:
        """Run each task as a child, ``limit`` at once; their states in order."""
        ...

    def run_per_value(self, values: Sequence[Any], tasks: Sequence[TaskBase], limit: int) -> State:
        """Run ``tasks`` once per loop value, ``limit`` values at once."""
        ...

    def run_iteration(self, tasks: Sequence[TaskBase], iteration: int) -> State:
        """Run ``tasks`` as iteration ``iteration`` (its own task runs; outputs: latest wins)."""
        ...

    def wait_before_iteration(self, first: TaskBase, iteration: int, interval: float) -> None:
        """Wait ``interval`` before an iteration (parking when long), unless it already ran."""
        ...

    def park(self, wake_at: datetime | None, *, running: bool, outputs: dict[str, Any]) -> None:
        """Store ``outputs`` and park the run until ``wake_at`` (None: until resumed)."""
        ...

    def finish(self, state: State, outputs: dict[str, Any]) -> State:
        """End the flowable's own task run now (parking flowables end themselves)."""
        ...

    def cancel_execution(self) -> None:
        """End the flowable CANCELLED and the whole execution with it."""
        ...

    def hand_over(self, directory: Path) -> None:
        """Give files the worker wrote under ``directory`` to the sandbox user."""
        ...

    def cache_dir(self) -> Path:
        """Where this task keeps files between executions of the flow."""
        ...

    def files_dir(self) -> Path:
        """Where files this task exposes as outputs are kept."""
        ...

    def namespace_files(
        self, include: Sequence[str], exclude: Sequence[str], *, namespace: str | None = None
    ) -> dict[str, bytes]:
        """Namespace files, as ``RunContext.namespace_files`` has them (``namespaceFiles``)."""
        ...

    def start_subflow(
        self,
        namespace: str,
        flow_id: str,
        *,
        inputs: dict[str, Any],
        labels: dict[str, Any],
        inherit_labels: bool,
        revision: int | None,
        scheduled_at: datetime | None,
    ) -> str:
        """Queue a run of another flow as this task's child; return its id."""
        ...

    def subflow_result(self, execution_id: str) -> tuple[State, dict[str, Any], dict[str, Any]]:
        """A child run's state, outputs and its top-level task outputs (opened)."""
        ...

    def render_against(self, value: Any, name: str, outputs: dict[str, Any]) -> Any:
        """``value`` rendered with ``outputs`` in place of this run's task outputs."""
        ...


class Flowable:
    """Mixin of flowable task types: ``resolve`` runs the children and returns the state.

    The worker handles what every task shares (``runIf``, ``timeout``,
    ``allowFailure``/``allowWarning``, ``errors``/``finally``, persistence);
    ``resolve`` decides which children run and what the parent becomes, as
    Kestra's ``FlowableTask.resolveNexts``/``resolveState``.
    """

    # A parking flowable (Subflow, Pause) may leave the run waiting without a
    # worker thread; it ends its own task run and is replayed when it wakes.
    PARKS: ClassVar[bool] = False
    # Children run in one directory created for this task run (WorkingDirectory).
    SHARES_DIRECTORY: ClassVar[bool] = False

    def resolve(self, walk: Walk) -> State:
        """Run the children this task chooses; return its state before error branches."""
        raise NotImplementedError


# --- helpers for plugin specs and optional extras -----------------------------------


def require_extra(module: str, extra: str, task_type: str) -> ModuleType:
    """Import ``module`` of the optional extra ``extra``, or fail the task naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as missing:
        raise TaskFailedError(
            f"task type {task_type} needs the {extra!r} extra: pip install 'flowplane[{extra}]' "
            f"({missing})"
        ) from None


def refuse(values: Any, refused: Mapping[str, str]) -> Any:
    """Raise for Kestra properties this type does not honour, with the reason why.

    Used in ``model_validator(mode="before")``: the property is named in the
    message, so validation points at it with its file and line.
    """
    if isinstance(values, dict):
        for name, reason in refused.items():
            if name in values:
                raise ValueError(f"{name} is not supported: {reason}")
    return values
