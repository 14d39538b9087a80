"""ForEach, EachSequential, EachParallel, Dag and WaitFor: children run repeatedly or in order."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import ClassVar

from controlplane.domain.fields import State
from controlplane.domain.tasktypes import flowable
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import Flowable, Walk, worst
from controlplane.plugins.flow.values import as_list, truthy


class ForEach(flowable.ForEach, Flowable):
    """Run the tasks once per value, ``concurrencyLimit`` at once (0: all)."""

    def resolve(self, walk: Walk) -> State:
        """The tasks once per rendered value."""
        values = as_list(walk.render(self.values, "values"), self, "values")
        limit = walk.limit(self.concurrencyLimit, "concurrencyLimit")
        return walk.run_per_value(values, self.tasks, limit)


class EachSequential(flowable.EachSequential, Flowable):
    """Run the tasks once per value, one value at a time (older ForEach)."""

    def resolve(self, walk: Walk) -> State:
        """The tasks once per rendered value, in turn."""
        values = as_list(walk.render(self.value, "value"), self, "value")
        return walk.run_per_value(values, self.tasks, 1)


class EachParallel(flowable.EachParallel, Flowable):
    """Run the tasks once per value, values in parallel (older ForEach)."""

    def resolve(self, walk: Walk) -> State:
        """The tasks once per rendered value, ``concurrent`` values at once."""
        values = as_list(walk.render(self.value, "value"), self, "value")
        return walk.run_per_value(values, self.tasks, walk.limit(self.concurrent, "concurrent"))


class Dag(flowable.Dag, Flowable):
    """Run tasks as soon as the tasks they depend on have succeeded."""

    def resolve(self, walk: Walk) -> State:
        """Waves of ready nodes; a node whose dependency failed fails unrun."""
        limit = walk.limit(self.concurrent, "concurrent")
        done: dict[str, State] = {}
        pending = {node.task.id: node for node in self.tasks}
        while pending:
            ready = [n for n in pending.values() if all(d in done for d in n.dependsOn)]
            blocked = [n for n in ready if any(done[d] == State.FAILED for d in n.dependsOn)]
            for node in blocked:
                del pending[node.task.id]
                done[node.task.id] = State.FAILED
            ready = [n for n in ready if n not in blocked]
            results = walk.run_concurrently([n.task for n in ready], limit)
            for node, state in zip(ready, results, strict=True):
                done[node.task.id] = state
                del pending[node.task.id]
        return worst(list(done.values()))


class WaitFor(flowable.WaitFor, Flowable):
    """Repeat tasks until ``condition`` renders true."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {"iterationCount": "the current iteration, from 1"}

    def resolve(self, walk: Walk) -> State:
        """Run the tasks, then again until ``condition`` renders true (Kestra's LoopUntil).

        The loop ends when the condition holds, or a child fails, or a limit of
        ``checkFrequency`` is reached (FAILED with ``failOnMaxReached``).
        """
        frequency = self.checkFrequency
        interval = walk.seconds(frequency.interval, "checkFrequency.interval")
        max_duration = walk.seconds(frequency.maxDuration, "checkFrequency.maxDuration")
        fail_on_max = truthy(walk.render(self.failOnMaxReached, "failOnMaxReached"))
        iteration = 1
        while True:
            walk.keep_outputs({"iterationCount": iteration})
            state = walk.run_iteration(self.tasks, iteration)
            if state == State.FAILED:
                return state
            if truthy(walk.render(self.condition, "condition")):
                return state
            elapsed = (datetime.now(UTC) - walk.started_at).total_seconds()
            if iteration >= frequency.maxIterations or elapsed >= max_duration:
                limit = "maxIterations" if iteration >= frequency.maxIterations else "maxDuration"
                walk.log("WARN", f"{limit} reached after {iteration} iterations")
                return State.FAILED if fail_on_max else state
            iteration += 1
            first: TaskBase = self.tasks[0]
            walk.wait_before_iteration(first, iteration, interval)
