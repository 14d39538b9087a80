"""Sequential, Parallel, If, Switch and AllowFailure: which children run, in what order."""

from __future__ import annotations

from controlplane.domain.fields import State
from controlplane.domain.tasktypes import flowable
from controlplane.errors import EvaluationError
from controlplane.plugins.api import Flowable, Walk, worst
from controlplane.plugins.flow.values import preview, truthy


class Sequential(flowable.Sequential, Flowable):
    """Run tasks one after the other."""

    def resolve(self, walk: Walk) -> State:
        """The tasks in order, stopping at the first failure."""
        return walk.run_tasks(self.tasks)


class Parallel(flowable.Parallel, Flowable):
    """Run tasks at the same time, at most ``concurrent`` at once (0: all)."""

    def resolve(self, walk: Walk) -> State:
        """Every task, ``concurrent`` at once; the worst state wins."""
        return worst(walk.run_concurrently(self.tasks, walk.limit(self.concurrent, "concurrent")))


class If(flowable.If, Flowable):
    """Run ``then`` when the condition renders true, else ``else``."""

    def resolve(self, walk: Walk) -> State:
        """``then`` or ``else``, by the rendered condition."""
        branch = self.then if truthy(walk.render(self.condition, "condition")) else self.else_
        return walk.run_tasks(branch or [])


class Switch(flowable.Switch, Flowable):
    """Run the branch whose key equals the rendered ``value``."""

    def resolve(self, walk: Walk) -> State:
        """The matching case, else ``defaults``; neither fails the Switch, as in Kestra."""
        value = str(walk.render(self.value, "value"))
        if value not in self.cases and not self.defaults:
            raise EvaluationError(
                f"task {self.id!r}: value: {preview(value)} matches no case "
                "and there are no defaults"
            )
        return walk.run_tasks(self.cases.get(value, self.defaults or []))


class AllowFailure(flowable.AllowFailure, Flowable):
    """Run tasks; a failure among them ends this task in WARNING."""

    def resolve(self, walk: Walk) -> State:
        """The tasks in order; FAILED becomes WARNING (so ``errors`` never runs)."""
        state = walk.run_tasks(self.tasks)
        return State.WARNING if state == State.FAILED else state
