"""Walks a flow's task tree for one execution, persisting every task run.

The executor is the loop that asks the task types: a runnable type's ``run``
does its work (``attempts.py`` retries it), a flowable type's ``resolve``
decides which children run and what it becomes (``walk.py`` is what it may
do). What every task shares stays here: the fault boundary, ``runIf``,
timeouts, ``allowFailure``/``allowWarning``, ``errors``/``finally`` branches,
and persistence.

The walk is a replay: finished task runs recorded in the database are reused
(their outputs feed later templates), so a worker that takes over an execution
whose worker died continues where it stopped. A task run left RUNNING by the
dead worker is run again as a new attempt.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.domain import expressions
from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import State
from controlplane.domain.spec import Flow
from controlplane.domain.tasktypes import TaskBase
from controlplane.errors import EvaluationError, ForbiddenError
from controlplane.plugins.api import (
    CancelledSignal,
    Flowable,
    PausedSignal,
    StoppedSignal,
    worst,
)
from controlplane.runners.sandbox import Sandbox
from controlplane.services.masking import SecretFields
from controlplane.services.worker.attempts import run_attempts
from controlplane.services.worker.batch import WriteBatch
from controlplane.services.worker.boundary import PASS_THROUGH, describe_error, reason
from controlplane.services.worker.frames import Frame, output_path
from controlplane.services.worker.retry import RetryPolicy
from controlplane.services.worker.secrets import Secrets, sealed_values
from controlplane.services.worker.variables import template_variables
from controlplane.services.worker.walk import FlowableWalk
from controlplane.store import executions as store
from controlplane.store.db import as_utc
from controlplane.store.tables import ExecutionRow, LogRow, TaskRunRow, utcnow
from controlplane.store.text import escape_nul

__all__ = [
    "CancelledSignal",
    "Executor",
    "PausedSignal",
    "StoppedSignal",
    "describe_error",
    "worst",
]

_DONE = {State.SUCCESS.value, State.WARNING.value, State.SKIPPED.value}


def _same_namespace_only(caller: str, target: str, action: str) -> None:
    """The default rule when no namespace policy is wired: a flow acts in its own namespace."""
    if caller != target:
        raise ForbiddenError(f"a flow in {caller} may not {action} in {target}")


@dataclass
class Executor:
    """Runs one claimed execution to its end, a pause, or a stop."""

    engine: Engine
    execution: ExecutionRow
    flow: Flow
    work_dir: Path
    should_stop: Callable[[], bool]
    # Decrypts one namespace secret on demand; None when the key is unknown.
    reveal_secret: Callable[[str], str | None] = lambda _key: None
    # Opens SECRET inputs and resume values sealed at rest (services.sealing).
    unseal: Callable[[Any], Any] = lambda value: value
    sandbox: Sandbox = field(default_factory=Sandbox)
    inputs: dict[str, Any] = field(default_factory=dict)
    memo: dict[tuple[str, str], TaskRunRow] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    # Seals one string to the server's key (outputs that carry a secret).
    seal: Callable[[str], Any] = lambda value: value
    # Checks that a flow in one namespace may act in another (allowedNamespaces).
    authorize: Callable[[str, str, str], None] = _same_namespace_only
    # Set when a task's retry asks for a new execution (behavior CREATE_NEW_EXECUTION).
    retry_as_new_execution: RetryPolicy | None = None
    secrets: Secrets = field(init=False)
    # Task-run and log writes, committed per step (batch.py).
    writes: WriteBatch = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.secrets = Secrets(self.reveal_secret, self.unseal, self.seal)
        self.writes = WriteBatch(self.engine)

    def run(self) -> State:
        """Walk the flow; return its end state or raise Paused/Stopped signals.

        Whatever way the walk ends, the writes still queued are left for the
        worker, which commits them with the run's new state (``Worker._finish``).
        """
        runs: Sequence[TaskRunRow] = []
        if not store.first_claim(self.execution):  # a replay: read what already ran
            with Session(self.engine) as session:
                runs = store.task_runs_of(session, self.execution.id)
        self.writes.start(stored=[row.id for row in runs])
        try:
            return self._walk(runs)
        finally:
            # What is still queued commits with the run's new state (Worker._finish).
            self.writes.stop()

    def _walk(self, runs: Sequence[TaskRunRow]) -> State:
        for row in runs:
            self.memo[(row.task_id, row.value_key)] = row
            if row.state in _DONE:
                self.set_output(row.task_id, row.value_key, row.outputs)
        self.inputs = self.unseal(self.execution.inputs)
        # SECRET inputs and resume values are masked like rendered secret() values,
        # and so is every value that was sealed because it carried a secret.
        self.secrets.add(
            SecretFields.of_spec(self.flow).values_in(
                self.inputs, {row.task_id: self.unseal(row.outputs) for row in runs}
            )
            | {
                str(self.unseal(v))
                for v in sealed_values([self.execution.inputs, *(r.outputs for r in runs)])
            }
        )
        state = self.run_list(list(self.flow.tasks), Frame())
        if state == State.FAILED and self.flow.errors:
            self.run_list(list(self.flow.errors), Frame())
        if self.flow.finally_:
            state = worst([state, self.run_list(list(self.flow.finally_), Frame())])
        return state

    def flow_outputs(self) -> dict[str, Any]:
        """The flow's declared outputs, rendered against the finished run, ready to store.

        Raises EvaluationError naming the output whose expression failed.
        """
        root = TaskRunRow(id="", execution_id=self.execution.id, task_id="", task_type="", state="")
        variables = self.variables(self.flow.tasks[0], Frame(), root)
        rendered: dict[str, Any] = {}
        for output in self.flow.outputs or []:
            try:
                rendered[output.id] = expressions.render_value(output.value, variables)
            except Exception as exc:  # noqa: BLE001 - any failure names the output
                raise EvaluationError(f"outputs.{output.id}: {reason(exc)}") from None
        return dict(self.secrets.for_storage(rendered))

    def run_list(self, tasks: list[TaskBase], frame: Frame) -> State:
        """Run tasks in order; stop at the first failure."""
        states: list[State] = []
        for task in tasks:
            state = self.run_task(task, frame)
            states.append(state)
            if state == State.FAILED:
                break
        return worst(states)

    def run_task(self, task: TaskBase, frame: Frame) -> State:
        """Run one task (and its children), reusing a finished run from the memo.

        This is the fault boundary: whatever goes wrong while evaluating or
        running the task (a broken expression, a property of the wrong shape, a
        bug in a task implementation) fails this task run with a message naming
        the task and the property. Only the control signals (pause, stop,
        cancel) and database errors pass through.
        """
        if self.should_stop():
            raise StoppedSignal
        if task.disabled:
            return State.SUCCESS
        existing = self.memo.get((task.id, frame.key))
        if existing and existing.state in _DONE and not task.FLOWABLE:
            # Re-expose its outputs: a replayed WaitFor reads each iteration's in turn.
            self.set_output(task.id, frame.key, existing.outputs)
            return State(existing.state)
        row = existing or self._new_run(task, frame)
        try:
            state = self._run_row(task, frame, row, existing)
        except PASS_THROUGH:
            raise
        except Exception as exc:  # noqa: BLE001 - the fault boundary: any error fails the task
            state = self._fail(task, row, exc)
        return state

    def _fail(self, task: TaskBase, row: TaskRunRow, exc: Exception) -> State:
        """End ``row`` FAILED (WARNING under allowFailure) with a message naming the cause."""
        self.log(row, "ERROR", describe_error(task, exc))
        state = State.WARNING if task.allowFailure else State.FAILED
        self.finish(row, state, {}, commit=task.SIDE_EFFECTS)
        self.set_output(task.id, row.value_key, {})
        return state

    def _run_row(
        self, task: TaskBase, frame: Frame, row: TaskRunRow, existing: TaskRunRow | None
    ) -> State:
        if frame.deadline is not None and time.time() >= frame.deadline:
            raise EvaluationError(f"timeout of task {frame.deadline_of!r} passed before it started")
        parks = isinstance(task, Flowable) and task.PARKS
        if existing and existing.state == State.RUNNING.value and not (task.FLOWABLE or parks):
            row.attempt += 1  # the worker that ran it died: a new attempt
        # A parked task decided on runIf when it first ran; its replay goes on from there.
        if (
            task.runIf is not None
            and not (parks and existing)
            and not _truthy(self.render(task.runIf, task, frame, row, "runIf"))
        ):
            self.finish(row, State.SKIPPED, {}, commit=task.SIDE_EFFECTS)
            return State.SKIPPED
        if task.SIDE_EFFECTS:
            # What this task may act on (earlier tasks' ends) is durable before it acts.
            self.writes.commit_ended()
        if isinstance(task, Flowable) and task.PARKS:
            # Subflow and Pause end their own run: they may park it first.
            return task.resolve(FlowableWalk(self, task, frame, frame.child(row.id), row))
        if isinstance(task, Flowable):
            state, outputs = self._run_flowable(task, frame, row)
        elif task.FLOWABLE or not callable(getattr(task, "run", None)):
            self.log(row, "ERROR", f"{task.type} cannot run in this worker yet")
            state, outputs = State.FAILED, {}
        else:
            state, outputs = run_attempts(self, task, frame, row)
        if state == State.WARNING and task.allowWarning:
            state = State.SUCCESS
        if state == State.FAILED and task.allowFailure:
            state = State.WARNING
        self.finish(row, state, outputs, commit=task.SIDE_EFFECTS)
        self.set_output(task.id, frame.key, outputs)
        return state

    def _run_flowable(
        self, task: Flowable, frame: Frame, row: TaskRunRow
    ) -> tuple[State, dict[str, Any]]:
        """Let the flowable run its children, then its ``errors`` and ``finally`` branches."""
        assert isinstance(task, TaskBase)  # noqa: S101 - Flowable is a mixin of task types
        inner = frame.within(self.task_deadline(task, frame, row), task.id)
        shared = inner.shared_dir
        if task.SHARES_DIRECTORY:
            shared = self.work_dir / row.id / "shared"
            shared.mkdir(parents=True, exist_ok=True)
        child = inner.child(row.id, shared)
        state = task.resolve(FlowableWalk(self, task, inner, child, row))
        errors = getattr(task, "errors", None)
        if state == State.FAILED and errors:
            self.run_list(list(errors), child)
        final = getattr(task, "finally_", None)
        if final:
            state = worst([state, self.run_list(list(final), child)])
        # A flowable's stored outputs also hold its bookkeeping for replays.
        outputs = {k: v for k, v in row.outputs.items() if k in task.OUTPUTS}
        if inner.deadline is not None and time.time() >= inner.deadline:
            self.log(row, "ERROR", f"timeout of {task.timeout} passed")
            state = State.FAILED
        return state, outputs

    def task_deadline(self, task: TaskBase, frame: Frame, row: TaskRunRow) -> float | None:
        """When ``task``'s own ``timeout`` ends, counted from this attempt's start."""
        if task.timeout is None:
            return None
        seconds = self.seconds(task.timeout, task, frame, row, "timeout")
        return as_utc(row.started_at).timestamp() + seconds

    def retry_policy(self, task: TaskBase) -> RetryPolicy | None:
        """The task's own retry, else the flow's ``retry`` (Kestra's flow-level default)."""
        return task.retry or self.flow.retry

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, waking early (StoppedSignal) when the run is stopped."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.should_stop():
                raise StoppedSignal
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    # --- persistence ---------------------------------------------------------------

    def _new_run(self, task: TaskBase, frame: Frame) -> TaskRunRow:
        row = TaskRunRow(
            id=str(uuid.uuid4()),
            execution_id=self.execution.id,
            task_id=task.id,
            task_type=task.type,
            parent_id=frame.parent_id,
            value_key=frame.key,
            value=json.dumps(frame.value, default=str) if frame.values else None,
            state=State.RUNNING.value,
        )
        self.save(row)
        with self._lock:
            self.memo[(task.id, frame.key)] = row
        return row

    def finish(
        self, row: TaskRunRow, state: State, outputs: dict[str, Any], *, commit: bool = True
    ) -> None:
        """End ``row`` in ``state`` with ``outputs`` (secrets sealed).

        ``commit=False`` for a task without side effects: its end commits with
        the next write (batch.py).
        """
        row.state = state.value
        row.outputs = self.secrets.for_storage(outputs)
        row.ended_at = utcnow()
        self.save(row, commit=commit)

    def save(self, row: TaskRunRow, *, commit: bool = True) -> None:
        """Write ``row`` as it is now (committed with its step, see batch.py)."""
        self.writes.save(row, commit=commit)

    def log(self, row: TaskRunRow | None, level: str, message: str) -> None:
        """One log line on ``row`` (or on the execution), secrets masked."""
        self.writes.log(
            LogRow(
                execution_id=self.execution.id,
                task_run_id=row.id if row else None,
                task_id=row.task_id if row else None,
                level=level,
                message=escape_nul(self.secrets.mask(message)),
            )
        )

    def set_output(self, task_id: str, key: str, outputs: dict[str, Any]) -> None:
        """Expose ``outputs`` to later templates as ``outputs.<task_id>[.<loop values>]``."""
        outputs = self.unseal(outputs)  # a Pause's SECRET resume values are sealed at rest
        parts = output_path(key)
        with self._lock:
            if not parts:
                self.outputs[task_id] = outputs
                return
            node = self.outputs.setdefault(task_id, {})
            for part in parts[:-1]:
                node = node.setdefault(_text(part), {})
            node[_text(parts[-1])] = outputs

    # --- templates -------------------------------------------------------------------

    def variables(self, task: TaskBase, frame: Frame, row: TaskRunRow) -> dict[str, Any]:
        """The variables a template of ``task`` sees."""
        return template_variables(self, task, frame, row)

    def render(self, value: Any, task: TaskBase, frame: Frame, row: TaskRunRow, name: str) -> Any:
        """``value`` rendered for ``task``; any failure names the task and the field."""
        return self.render_with(value, task, name, self.variables(task, frame, row))

    def render_with(self, value: Any, task: TaskBase, name: str, variables: dict[str, Any]) -> Any:
        """``value`` rendered with ``variables``; any failure names the task and the field."""
        try:
            return expressions.render_value(value, variables)
        except PASS_THROUGH:
            raise
        except Exception as exc:  # noqa: BLE001 - the fault boundary: any error fails the task
            raise EvaluationError(f"task {task.id!r}: {name}: {reason(exc)}") from None

    def seconds(
        self, value: str, task: TaskBase, frame: Frame, row: TaskRunRow, name: str
    ) -> float:
        """A duration property rendered and parsed, in seconds."""
        rendered = self.render(value, task, frame, row, name)
        try:
            return parse_duration(str(rendered)).total_seconds()
        except ValueError as exc:
            raise EvaluationError(f"task {task.id!r}: {name}: {exc}") from None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "false", "0", "none", "null"}
    return bool(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
