"""What a flowable task may do while the executor walks it (``plugins.api.Walk``).

Every child goes through ``Executor.run_task``, so the fault boundary, the
replay memo and the timeouts apply to children exactly as to top-level tasks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.domain.fields import State
from controlplane.domain.tasktypes import TaskBase
from controlplane.errors import EvaluationError, FlowplaneError
from controlplane.plugins.api import CancelledSignal, PausedSignal, StoppedSignal, worst
from controlplane.services.executions import CORRELATION_LABEL, create_execution, get_execution
from controlplane.services.worker.frames import Frame
from controlplane.services.worker.namespace_reads import matching_namespace_files
from controlplane.store.db import as_utc
from controlplane.store.tables import TaskRunRow, utcnow

if TYPE_CHECKING:
    from controlplane.services.worker.executor import Executor

# A WaitFor interval up to this long is slept in the worker; a longer one parks
# the execution (PAUSED with a wake time) so no worker thread is held.
INLINE_WAIT_SECONDS = 2.0
# Children run at once when a flowable sets no limit (or 0), and never more.
_MAX_CONCURRENCY = 16


@dataclass
class FlowableWalk:
    """The Walk handed to a flowable's ``resolve``: ``frame`` is its own, ``child`` its tasks'."""

    executor: Executor
    task: TaskBase
    frame: Frame
    child: Frame
    row: TaskRunRow

    @property
    def task_run_id(self) -> str:  # noqa: D102 - see plugins.api.Walk
        return self.row.id

    @property
    def started_at(self) -> datetime:  # noqa: D102
        return as_utc(self.row.started_at)

    @property
    def stored_outputs(self) -> dict[str, Any]:  # noqa: D102
        return dict(self.row.outputs)

    @property
    def stored_state(self) -> State:  # noqa: D102
        return State(self.row.state)

    @property
    def shared_dir(self) -> Path | None:  # noqa: D102
        return self.child.shared_dir

    def render(self, value: Any, name: str) -> Any:  # noqa: D102
        return self.executor.render(value, self.task, self.frame, self.row, name)

    def seconds(self, value: str, name: str) -> float:  # noqa: D102
        return self.executor.seconds(value, self.task, self.frame, self.row, name)

    def limit(self, value: Any, name: str) -> int:
        """A concurrency limit: a positive integer or a template of one; 0 or none means 16."""
        if value is None:
            return _MAX_CONCURRENCY
        rendered = self.render(value, name)
        try:
            number = int(str(rendered).strip())
        except ValueError:
            raise EvaluationError(
                f"task {self.task.id!r}: {name}: {rendered!r} is not an integer"
            ) from None
        if number < 0:
            raise EvaluationError(f"task {self.task.id!r}: {name}: must be ≥ 0, got {number}")
        return number or _MAX_CONCURRENCY

    def log(self, level: str, message: str) -> None:  # noqa: D102
        self.executor.log(self.row, level, message)

    def keep_outputs(self, outputs: dict[str, Any], *, expose: bool = True) -> None:  # noqa: D102
        self.row.outputs = {**self.row.outputs, **outputs}
        self.executor.save(self.row)
        if expose:
            self.executor.set_output(self.task.id, self.frame.key, outputs)

    # --- children ----------------------------------------------------------------

    def run_tasks(self, tasks: Sequence[TaskBase]) -> State:  # noqa: D102
        return self.executor.run_list(list(tasks), self.child)

    def run_concurrently(self, tasks: Sequence[TaskBase], limit: int) -> list[State]:  # noqa: D102
        return _map(lambda task: self.executor.run_task(task, self.child), list(tasks), limit)

    def run_per_value(  # noqa: D102
        self, values: Sequence[Any], tasks: Sequence[TaskBase], limit: int
    ) -> State:
        frames = [self.child.with_value(self.task.id, value) for value in values]
        if limit == 1:
            return worst([self.executor.run_list(list(tasks), f) for f in frames])
        return worst(_map(lambda f: self.executor.run_list(list(tasks), f), frames, limit))

    def run_iteration(self, tasks: Sequence[TaskBase], iteration: int) -> State:  # noqa: D102
        return self.executor.run_list(list(tasks), self.child.in_iteration(self.task.id, iteration))

    def wait_before_iteration(self, first: TaskBase, iteration: int, interval: float) -> None:
        """Wait ``interval`` before an iteration, unless a replay finds it already ran."""
        upcoming = self.child.in_iteration(self.task.id, iteration)
        if (first.id, upcoming.key) in self.executor.memo:
            return
        outputs = self.row.outputs
        planned = outputs.get("nextIteration") == iteration and outputs.get("nextAt")
        due = datetime.fromisoformat(planned) if planned else utcnow() + timedelta(seconds=interval)
        remaining = (due - utcnow()).total_seconds()
        if remaining <= 0:
            return
        if remaining <= INLINE_WAIT_SECONDS:
            deadline = time.monotonic() + remaining
            while time.monotonic() < deadline:
                if self.executor.should_stop():
                    raise StoppedSignal
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            return
        self.row.outputs = {**outputs, "nextIteration": iteration, "nextAt": due.isoformat()}
        self.executor.save(self.row)
        raise PausedSignal(due, running=True)

    # --- parking and ending ----------------------------------------------------------

    def park(  # noqa: D102
        self, wake_at: datetime | None, *, running: bool, outputs: dict[str, Any]
    ) -> None:
        self.row.outputs = outputs
        if not running:
            self.row.state = State.PAUSED.value
        self.executor.save(self.row)
        raise PausedSignal(wake_at, running=running)

    def finish(self, state: State, outputs: dict[str, Any]) -> State:  # noqa: D102
        self.executor.finish(self.row, state, outputs)
        self.executor.set_output(self.task.id, self.frame.key, outputs)
        return state

    def cancel_execution(self) -> None:  # noqa: D102
        self.executor.finish(self.row, State.CANCELLED, {})
        raise CancelledSignal

    # --- files -------------------------------------------------------------------

    def hand_over(self, directory: Path) -> None:
        """Give files the worker wrote into a shared directory to the sandbox user.

        Scripts run unprivileged (docs/security.md): a restored cache file or an
        input file left owned by the server could be read but not rewritten.
        Links are never followed, so a planted symlink cannot redirect a chown.
        """
        sandbox = self.executor.sandbox
        try:
            mode = sandbox.effective_mode()
        except FlowplaneError:
            return  # no script can run here anyway; the script task says why
        for root, dirs, files in os.walk(directory, followlinks=False):
            for name in [*dirs, *files]:
                sandbox.give(Path(root) / name, mode)

    def cache_dir(self) -> Path:  # noqa: D102
        flow = self.executor.flow
        return self.executor.work_dir.parent / "_cache" / flow.namespace / flow.id / self.task.id

    def files_dir(self) -> Path:  # noqa: D102
        return self.executor.work_dir / self.row.id / "output-files"

    def namespace_files(  # noqa: D102
        self, include: Sequence[str], exclude: Sequence[str], *, namespace: str | None = None
    ) -> dict[str, bytes]:
        return matching_namespace_files(self.executor, include, exclude, namespace)

    # --- subflows ------------------------------------------------------------------

    def start_subflow(  # noqa: D102
        self,
        namespace: str,
        flow_id: str,
        *,
        inputs: dict[str, Any],
        labels: dict[str, Any],
        inherit_labels: bool = False,
        revision: int | None,
        scheduled_at: datetime | None,
    ) -> str:
        executor = self.executor
        execution = executor.execution
        merged = dict(execution.labels) if inherit_labels else {}
        # A subflow run belongs to its parent's chain (Kestra's system label).
        merged[CORRELATION_LABEL] = execution.labels.get(CORRELATION_LABEL, execution.id)
        merged.update(labels)
        executor.authorize(executor.flow.namespace, namespace, "start a Subflow")
        # An input carrying a revealed secret is sealed in the child, as SECRET inputs are.
        tainted = [k for k, v in (inputs or {}).items() if executor.secrets.carries(v)]
        child = create_execution(
            executor.engine,
            namespace,
            flow_id,
            inputs=inputs,
            labels=merged or None,
            trigger={
                "type": "subflow",
                "parentExecutionId": execution.id,
                "parentTaskRunId": self.row.id,
            },
            revision=revision,
            scheduled_at=scheduled_at,
            sealed=tainted,
        )
        return child.id

    def subflow_result(  # noqa: D102
        self, execution_id: str
    ) -> tuple[State, dict[str, Any], dict[str, Any]]:
        found = get_execution(self.executor.engine, execution_id)
        task_outputs = {
            run.task_id: self.executor.unseal(run.outputs)
            for run in found.task_runs
            if run.value_key == ""
        }
        return State(found.execution.state), dict(found.execution.outputs), task_outputs

    def render_against(self, value: Any, name: str, outputs: dict[str, Any]) -> Any:  # noqa: D102
        variables = self.executor.variables(self.task, self.frame, self.row)
        variables["outputs"] = outputs
        return self.executor.render_with(value, self.task, name, variables)


def _map(fn: Callable[[Any], State], jobs: list[Any], limit: int) -> list[State]:
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(limit, len(jobs), _MAX_CONCURRENCY)) as pool:
        return list(pool.map(fn, jobs))
