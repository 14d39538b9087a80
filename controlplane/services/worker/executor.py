"""Walks a flow's task tree for one execution, persisting every task run.

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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.domain import expressions
from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import State
from controlplane.domain.spec import Flow
from controlplane.domain.tasktypes import TaskBase
from controlplane.domain.tasktypes import flowable as fl
from controlplane.domain.transitions import TERMINAL
from controlplane.metrics import TASK_DURATION
from controlplane.runners.sandbox import Sandbox
from controlplane.services.executions import create_execution, get_execution
from controlplane.services.masking import SecretFields
from controlplane.services.worker.retry import delay_before, max_attempts
from controlplane.store import executions as store
from controlplane.store.db import as_utc, transaction
from controlplane.store.tables import ExecutionRow, LogRow, TaskRunRow, utcnow
from controlplane.tasks.context import TaskFailedError
from controlplane.tasks.registry import RUNNABLES
from controlplane.tasks.storage import collect_files, write_files

# How often a parent parked on a running subflow wakes to look at it.
SUBFLOW_POLL_SECONDS = 0.5
# A WaitFor interval up to this long is slept in the worker; a longer one parks
# the execution (PAUSED with a wake time) so no worker thread is held.
INLINE_WAIT_SECONDS = 2.0
# Separates a task run's loop values from its WaitFor iterations in its key.
# json.dumps escapes every non-ASCII character, so no loop value contains it.
ITERATION_MARK = "\u21bb"
_RANK = {State.SUCCESS: 0, State.SKIPPED: 0, State.WARNING: 1, State.FAILED: 2}
_DONE = {State.SUCCESS.value, State.WARNING.value, State.SKIPPED.value}
# What a flowable task exposes (WaitFor, WorkingDirectory); the rest of its
# stored outputs is bookkeeping for replays.
_FLOWABLE_OUTPUTS = {"iterationCount", "outputFiles"}


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


def worst(states: list[State]) -> State:
    """The most severe of SUCCESS < WARNING < FAILED (SUCCESS for none)."""
    return max(states, key=lambda s: _RANK.get(s, 2), default=State.SUCCESS)


@dataclass
class _Frame:
    """Where a task sits: its loop values and parent task run."""

    values: tuple[tuple[str, Any], ...] = ()
    parent_id: str | None = None
    # Set inside a WorkingDirectory: its tasks share this directory.
    shared_dir: Path | None = None
    # WaitFor iterations this task sits in: each gets its own task runs, while
    # outputs stay addressed without them (the latest iteration wins).
    iterations: tuple[tuple[str, int], ...] = ()

    @property
    def key(self) -> str:
        base = "/".join(json.dumps(v, sort_keys=True, default=str) for _, v in self.values)
        return base + "".join(f"{ITERATION_MARK}{task}:{n}" for task, n in self.iterations)

    def child(self, parent_id: str, shared_dir: Path | None = None) -> _Frame:
        """The frame of tasks nested in the task run ``parent_id``."""
        return _Frame(self.values, parent_id, shared_dir or self.shared_dir, self.iterations)


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
    # Every secret value rendered so far; masked in logs and outputs.
    revealed: set[str] = field(default_factory=set)
    outputs: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> State:
        """Walk the flow; return its end state or raise Paused/Stopped signals."""
        with Session(self.engine) as session:
            runs = store.task_runs_of(session, self.execution.id)
        for row in runs:
            self.memo[(row.task_id, row.value_key)] = row
            if row.state in _DONE:
                self._set_output(row.task_id, row.value_key, row.outputs)
        self.inputs = self.unseal(self.execution.inputs)
        # SECRET inputs and resume values are masked like rendered secret() values.
        self.revealed |= SecretFields.of_spec(self.flow).values_in(
            self.inputs, {row.task_id: self.unseal(row.outputs) for row in runs}
        )
        state = self.run_list(list(self.flow.tasks), _Frame())
        if state == State.FAILED and self.flow.errors:
            self.run_list(list(self.flow.errors), _Frame())
        if self.flow.finally_:
            state = worst([state, self.run_list(list(self.flow.finally_), _Frame())])
        return state

    def flow_outputs(self) -> dict[str, Any]:
        """The flow's declared outputs, rendered against the finished run."""
        context = self.context(self.flow.tasks[0], _Frame(), self._root_row())
        return {o.id: expressions.render_value(o.value, context) for o in self.flow.outputs or []}

    def _root_row(self) -> TaskRunRow:
        return TaskRunRow(id="", execution_id=self.execution.id, task_id="", task_type="", state="")

    def run_list(self, tasks: list[TaskBase], frame: _Frame) -> State:
        """Run tasks in order; stop at the first failure."""
        states: list[State] = []
        for task in tasks:
            state = self.run_task(task, frame)
            states.append(state)
            if state == State.FAILED:
                break
        return worst(states)

    def run_task(self, task: TaskBase, frame: _Frame) -> State:
        """Run one task (and its children), reusing a finished run from the memo."""
        if self.should_stop():
            raise StoppedSignal
        if task.disabled:
            return State.SUCCESS
        existing = self.memo.get((task.id, frame.key))
        if existing and existing.state in _DONE and not task.FLOWABLE:
            # Re-expose its outputs: a replayed WaitFor reads each iteration's in turn.
            self._set_output(task.id, frame.key, existing.outputs)
            return State(existing.state)
        row = existing or self._new_run(task, frame)
        if isinstance(task, fl.Subflow):
            return self._subflow(task, frame, row)
        if existing and existing.state == State.RUNNING.value and not task.FLOWABLE:
            row.attempt += 1  # the worker that ran it died: a new attempt
        if task.runIf is not None and not _truthy(self._render(task.runIf, task, frame, row)):
            self._finish(row, State.SKIPPED, {})
            return State.SKIPPED
        if isinstance(task, fl.Pause):
            return self._pause(task, frame, row)
        if task.FLOWABLE:
            state = self._run_flowable(task, frame, row)
            outputs: dict[str, Any] = {
                k: v for k, v in row.outputs.items() if k in _FLOWABLE_OUTPUTS
            }
        else:
            state, outputs = self._run_attempts(task, frame, row)
        if state == State.FAILED and task.allowFailure:
            state = State.WARNING
        self._finish(row, state, outputs)
        self._set_output(task.id, frame.key, outputs)
        return state

    def _run_attempts(
        self, task: TaskBase, frame: _Frame, row: TaskRunRow
    ) -> tuple[State, dict[str, Any]]:
        implementation = RUNNABLES.get(type(task))
        if implementation is None:
            self._log(row, "ERROR", f"{task.type} cannot run in this worker yet")
            return State.FAILED, {}
        allowed = max_attempts(task.retry)
        while True:
            context = _TaskRun(self, task, frame, row)
            started = time.monotonic()
            try:
                outputs = implementation(task, context)
            except (TaskFailedError, expressions.RenderError, ValueError, OSError) as exc:
                TASK_DURATION.labels(task.type, State.FAILED.value).observe(
                    time.monotonic() - started
                )
                self._log(row, "ERROR", str(exc))
                if self.should_stop():
                    raise StoppedSignal from None
                if row.attempt >= allowed or task.retry is None:
                    return State.FAILED, {}
                time.sleep(min(delay_before(task.retry, row.attempt), 30.0))
                row.attempt += 1
                self._save(row)
            else:
                TASK_DURATION.labels(task.type, State.SUCCESS.value).observe(
                    time.monotonic() - started
                )
                return State.SUCCESS, outputs

    def _run_flowable(self, task: TaskBase, frame: _Frame, row: TaskRunRow) -> State:
        shared = frame.shared_dir
        if isinstance(task, fl.WorkingDirectory):
            shared = self.work_dir / row.id / "shared"
            shared.mkdir(parents=True, exist_ok=True)
        child = frame.child(row.id, shared)
        if isinstance(task, fl.WorkingDirectory) and shared is not None:
            state = self._working_directory(task, frame, child, row, shared)
        else:
            state = self._children_state(task, frame, child, row)
        if isinstance(task, fl.AllowFailure) and state == State.FAILED:
            state = State.WARNING
        errors = getattr(task, "errors", None)
        if state == State.FAILED and errors:
            self.run_list(list(errors), child)
        final = getattr(task, "finally_", None)
        if final:
            state = worst([state, self.run_list(list(final), child)])
        return state

    def _children_state(  # noqa: PLR0911 - one return per flowable type
        self, task: TaskBase, frame: _Frame, child: _Frame, row: TaskRunRow
    ) -> State:
        if isinstance(task, fl.Sequential | fl.AllowFailure):
            return self.run_list(list(task.tasks), child)
        if isinstance(task, fl.Parallel):
            return self._parallel([(t, child) for t in task.tasks], _limit(task.concurrent))
        if isinstance(task, fl.If):
            branch = (
                task.then if _truthy(self._render(task.condition, task, frame, row)) else task.else_
            )
            return self.run_list(list(branch or []), child)
        if isinstance(task, fl.Switch):
            value = str(self._render(task.value, task, frame, row))
            return self.run_list(list(task.cases.get(value, task.defaults or [])), child)
        if isinstance(task, fl.ForEach | fl.EachSequential | fl.EachParallel):
            return self._for_each(task, frame, row)
        if isinstance(task, fl.Dag):
            return self._dag(task, child)
        if isinstance(task, fl.WaitFor):
            return self._wait_for(task, frame, row)
        self._log(row, "ERROR", f"{task.type} cannot run in this worker yet")
        return State.FAILED

    def _for_each(
        self, task: fl.ForEach | fl.EachSequential | fl.EachParallel, frame: _Frame, row: TaskRunRow
    ) -> State:
        raw = task.values if isinstance(task, fl.ForEach) else task.value
        values = self._render(raw, task, frame, row)
        if isinstance(values, str):
            values = json.loads(values) if values.strip() else []
        if isinstance(values, dict):
            values = list(values.items())
        if isinstance(task, fl.ForEach):
            limit = _limit(task.concurrencyLimit)
        elif isinstance(task, fl.EachParallel):
            limit = _limit(task.concurrent)
        else:
            limit = 1
        frames = [
            _Frame((*frame.values, (task.id, value)), row.id, frame.shared_dir, frame.iterations)
            for value in values or []
        ]
        if limit == 1:
            return worst([self.run_list(list(task.tasks), f) for f in frames])
        return worst(self._map(lambda f: self.run_list(list(task.tasks), f), frames, limit))

    def _working_directory(
        self, task: fl.WorkingDirectory, frame: _Frame, child: _Frame, row: TaskRunRow, shared: Path
    ) -> State:
        """Write ``inputFiles``, run the tasks in the shared directory, collect ``outputFiles``."""
        try:
            if task.inputFiles is not None:
                write_files(shared, self._render(task.inputFiles, task, frame, row))
        except (TaskFailedError, expressions.RenderError, ValueError, OSError) as exc:
            self._log(row, "ERROR", f"inputFiles: {exc}")
            return State.FAILED
        state = self.run_list(list(task.tasks), child)
        if task.outputFiles:
            patterns = [str(self._render(p, task, frame, row)) for p in task.outputFiles]
            found = collect_files(shared, patterns, self.work_dir / row.id / "output-files")
            row.outputs = {**row.outputs, "outputFiles": found}
        return state

    def _wait_for(self, task: fl.WaitFor, frame: _Frame, row: TaskRunRow) -> State:
        """Run the tasks, then again while ``condition`` renders true (Kestra's WaitFor).

        ``outputs.<id>.iterationCount`` is the current iteration, from 1. The
        loop ends when the condition is false, or a child fails, or a limit of
        ``checkFrequency`` is reached (FAILED with ``failOnMaxReached``).
        """
        frequency = task.checkFrequency
        interval = self._seconds(frequency.interval, task, frame, row)
        max_duration = self._seconds(frequency.maxDuration, task, frame, row)
        fail_on_max = _truthy(self._render(task.failOnMaxReached, task, frame, row))
        iteration = 1
        while True:
            row.outputs = {**row.outputs, "iterationCount": iteration}
            self._set_output(task.id, frame.key, {"iterationCount": iteration})
            child = frame.child(row.id)
            child.iterations = (*frame.iterations, (task.id, iteration))
            state = self.run_list(list(task.tasks), child)
            if state == State.FAILED:
                return state
            if not _truthy(self._render(task.condition, task, frame, row)):
                return state
            elapsed = (utcnow() - as_utc(row.started_at)).total_seconds()
            if iteration >= frequency.maxIterations or elapsed >= max_duration:
                limit = "maxIterations" if iteration >= frequency.maxIterations else "maxDuration"
                self._log(row, "WARN", f"{limit} reached after {iteration} iterations")
                return State.FAILED if fail_on_max else state
            iteration += 1
            self._before_iteration(task, frame, row, iteration, interval)

    def _before_iteration(
        self, task: fl.WaitFor, frame: _Frame, row: TaskRunRow, iteration: int, interval: float
    ) -> None:
        """Wait ``interval`` before an iteration, unless a replay finds it already ran."""
        first = task.tasks[0]
        upcoming = frame.child(row.id)
        upcoming.iterations = (*frame.iterations, (task.id, iteration))
        if (first.id, upcoming.key) in self.memo:
            return
        planned = row.outputs.get("nextIteration") == iteration and row.outputs.get("nextAt")
        due = datetime.fromisoformat(planned) if planned else utcnow() + timedelta(seconds=interval)
        remaining = (due - utcnow()).total_seconds()
        if remaining <= 0:
            return
        if remaining <= INLINE_WAIT_SECONDS:
            deadline = time.monotonic() + remaining
            while time.monotonic() < deadline:
                if self.should_stop():
                    raise StoppedSignal
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            return
        row.outputs = {**row.outputs, "nextIteration": iteration, "nextAt": due.isoformat()}
        self._save(row)
        raise PausedSignal(due, running=True)

    def _seconds(self, value: str, task: TaskBase, frame: _Frame, row: TaskRunRow) -> float:
        return parse_duration(str(self._render(value, task, frame, row))).total_seconds()

    def _dag(self, task: fl.Dag, child: _Frame) -> State:
        done: dict[str, State] = {}
        pending = {node.task.id: node for node in task.tasks}
        while pending:
            ready = [n for n in pending.values() if all(d in done for d in n.dependsOn)]
            blocked = [n for n in ready if any(done[d] == State.FAILED for d in n.dependsOn)]
            for node in blocked:
                del pending[node.task.id]
                done[node.task.id] = State.FAILED
            ready = [n for n in ready if n not in blocked]
            results = self._map(
                lambda node: self.run_task(node.task, child), ready, _limit(task.concurrent)
            )
            for node, state in zip(ready, results, strict=True):
                done[node.task.id] = state
                del pending[node.task.id]
        return worst(list(done.values()))

    def _parallel(self, jobs: list[tuple[TaskBase, _Frame]], limit: int) -> State:
        return worst(self._map(lambda job: self.run_task(*job), jobs, limit))

    def _map(self, fn: Callable[[Any], State], jobs: list[Any], limit: int) -> list[State]:
        if not jobs:
            return []
        with ThreadPoolExecutor(max_workers=min(limit, len(jobs), 16)) as pool:
            return list(pool.map(fn, jobs))

    def _subflow(self, task: fl.Subflow, frame: _Frame, row: TaskRunRow) -> State:
        """Start the child once; while it runs, step aside and check again later.

        Waiting never holds a worker thread: the parent is parked (still RUNNING,
        with a wake time and no lease) and replays up to here when it wakes, so
        even one worker can run a parent and its child.
        """
        child_id = row.outputs.get("executionId")
        if child_id is None:
            child = create_execution(
                self.engine,
                str(self._render(task.namespace, task, frame, row)),
                str(self._render(task.flowId, task, frame, row)),
                inputs=self._render(task.inputs, task, frame, row),
                labels=self.execution.labels if task.inheritLabels else None,
                trigger={
                    "type": "subflow",
                    "parentExecutionId": self.execution.id,
                    "parentTaskRunId": row.id,
                },
            )
            child_id = child.id
            row.outputs = {"executionId": child_id}
            self._save(row)
            if not task.wait:
                self._finish(row, State.SUCCESS, row.outputs)
                self._set_output(task.id, frame.key, row.outputs)
                return State.SUCCESS
        child_state = State(get_execution(self.engine, child_id).execution.state)
        if child_state not in TERMINAL:
            raise PausedSignal(utcnow() + timedelta(seconds=SUBFLOW_POLL_SECONDS), running=True)
        child_outputs = get_execution(self.engine, child_id).execution.outputs
        outputs = {"executionId": child_id, "state": child_state.value, "outputs": child_outputs}
        failed = child_state not in {State.SUCCESS, State.WARNING}
        state = State.FAILED if failed and task.transmitFailed else State.SUCCESS
        if child_state == State.WARNING:
            state = State.WARNING
        if state == State.FAILED and task.allowFailure:
            state = State.WARNING
        self._finish(row, state, outputs)
        self._set_output(task.id, frame.key, outputs)
        return state

    def _pause(self, task: fl.Pause, frame: _Frame, row: TaskRunRow) -> State:
        """Park the run until it is resumed, or until its duration or timeout passes.

        As in Kestra: after ``pauseDuration`` (or the older ``delay``) the
        ``behavior`` decides — RESUME succeeds, WARN ends the task in WARNING,
        FAIL fails it, CANCEL cancels the execution. Without a duration, a task
        ``timeout`` fails the Pause when it passes. Waiting holds no thread: the
        execution is PAUSED with a wake time, and the worker loop claims it again
        once that time has passed.
        """
        if row.state in _DONE:  # resumed through the API
            self._set_output(task.id, frame.key, row.outputs)
            return State(row.state)
        duration = task.pauseDuration or task.delay
        limit = duration or task.timeout
        if limit is None:
            row.state = State.PAUSED.value
            self._save(row)
            raise PausedSignal(None)
        resume_at = row.outputs.get("resumeAt") if row.state == State.PAUSED.value else None
        if resume_at is None:
            seconds = parse_duration(str(self._render(limit, task, frame, row))).total_seconds()
            wake_at = as_utc(row.started_at) + timedelta(seconds=seconds)
            row.outputs = {"resumeAt": wake_at.isoformat()}
            row.state = State.PAUSED.value
            self._save(row)
            raise PausedSignal(wake_at)
        wake_at = datetime.fromisoformat(resume_at)
        if utcnow() < wake_at:
            raise PausedSignal(wake_at)
        behavior = task.behavior if duration else "FAIL"
        reason = "pauseDuration" if duration else "timeout"
        self._log(row, "INFO", f"{reason} of {limit} passed; behavior {behavior}")
        if behavior == "CANCEL":
            self._finish(row, State.CANCELLED, {})
            raise CancelledSignal
        state = {"RESUME": State.SUCCESS, "WARN": State.WARNING}.get(behavior, State.FAILED)
        if state == State.FAILED and task.allowFailure:
            state = State.WARNING
        self._finish(row, state, {})
        return state

    # --- persistence and context -------------------------------------------------

    def _new_run(self, task: TaskBase, frame: _Frame) -> TaskRunRow:
        row = TaskRunRow(
            id=str(uuid.uuid4()),
            execution_id=self.execution.id,
            task_id=task.id,
            task_type=task.type,
            parent_id=frame.parent_id,
            value_key=frame.key,
            value=json.dumps(frame.values[-1][1], default=str) if frame.values else None,
            state=State.RUNNING.value,
        )
        self._save(row)
        with self._lock:
            self.memo[(task.id, frame.key)] = row
        return row

    def _finish(self, row: TaskRunRow, state: State, outputs: dict[str, Any]) -> None:
        row.state = state.value
        row.outputs = self._mask(outputs)
        row.ended_at = utcnow()
        self._save(row)

    def _save(self, row: TaskRunRow) -> None:
        with transaction(self.engine) as session:
            session.merge(row)

    def _log(self, row: TaskRunRow | None, level: str, message: str) -> None:
        with transaction(self.engine) as session:
            session.add(
                LogRow(
                    execution_id=self.execution.id,
                    task_run_id=row.id if row else None,
                    task_id=row.task_id if row else None,
                    level=level,
                    message=self._mask(message),
                )
            )

    def _mask(self, value: Any) -> Any:
        """``value`` with every revealed secret replaced by ``******``."""
        if isinstance(value, str):
            for secret in sorted(self.revealed, key=len, reverse=True):
                value = value.replace(secret, "******")
            return value
        if isinstance(value, dict):
            return {k: self._mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._mask(v) for v in value]
        return value

    def _lookup_secret(self, key: str) -> str | None:
        value = self.reveal_secret(key)
        if value:
            with self._lock:
                self.revealed.add(value)
        return value

    def _set_output(self, task_id: str, key: str, outputs: dict[str, Any]) -> None:
        outputs = self.unseal(outputs)  # a Pause's SECRET resume values are sealed at rest
        key = key.split(ITERATION_MARK, 1)[0]  # the latest WaitFor iteration wins
        with self._lock:
            if not key:
                self.outputs[task_id] = outputs
                return
            node = self.outputs.setdefault(task_id, {})
            parts = [json.loads(p) for p in key.split("/")]
            for part in parts[:-1]:
                node = node.setdefault(_str(part), {})
            node[_str(parts[-1])] = outputs

    def context(self, task: TaskBase, frame: _Frame, row: TaskRunRow) -> dict[str, Any]:
        """The variables a template of ``task`` sees."""
        # Tasks inside a loop carry its value, so the nearest parent's value is
        # the innermost loop value (Kestra's `parent.taskrun.value`).
        parents = [
            {"taskrun": {"value": _str(value)}, "task": {"id": task_id}}
            for task_id, value in reversed(frame.values)
        ]
        return {
            "flow": {
                "id": self.flow.id,
                "namespace": self.flow.namespace,
                "revision": self.execution.flow_revision,
            },
            "execution": {
                "id": self.execution.id,
                "startDate": self.execution.created_at.isoformat(),
                "state": self.execution.state,
            },
            "inputs": self.inputs,
            "vars": self.flow.variables or {},
            "labels": self.execution.labels,
            "trigger": self.execution.trigger,
            "outputs": self.outputs,
            "task": {"id": task.id, "type": task.type},
            "taskrun": {
                "id": row.id,
                "value": _str(frame.values[-1][1]) if frame.values else None,
                "startDate": row.started_at.isoformat(),
                "attemptsCount": row.attempt,
                "parentId": row.parent_id,
            },
            "parent": parents[0] if parents else None,
            "parents": parents,
            "envs": {},
            "globals": {},
            "__secret_lookup": self._lookup_secret,
        }

    def _render(self, value: Any, task: TaskBase, frame: _Frame, row: TaskRunRow) -> Any:
        return expressions.render_value(value, self.context(task, frame, row))


@dataclass
class _TaskRun:
    """The RunContext handed to task implementations."""

    executor: Executor
    task: TaskBase
    frame: _Frame
    row: TaskRunRow

    @property
    def working_dir(self) -> Path:
        path = self.frame.shared_dir or self.executor.work_dir / self.row.id / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def engine(self) -> Engine:
        return self.executor.engine

    @property
    def sandbox(self) -> Sandbox:
        return self.executor.sandbox

    @property
    def execution(self) -> ExecutionRow:
        return self.executor.execution

    @property
    def taskrun_value(self) -> str | None:
        return _str(self.frame.values[-1][1]) if self.frame.values else None

    def render(self, value: Any) -> Any:
        return self.executor._render(value, self.task, self.frame, self.row)  # noqa: SLF001

    def log(self, level: str, message: str) -> None:
        self.executor._log(self.row, level, message)  # noqa: SLF001

    def should_stop(self) -> bool:
        return self.executor.should_stop()


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "false", "0", "none", "null"}
    return bool(value)


def _limit(value: Any) -> int:
    return int(value) if isinstance(value, int) and value > 0 else 16


def _str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
