"""Walks a flow's task tree for one execution, persisting every task run.

The walk is a replay: finished task runs recorded in the database are reused
(their outputs feed later templates), so a worker that takes over an execution
whose worker died continues where it stopped. A task run left RUNNING by the
dead worker is run again as a new attempt.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from controlplane.domain import expressions
from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import State
from controlplane.domain.spec import Flow, labels_as_dict
from controlplane.domain.tasktypes import TaskBase
from controlplane.domain.tasktypes import flowable as fl
from controlplane.domain.transitions import TERMINAL
from controlplane.errors import EvaluationError, FlowplaneError, ForbiddenError, StoreError
from controlplane.metrics import TASK_DURATION
from controlplane.runners.sandbox import Sandbox
from controlplane.services.executions import (
    CORRELATION_LABEL,
    create_execution,
    get_execution,
)
from controlplane.services.masking import SecretFields, mask_text, secret_variants
from controlplane.services.sealing import contains_sealed, is_sealed
from controlplane.services.worker.retry import RetryPolicy, delay_before, max_attempts
from controlplane.store import executions as store
from controlplane.store.db import as_utc, transaction
from controlplane.store.tables import ExecutionRow, LogRow, TaskRunRow, utcnow
from controlplane.store.text import escape_nul
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


# What the fault boundary lets through: the walk's control signals, and
# database failures (the run is left to its lease rather than failed on a guess).
PASS_THROUGH = (PausedSignal, StoppedSignal, CancelledSignal, SQLAlchemyError, StoreError)


def worst(states: list[State]) -> State:
    """The most severe of SUCCESS < WARNING < FAILED (SUCCESS for none, or all skipped)."""
    result = max(states, key=lambda s: _RANK.get(s, 2), default=State.SUCCESS)
    return State.SUCCESS if result == State.SKIPPED else result


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
    # Wall-clock end (time.time()) set by the nearest enclosing task ``timeout``,
    # and the task whose timeout it is.
    deadline: float | None = None
    deadline_of: str = ""

    @property
    def key(self) -> str:
        base = "/".join(json.dumps(v, sort_keys=True, default=str) for _, v in self.values)
        return base + "".join(f"{ITERATION_MARK}{task}:{n}" for task, n in self.iterations)

    def child(self, parent_id: str, shared_dir: Path | None = None) -> _Frame:
        """The frame of tasks nested in the task run ``parent_id``."""
        return _Frame(
            self.values,
            parent_id,
            shared_dir or self.shared_dir,
            self.iterations,
            self.deadline,
            self.deadline_of,
        )

    def within(self, deadline: float | None, task_id: str) -> _Frame:
        """The same frame under a timeout ending at ``deadline`` (the nearer one wins)."""
        if deadline is None or (self.deadline is not None and self.deadline <= deadline):
            return self
        return _Frame(
            self.values, self.parent_id, self.shared_dir, self.iterations, deadline, task_id
        )


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
    # Every secret value rendered so far; masked in logs and outputs.
    revealed: set[str] = field(default_factory=set)
    outputs: dict[str, Any] = field(default_factory=dict)
    # Seals one string to the server's key (outputs that carry a secret).
    seal: Callable[[str], Any] = lambda value: value
    # Every form of every revealed secret that log lines are masked for.
    variants: set[str] = field(default_factory=set)
    # Checks that a flow in one namespace may act in another (allowedNamespaces).
    authorize: Callable[[str, str, str], None] = _same_namespace_only
    # Set when a task's retry asks for a new execution (behavior CREATE_NEW_EXECUTION).
    retry_as_new_execution: RetryPolicy | None = None
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
        # SECRET inputs and resume values are masked like rendered secret() values,
        # and so is every value that was sealed because it carried a secret.
        self.add_revealed(
            SecretFields.of_spec(self.flow).values_in(
                self.inputs, {row.task_id: self.unseal(row.outputs) for row in runs}
            )
            | {
                str(self.unseal(v))
                for v in _sealed_values([self.execution.inputs, *(r.outputs for r in runs)])
            }
        )
        state = self.run_list(list(self.flow.tasks), _Frame())
        if state == State.FAILED and self.flow.errors:
            self.run_list(list(self.flow.errors), _Frame())
        if self.flow.finally_:
            state = worst([state, self.run_list(list(self.flow.finally_), _Frame())])
        return state

    def flow_outputs(self) -> dict[str, Any]:
        """The flow's declared outputs, rendered against the finished run, ready to store.

        Raises EvaluationError naming the output whose expression failed.
        """
        context = self.context(self.flow.tasks[0], _Frame(), self._root_row())
        rendered: dict[str, Any] = {}
        for output in self.flow.outputs or []:
            try:
                rendered[output.id] = expressions.render_value(output.value, context)
            except Exception as exc:  # noqa: BLE001 - any failure names the output
                raise EvaluationError(f"outputs.{output.id}: {_reason(exc)}") from None
        return dict(self.seal_secrets(rendered))

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
            self._set_output(task.id, frame.key, existing.outputs)
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
        self._log(row, "ERROR", describe_error(task, exc))
        state = State.WARNING if task.allowFailure else State.FAILED
        self._finish(row, state, {})
        self._set_output(task.id, row.value_key, {})
        return state

    def _run_row(
        self, task: TaskBase, frame: _Frame, row: TaskRunRow, existing: TaskRunRow | None
    ) -> State:
        if frame.deadline is not None and time.time() >= frame.deadline:
            raise EvaluationError(f"timeout of task {frame.deadline_of!r} passed before it started")
        if isinstance(task, fl.Subflow):
            return self._subflow(task, frame, row)
        if existing and existing.state == State.RUNNING.value and not task.FLOWABLE:
            row.attempt += 1  # the worker that ran it died: a new attempt
        if task.runIf is not None and not _truthy(
            self._render(task.runIf, task, frame, row, "runIf")
        ):
            self._finish(row, State.SKIPPED, {})
            return State.SKIPPED
        if isinstance(task, fl.Pause):
            return self._pause_then_tasks(task, frame, row)
        if task.FLOWABLE:
            inner = frame.within(self._task_deadline(task, frame, row), task.id)
            state = self._run_flowable(task, inner, row)
            outputs: dict[str, Any] = {
                k: v for k, v in row.outputs.items() if k in _FLOWABLE_OUTPUTS
            }
            if inner.deadline is not None and time.time() >= inner.deadline:
                self._log(row, "ERROR", f"timeout of {task.timeout} passed")
                state = State.FAILED
        else:
            state, outputs = self._run_attempts(task, frame, row)
        if state == State.WARNING and task.allowWarning:
            state = State.SUCCESS
        if state == State.FAILED and task.allowFailure:
            state = State.WARNING
        self._finish(row, state, outputs)
        self._set_output(task.id, frame.key, outputs)
        return state

    def _task_deadline(self, task: TaskBase, frame: _Frame, row: TaskRunRow) -> float | None:
        """When ``task``'s own ``timeout`` ends, counted from this attempt's start."""
        if task.timeout is None:
            return None
        seconds = self._seconds(task.timeout, task, frame, row, "timeout")
        return as_utc(row.started_at).timestamp() + seconds

    def retry_policy(self, task: TaskBase) -> RetryPolicy | None:
        """The task's own retry, else the flow's ``retry`` (Kestra's flow-level default)."""
        return task.retry or self.flow.retry

    def _run_attempts(  # noqa: C901 - one loop owns attempts, timeouts and the boundary
        self, task: TaskBase, frame: _Frame, row: TaskRunRow
    ) -> tuple[State, dict[str, Any]]:
        implementation = RUNNABLES.get(type(task))
        if implementation is None:
            self._log(row, "ERROR", f"{task.type} cannot run in this worker yet")
            return State.FAILED, {}
        policy = self.retry_policy(task)
        while True:
            deadline = None
            if task.timeout is not None:
                seconds = self._seconds(task.timeout, task, frame, row, "timeout")
                deadline = time.time() + seconds
            context = _TaskRun(self, task, frame.within(deadline, task.id), row)
            started = time.monotonic()
            try:
                outputs = implementation(task, context)
                if context.timed_out():
                    raise TaskFailedError(f"timed out after {task.timeout}")  # noqa: TRY301
                if contains_sealed(outputs):
                    # Only the worker seals; a forged one would be opened for this run.
                    raise TaskFailedError(  # noqa: TRY301
                        'outputs may not hold a {"sealed": …} value: that shape is reserved'
                    )
            except PASS_THROUGH:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure names the output
                TASK_DURATION.labels(task.type, State.FAILED.value).observe(
                    time.monotonic() - started
                )
                error: Exception = exc
                if (
                    context.timed_out()
                    and not self.should_stop()
                    and "timed out" not in str(exc)  # a runner's own message is clearer
                ):
                    error = TaskFailedError(f"timed out after {task.timeout}")
                self._log(row, "ERROR", describe_error(task, error))
                if self.should_stop():
                    raise StoppedSignal from None
                delay = self._retry_delay(policy, task, frame, row)
                if delay is None:
                    return State.FAILED, {}
                self._sleep(min(delay, 30.0))
                row.attempt += 1
                self._save(row)
            else:
                TASK_DURATION.labels(task.type, State.SUCCESS.value).observe(
                    time.monotonic() - started
                )
                if row.attempt > 1 and policy is not None and policy.warningOnRetry:
                    return State.WARNING, outputs
                return State.SUCCESS, outputs

    def _retry_delay(
        self, policy: RetryPolicy | None, task: TaskBase, frame: _Frame, row: TaskRunRow
    ) -> float | None:
        """Seconds before the next attempt of a failed task, or None when it may not retry.

        ``maxAttempts`` and ``maxDuration`` (counted from the first attempt)
        bound the retries. ``behavior: CREATE_NEW_EXECUTION`` retries the whole
        run instead: the task fails, and the worker queues a new execution.
        """
        if policy is None or row.attempt >= max_attempts(policy):
            return None
        policy = self._rendered_policy(policy, task, frame, row)
        if policy.behavior == "CREATE_NEW_EXECUTION":
            self.retry_as_new_execution = policy
            self._log(row, "INFO", "retry behavior CREATE_NEW_EXECUTION: a new execution follows")
            return None
        delay = delay_before(policy, row.attempt)
        if policy.maxDuration is not None:
            limit = self._seconds(policy.maxDuration, task, frame, row, "retry.maxDuration")
            if time.time() + delay - as_utc(row.started_at).timestamp() > limit:
                self._log(row, "WARN", f"retry.maxDuration of {policy.maxDuration} reached")
                return None
        return delay

    def _rendered_policy(
        self, policy: RetryPolicy, task: TaskBase, frame: _Frame, row: TaskRunRow
    ) -> RetryPolicy:
        """``policy`` with its templated durations rendered and checked."""
        updates: dict[str, str] = {}
        for name in ("interval", "minInterval", "maxInterval", "maxDuration"):
            value = getattr(policy, name, None)
            if isinstance(value, str) and "{" in value:
                updates[name] = str(self._render(value, task, frame, row, f"retry.{name}"))
        for name, value in updates.items():
            try:
                parse_duration(value)
            except ValueError as exc:
                raise EvaluationError(f"task {task.id!r}: retry.{name}: {exc}") from None
        return policy.model_copy(update=updates) if updates else policy

    def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` between attempts, waking early when the run is stopped."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.should_stop():
                raise StoppedSignal
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

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
            limit = self._limit(task.concurrent, task, frame, row, "concurrent")
            return self._parallel([(t, child) for t in task.tasks], limit)
        if isinstance(task, fl.If):
            branch = (
                task.then
                if _truthy(self._render(task.condition, task, frame, row, "condition"))
                else task.else_
            )
            return self.run_list(list(branch or []), child)
        if isinstance(task, fl.Switch):
            value = str(self._render(task.value, task, frame, row, "value"))
            if value not in task.cases and not task.defaults:
                # As in Kestra: a value no case matches, with no defaults, fails the Switch.
                raise EvaluationError(
                    f"task {task.id!r}: value: {_preview(value)} matches no case "
                    "and there are no defaults"
                )
            return self.run_list(list(task.cases.get(value, task.defaults or [])), child)
        if isinstance(task, fl.ForEach | fl.EachSequential | fl.EachParallel):
            return self._for_each(task, frame, row)
        if isinstance(task, fl.Dag):
            return self._dag(task, frame, child, row)
        if isinstance(task, fl.WaitFor):
            return self._wait_for(task, frame, row)
        self._log(row, "ERROR", f"{task.type} cannot run in this worker yet")
        return State.FAILED

    def _for_each(
        self, task: fl.ForEach | fl.EachSequential | fl.EachParallel, frame: _Frame, row: TaskRunRow
    ) -> State:
        name = "values" if isinstance(task, fl.ForEach) else "value"
        raw = task.values if isinstance(task, fl.ForEach) else task.value
        values = _as_list(self._render(raw, task, frame, row, name), task, name)
        if isinstance(task, fl.ForEach):
            limit = self._limit(task.concurrencyLimit, task, frame, row, "concurrencyLimit")
        elif isinstance(task, fl.EachParallel):
            limit = self._limit(task.concurrent, task, frame, row, "concurrent")
        else:
            limit = 1
        frames = [
            _Frame(
                (*frame.values, (task.id, value)),
                row.id,
                frame.shared_dir,
                frame.iterations,
                frame.deadline,
                frame.deadline_of,
            )
            for value in values
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
                write_files(shared, self._render(task.inputFiles, task, frame, row, "inputFiles"))
                self._hand_over(shared)
        except (TaskFailedError, expressions.RenderError, ValueError, OSError) as exc:
            self._log(row, "ERROR", f"inputFiles: {exc}")
            return State.FAILED
        cache = self._cache_dir(task) if task.cache else None
        if cache is not None and task.cache is not None:
            ttl = (
                self._seconds(task.cache.ttl, task, frame, row, "cache.ttl")
                if task.cache.ttl
                else None
            )
            _restore_cache(cache, shared, ttl)
            self._hand_over(shared)
        state = self.run_list(list(task.tasks), child)
        if cache is not None and task.cache is not None and state != State.FAILED:
            patterns = [
                str(self._render(p, task, frame, row, "cache.patterns"))
                for p in task.cache.patterns
            ]
            _save_cache(cache, shared, patterns)
        if task.outputFiles:
            patterns = [
                str(self._render(p, task, frame, row, "outputFiles")) for p in task.outputFiles
            ]
            found = collect_files(shared, patterns, self.work_dir / row.id / "output-files")
            row.outputs = {**row.outputs, "outputFiles": found}
        return state

    def _hand_over(self, shared: Path) -> None:
        """Give files the worker wrote into a shared directory to the sandbox user.

        Scripts run unprivileged (docs/security.md): a restored cache file or an
        input file left owned by the server could be read but not rewritten.
        Links are never followed, so a planted symlink cannot redirect a chown.
        """
        try:
            mode = self.sandbox.effective_mode()
        except FlowplaneError:
            return  # no script can run here anyway; the script task says why
        for root, dirs, files in os.walk(shared, followlinks=False):
            for name in [*dirs, *files]:
                self.sandbox.give(Path(root) / name, mode)

    def _cache_dir(self, task: TaskBase) -> Path:
        """Where a WorkingDirectory's ``cache`` lives between executions of this flow."""
        return self.work_dir.parent / "_cache" / self.flow.namespace / self.flow.id / task.id

    def _wait_for(self, task: fl.WaitFor, frame: _Frame, row: TaskRunRow) -> State:
        """Run the tasks, then again until ``condition`` renders true (Kestra's WaitFor).

        ``outputs.<id>.iterationCount`` is the current iteration, from 1. The
        loop ends when the condition is false, or a child fails, or a limit of
        ``checkFrequency`` is reached (FAILED with ``failOnMaxReached``).
        """
        frequency = task.checkFrequency
        interval = self._seconds(frequency.interval, task, frame, row, "checkFrequency.interval")
        max_duration = self._seconds(
            frequency.maxDuration, task, frame, row, "checkFrequency.maxDuration"
        )
        fail_on_max = _truthy(
            self._render(task.failOnMaxReached, task, frame, row, "failOnMaxReached")
        )
        iteration = 1
        while True:
            row.outputs = {**row.outputs, "iterationCount": iteration}
            self._set_output(task.id, frame.key, {"iterationCount": iteration})
            child = frame.child(row.id)
            child.iterations = (*frame.iterations, (task.id, iteration))
            state = self.run_list(list(task.tasks), child)
            if state == State.FAILED:
                return state
            # Kestra's WaitFor loops until its condition holds (LoopUntil).
            if _truthy(self._render(task.condition, task, frame, row, "condition")):
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

    def _seconds(
        self, value: str, task: TaskBase, frame: _Frame, row: TaskRunRow, name: str
    ) -> float:
        rendered = self._render(value, task, frame, row, name)
        try:
            return parse_duration(str(rendered)).total_seconds()
        except ValueError as exc:
            raise EvaluationError(f"task {task.id!r}: {name}: {exc}") from None

    def _limit(self, value: Any, task: TaskBase, frame: _Frame, row: TaskRunRow, name: str) -> int:
        """A concurrency limit: a positive integer or a template of one; 0 or none means 16."""
        if value is None:
            return _DEFAULT_CONCURRENCY
        rendered = self._render(value, task, frame, row, name)
        try:
            number = int(str(rendered).strip())
        except ValueError:
            raise EvaluationError(
                f"task {task.id!r}: {name}: {rendered!r} is not an integer"
            ) from None
        if number < 0:
            raise EvaluationError(f"task {task.id!r}: {name}: must be ≥ 0, got {number}")
        return number or _DEFAULT_CONCURRENCY

    def _dag(self, task: fl.Dag, frame: _Frame, child: _Frame, row: TaskRunRow) -> State:
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
                lambda node: self.run_task(node.task, child),
                ready,
                self._limit(task.concurrent, task, frame, row, "concurrent"),
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
            namespace = str(self._render(task.namespace, task, frame, row, "namespace"))
            flow_id = str(self._render(task.flowId, task, frame, row, "flowId"))
            inputs = self._render(task.inputs or {}, task, frame, row, "inputs")
            labels = dict(self.execution.labels) if task.inheritLabels else {}
            # A subflow run belongs to its parent's chain (Kestra's system label).
            labels[CORRELATION_LABEL] = self.execution.labels.get(
                CORRELATION_LABEL, self.execution.id
            )
            if task.labels:
                rendered = self._render(task.labels, task, frame, row, "labels")
                labels.update(labels_as_dict(rendered))
            revision = self._render(task.revision, task, frame, row, "revision")
            schedule = self._render(task.scheduleDate, task, frame, row, "scheduleDate")
            self.authorize(self.flow.namespace, namespace, "start a Subflow")
            # An input carrying a revealed secret is sealed in the child, as SECRET inputs are.
            tainted = [k for k, v in (inputs or {}).items() if self.carries_secret(v)]
            child = create_execution(
                self.engine,
                namespace,
                flow_id,
                inputs=inputs,
                labels=labels or None,
                trigger={
                    "type": "subflow",
                    "parentExecutionId": self.execution.id,
                    "parentTaskRunId": row.id,
                },
                revision=_optional_int(revision, task, "revision"),
                scheduled_at=_optional_date(schedule, task, "scheduleDate"),
                sealed=tainted,
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
        finished = get_execution(self.engine, child_id)
        child_outputs = dict(finished.execution.outputs)
        if task.outputs:
            # Kestra's Subflow ``outputs``: rendered against the child's task outputs.
            context = self.context(task, frame, row)
            context["outputs"] = {
                run.task_id: self.unseal(run.outputs)
                for run in finished.task_runs
                if run.value_key == ""
            }
            for name, template in task.outputs.items():
                try:
                    child_outputs[name] = expressions.render_value(template, context)
                except Exception as exc:  # noqa: BLE001 - named like every other field
                    raise EvaluationError(
                        f"task {task.id!r}: outputs.{name}: {_reason(exc)}"
                    ) from None
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

    def _pause_then_tasks(self, task: fl.Pause, frame: _Frame, row: TaskRunRow) -> State:
        """A Pause, then (Kestra's older form) its ``tasks`` once it is resumed."""
        state = self._pause(task, frame, row)
        if task.tasks and state != State.FAILED:
            state = worst([state, self.run_list(list(task.tasks), frame.child(row.id))])
            self._finish(row, state, dict(row.outputs))
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
            name = "timeout" if limit is task.timeout else "pauseDuration"
            seconds = self._seconds(limit, task, frame, row, name)
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
        row.outputs = self.seal_secrets(outputs)
        row.ended_at = utcnow()
        self._save(row)

    def seal_secrets(self, value: Any) -> Any:
        """``value`` ready to store: strings that carry a revealed secret sealed, NUL escaped.

        A secret passed on through an output stays a secret: it is stored
        sealed (the API and UI show the mask) and opened again for later tasks.
        """
        if isinstance(value, str):
            return self.seal(value) if self.carries_secret(value) else escape_nul(value)
        if isinstance(value, dict):
            return {escape_nul(k): self.seal_secrets(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.seal_secrets(v) for v in value]
        return value

    def carries_secret(self, value: Any) -> bool:
        """Whether ``value`` (or anything inside it) contains a revealed secret."""
        if isinstance(value, str):
            return any(secret in value for secret in self.revealed)
        if isinstance(value, dict):
            return any(self.carries_secret(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(self.carries_secret(v) for v in value)
        return False

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
                    message=escape_nul(self._mask(message)),
                )
            )

    def _mask(self, value: Any) -> Any:
        """``value`` with every revealed secret, and its common encodings, masked."""
        if isinstance(value, str):
            return mask_text(value, self.variants)
        if isinstance(value, dict):
            return {k: self._mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._mask(v) for v in value]
        return value

    def _lookup_secret(self, key: str) -> str | None:
        value = self.reveal_secret(key)
        if value:
            self.add_revealed({value})
        return value

    def add_revealed(self, values: set[str]) -> None:
        """Treat ``values`` as secrets from now on: masked in logs, sealed in outputs."""
        values = {v for v in values if v}
        with self._lock:
            new = values - self.revealed
            self.revealed |= new
            for value in new:
                self.variants |= secret_variants(value)

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
            "labels": _nest_labels(self.execution.labels),
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

    def _render(self, value: Any, task: TaskBase, frame: _Frame, row: TaskRunRow, name: str) -> Any:
        """``value`` rendered for ``task``; any failure names the task and the field."""
        try:
            return expressions.render_value(value, self.context(task, frame, row))
        except PASS_THROUGH:
            raise
        except Exception as exc:  # noqa: BLE001 - the fault boundary: any error fails the task
            raise EvaluationError(f"task {task.id!r}: {name}: {_reason(exc)}") from None


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
        name = _field_of(self.task, value)
        return self.executor._render(value, self.task, self.frame, self.row, name)  # noqa: SLF001

    def log(self, level: str, message: str) -> None:
        # The task's logLevel drops lines below it, as in Kestra.
        if self.task.logLevel is not None and _LEVEL_RANK.get(level, 2) < _LEVEL_RANK.get(
            self.task.logLevel.value, 0
        ):
            return
        self.executor._log(self.row, level, message)  # noqa: SLF001

    def should_stop(self) -> bool:
        """True once the run is killed, the lease lost, or the task's timeout passed."""
        return self.executor.should_stop() or self.timed_out()

    def timed_out(self) -> bool:
        """Whether the nearest enclosing ``timeout`` has passed."""
        return self.frame.deadline is not None and time.time() >= self.frame.deadline

    def remaining_seconds(self) -> float | None:
        """Seconds left before the task's timeout, or None without one."""
        if self.frame.deadline is None:
            return None
        return max(0.0, self.frame.deadline - time.time())

    def is_secret(self, value: str) -> bool:
        return any(secret in value for secret in self.executor.revealed)

    def unseal(self, value: Any) -> Any:
        opened = self.executor.unseal(value)
        if isinstance(opened, str) and opened:
            self.executor.add_revealed({opened})  # an opened secret is masked like secret()
        return opened


_LEVEL_RANK = {"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "WARNING": 3, "ERROR": 4}


def _field_of(task: TaskBase, value: Any) -> str:
    """The name of ``task``'s property that holds ``value`` (for error messages)."""
    for name, held in task:
        if held is value:
            return name
        if isinstance(held, list):
            for index, item in enumerate(held):
                if item is value:
                    return f"{name}[{index}]"
        if isinstance(held, dict):
            for key, item in held.items():
                if item is value:
                    return f"{name}.{key}"
    return "a property"


def _restore_cache(cache: Path, shared: Path, ttl: float | None) -> None:
    """Copy a WorkingDirectory's cached files into ``shared``, unless older than ``ttl``."""
    stamp = cache / ".saved"
    if not stamp.is_file():
        return
    if ttl is not None and time.time() - stamp.stat().st_mtime > ttl:
        shutil.rmtree(cache, ignore_errors=True)
        return
    for path in cache.rglob("*"):
        if path.is_file() and path != stamp:
            target = shared / path.relative_to(cache)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def _save_cache(cache: Path, shared: Path, patterns: list[str]) -> None:
    """Keep the files of ``shared`` matching ``patterns`` for the next execution."""
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    for pattern in patterns:
        for path in shared.glob(pattern):
            if path.is_file() and shared.resolve() in path.resolve().parents:
                target = cache / path.relative_to(shared)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    (cache / ".saved").touch()


def _nest_labels(labels: dict[str, Any]) -> dict[str, Any]:
    """Labels as templates see them: a dotted key (`system.correlationId`) is also nested."""
    nested: dict[str, Any] = dict(labels)
    for key, value in labels.items():
        if "." not in key:
            continue
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node.setdefault(leaf, value)
    return nested


def _sealed_values(values: list[Any]) -> list[Any]:
    """Every sealed value found inside ``values`` (dicts and lists are walked)."""
    found: list[Any] = []
    stack = list(values)
    while stack:
        value = stack.pop()
        if is_sealed(value):
            found.append(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def _optional_int(value: Any, task: TaskBase, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise EvaluationError(f"task {task.id!r}: {name}: {value!r} is not an integer") from None
    if number < 1:
        raise EvaluationError(f"task {task.id!r}: {name}: must be ≥ 1, got {number}")
    return number


def _optional_date(value: Any, task: TaskBase, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise EvaluationError(
            f"task {task.id!r}: {name}: {value!r} is not an ISO 8601 date-time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "false", "0", "none", "null"}
    return bool(value)


_DEFAULT_CONCURRENCY = 16


def _as_list(value: Any, task: TaskBase, name: str) -> list[Any]:
    """Loop values: a list, a map (its items), or a JSON text of either."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise EvaluationError(
                f"task {task.id!r}: {name}: rendered to {_preview(text)}, not a list"
            ) from None
    if isinstance(value, dict):
        return list(value.items())
    if not isinstance(value, list):
        raise EvaluationError(
            f"task {task.id!r}: {name}: rendered to {_preview(value)}, not a list"
        )
    if None in value:
        # Kestra refuses a null loop value rather than running a task with none.
        raise EvaluationError(f"task {task.id!r}: {name}: item {value.index(None)} is null")
    return value


def _preview(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _reason(exc: BaseException) -> str:
    """The message of ``exc``, with its class when the message alone says little."""
    text = str(exc).strip()
    if isinstance(exc, FlowplaneError | TaskFailedError | expressions.RenderError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_error(task: TaskBase, exc: BaseException) -> str:
    """The log message for a task that failed with ``exc``.

    A task's own failure (a non-zero exit, a refused call) reads as it is: the
    log line already carries the task id. Anything unexpected names the task.
    """
    if isinstance(exc, TaskFailedError | EvaluationError):
        return _reason(exc)
    return f"task {task.id!r}: {_reason(exc)}"


def _str(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
