"""Subflow and Pause: they may leave the run waiting, holding no worker thread.

A parked run is claimed again when its wake time passes (or when it is
resumed) and replays up to here, so these tasks read what they stored on
their own task run before parking.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from controlplane.domain.fields import State
from controlplane.domain.tasktypes import flowable
from controlplane.domain.tasktypes.base import TaskBase, labels_as_dict
from controlplane.domain.transitions import TERMINAL
from controlplane.errors import EvaluationError
from controlplane.plugins.api import Flowable, Walk, worst

# How often a parent parked on a running subflow wakes to look at it.
SUBFLOW_POLL_SECONDS = 0.5
_DONE = {State.SUCCESS, State.WARNING, State.SKIPPED}


class Subflow(flowable.Subflow, Flowable):
    """Start an execution of another flow, optionally waiting for its end."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "executionId": "the child run's id",
        "state": "the child run's end state",
        "outputs": "the child flow's outputs (and this task's rendered ``outputs``)",
    }
    PARKS: ClassVar[bool] = True

    def resolve(self, walk: Walk) -> State:
        """Start the child once; while it runs, park and look again later."""
        child_id = walk.stored_outputs.get("executionId")
        if child_id is None:
            child_id = self._start(walk)
            if not self.wait:
                return walk.finish(State.SUCCESS, walk.stored_outputs)
        child_state, child_outputs, task_outputs = walk.subflow_result(child_id)
        if child_state not in TERMINAL:
            wake_at = datetime.now(UTC) + timedelta(seconds=SUBFLOW_POLL_SECONDS)
            walk.park(wake_at, running=True, outputs=walk.stored_outputs)
        outputs_of_child = dict(child_outputs)
        for name, template in (self.outputs or {}).items():
            # Kestra's Subflow ``outputs``: rendered against the child's task outputs.
            outputs_of_child[name] = walk.render_against(template, f"outputs.{name}", task_outputs)
        outputs = {"executionId": child_id, "state": child_state.value, "outputs": outputs_of_child}
        failed = child_state not in {State.SUCCESS, State.WARNING}
        state = State.FAILED if failed and self.transmitFailed else State.SUCCESS
        if child_state == State.WARNING:
            state = State.WARNING
        if state == State.FAILED and self.allowFailure:
            state = State.WARNING
        return walk.finish(state, outputs)

    def _start(self, walk: Walk) -> str:
        inputs = walk.render(self.inputs or {}, "inputs")
        labels: dict[str, Any] = {}
        if self.labels:
            labels = dict(labels_as_dict(walk.render(self.labels, "labels")))
        child_id = walk.start_subflow(
            str(walk.render(self.namespace, "namespace")),
            str(walk.render(self.flowId, "flowId")),
            inputs=inputs,
            labels=labels,
            inherit_labels=self.inheritLabels,
            revision=_optional_int(walk.render(self.revision, "revision"), self, "revision"),
            scheduled_at=_optional_date(
                walk.render(self.scheduleDate, "scheduleDate"), self, "scheduleDate"
            ),
        )
        walk.keep_outputs({"executionId": child_id}, expose=False)
        return child_id


class Pause(flowable.Pause, Flowable):
    """Pause the execution until resumed, or until ``pauseDuration`` passes."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "onResume": "the values given when the run was resumed, by input id"
    }
    PARKS: ClassVar[bool] = True

    def resolve(self, walk: Walk) -> State:
        """A Pause, then (Kestra's older form) its ``tasks`` once it is resumed."""
        state = self._pause(walk)
        if self.tasks and state != State.FAILED:
            state = worst([state, walk.run_tasks(self.tasks)])
            walk.finish(state, walk.stored_outputs)
        return state

    def _pause(self, walk: Walk) -> State:
        """Park the run until it is resumed, or until its duration or timeout passes.

        As in Kestra: after ``pauseDuration`` (or the older ``delay``) the
        ``behavior`` decides — RESUME succeeds, WARN ends the task in WARNING,
        FAIL fails it, CANCEL cancels the execution. Without a duration, a task
        ``timeout`` fails the Pause when it passes.
        """
        if walk.stored_state in _DONE:  # resumed through the API
            walk.keep_outputs(walk.stored_outputs)
            return walk.stored_state
        duration = self.pauseDuration or self.delay
        limit = duration or self.timeout
        if limit is None:
            walk.park(None, running=False, outputs=walk.stored_outputs)
        parked = walk.stored_state == State.PAUSED
        resume_at = walk.stored_outputs.get("resumeAt") if parked else None
        if resume_at is None:
            name = "timeout" if limit is self.timeout else "pauseDuration"
            wake_at = walk.started_at + timedelta(seconds=walk.seconds(str(limit), name))
            walk.park(wake_at, running=False, outputs={"resumeAt": wake_at.isoformat()})
        wake_at = datetime.fromisoformat(str(resume_at))
        if datetime.now(UTC) < wake_at:
            walk.park(wake_at, running=False, outputs=walk.stored_outputs)
        behavior = self.behavior if duration else "FAIL"
        reason = "pauseDuration" if duration else "timeout"
        walk.log("INFO", f"{reason} of {limit} passed; behavior {behavior}")
        if behavior == "CANCEL":
            walk.cancel_execution()
        state = {"RESUME": State.SUCCESS, "WARN": State.WARNING}.get(behavior, State.FAILED)
        if state == State.FAILED and self.allowFailure:
            state = State.WARNING
        return walk.finish(state, {})


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
