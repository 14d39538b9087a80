"""Argo's Dag, loop and template retry, as flowables (specs: ``domain/tasktypes/argo.py``).

Each decides which children run, as Argo's controller would, and leaves the
rest to the worker (fault boundary, replay, timeouts, persistence).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any, ClassVar

from controlplane.domain.argo.depends import Node, evaluate_depends, parse_depends
from controlplane.domain.fields import State
from controlplane.domain.tasktypes import argo
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.errors import EvaluationError
from controlplane.plugins.api import Flowable, Walk, worst
from controlplane.plugins.flow.values import as_list, truthy

_COMPLETED = {"Succeeded", "Failed", "Errored"}
_PHASES = {State.SUCCESS: "Succeeded", State.WARNING: "Succeeded", State.FAILED: "Failed"}


class ArgoDag(argo.ArgoDag, Flowable):
    """A Dag with Argo's depends logic, continueOn, failFast and target."""

    def resolve(self, walk: Walk) -> State:  # noqa: C901 - the scheduling loop
        """Run each task once its dependencies are done and its depends logic holds.

        A task whose logic cannot hold is omitted (recorded SKIPPED, and logged).
        The dag's state follows Argo's ``assessDAGPhase``: each target task (by
        default every task nothing depends on) takes the phase of its branch,
        an omitted or skipped task inheriting the worst phase above it; a
        failed target fails the dag unless its continueOn tolerates it. A dag
        that succeeds while some task failed ends in WARNING.
        """
        nodes = {node.task.id: node for node in self.tasks}
        deps = {task_id: list(node.dependsOn) for task_id, node in nodes.items()}
        logic: dict[str, Node] = {k: parse_depends(v) for k, v in self.depends.items()}
        tolerated = {
            task_id: {name for name, on in (("Failed", c.failed), ("Errored", c.error)) if on}
            for task_id, c in self.continueOn.items()
        }
        targets = self._targets(walk, nodes, deps)
        needed = _with_ancestors(targets, deps)
        order = [task_id for task_id in nodes if task_id in needed]
        limit = walk.limit(self.concurrent, "concurrent")
        phases: dict[str, str] = {}
        results: dict[str, dict[str, bool]] = {}
        warned = False
        pending = list(order)
        with ThreadPoolExecutor(max_workers=limit) as pool:
            running: dict[Future[State], str] = {}
            while pending or running:
                for task_id in list(pending):
                    if any(dep not in phases for dep in deps[task_id]):
                        continue
                    holds = task_id not in logic and not deps[task_id]
                    if not holds:
                        expression = logic.get(task_id) or _all_of(deps[task_id])
                        holds = evaluate_depends(expression, results, tolerated)
                    if not holds:
                        pending.remove(task_id)
                        phases[task_id] = "Omitted"
                        results[task_id] = {"Omitted": True}
                        walk.log(
                            "INFO", f"task {task_id} omitted: its depends condition is not met"
                        )
                        omitted = nodes[task_id].task.model_copy(update={"runIf": False})
                        walk.run_concurrently([omitted], 1)
                        continue
                    if len(running) >= limit:
                        break
                    pending.remove(task_id)
                    running[pool.submit(_run_one, walk, nodes[task_id].task)] = task_id
                if not running:
                    if pending:  # cannot happen: every dependency of a needed task is needed
                        raise EvaluationError(f"task {self.id!r}: tasks {pending} can never run")
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    task_id = running.pop(future)
                    state = future.result()
                    warned = warned or state in {State.WARNING, State.FAILED}
                    phases[task_id] = _PHASES.get(state, "Skipped")
                    results[task_id] = self._results(walk, nodes[task_id].task, phases[task_id])
        # failFast: Argo's controller schedules every ready task before it assesses
        # the dag, so a failed branch never keeps a ready one from starting, and at the
        # end the phase is the same either way; this loop does the same (docs/argo.md).
        phase = _assess(phases, deps, targets, tolerated)
        if phase != "Succeeded":
            return State.FAILED
        return State.WARNING if warned else State.SUCCESS

    def _targets(
        self, walk: Walk, nodes: Mapping[str, Any], deps: Mapping[str, list[str]]
    ) -> list[str]:
        if self.target is None:
            depended = {dep for found in deps.values() for dep in found}
            return [task_id for task_id in nodes if task_id not in depended]
        names = str(walk.render(self.target, "target")).split()
        if not names:
            return self._targets_default(nodes, deps)
        targets = []
        for name in names:
            task_id = (self.taskNames or {}).get(name, name)
            if task_id not in nodes:
                raise EvaluationError(
                    f"task {self.id!r}: target {name!r} is not a task of this dag"
                )
            targets.append(task_id)
        return targets

    @staticmethod
    def _targets_default(nodes: Mapping[str, Any], deps: Mapping[str, list[str]]) -> list[str]:
        depended = {dep for found in deps.values() for dep in found}
        return [task_id for task_id in nodes if task_id not in depended]

    @staticmethod
    def _results(walk: Walk, task: TaskBase, phase: str) -> dict[str, bool]:
        flags = {phase: True}
        if isinstance(task, argo.ArgoLoop):
            states = outputs_at(walk, task.id).get("itemStates") or []
            flags["AnySucceeded"] = "Succeeded" in states
            flags["AllFailed"] = bool(states) and all(s == "Failed" for s in states)
        return flags


def _run_one(walk: Walk, task: TaskBase) -> State:
    """Run one child and return its own state (SKIPPED stays SKIPPED)."""
    return walk.run_concurrently([task], 1)[0]


def _run_item(walk: Walk, value: str, tasks: list[TaskBase]) -> State:
    """Run a loop's task for one item."""
    return walk.run_per_value([value], tasks, 1)


def _all_of(deps: list[str]) -> Node:
    """Argo's ``dependencies: [A, B]``: ``A && B`` (each a bare name)."""
    from controlplane.domain.argo.depends import Op, Ref  # noqa: PLC0415 - keeps the top short

    node: Node = Ref(deps[0], None)
    for dep in deps[1:]:
        node = Op("&&", node, Ref(dep, None))
    return node


def _with_ancestors(targets: list[str], deps: Mapping[str, list[str]]) -> set[str]:
    found: set[str] = set()
    pending = list(targets)
    while pending:
        current = pending.pop()
        if current not in found:
            found.add(current)
            pending.extend(deps.get(current, []))
    return found


def _assess(
    phases: Mapping[str, str],
    deps: Mapping[str, list[str]],
    targets: list[str],
    tolerated: Mapping[str, set[str]],
) -> str:
    """Argo's ``assessDAGPhase``: the phase of each target's branch decides the dag's."""
    children: dict[str, list[str]] = {task_id: [] for task_id in phases}
    for task_id, found in deps.items():
        for dep in found:
            if task_id in phases and dep in children:
                children[dep].append(task_id)
    queue = [(task_id, "Succeeded") for task_id in phases if not deps.get(task_id)]
    seen: set[tuple[str, str]] = set()
    branch: dict[str, set[str]] = {}
    while queue:
        task_id, inherited = queue.pop()
        if (task_id, inherited) in seen:
            continue
        seen.add((task_id, inherited))
        phase = phases[task_id] if phases[task_id] in _COMPLETED else inherited
        branch.setdefault(task_id, set()).add(phase)
        queue.extend((child, phase) for child in children[task_id])
    result = "Succeeded"
    for target in sorted(targets):
        seen_phases = branch.get(target, {"Succeeded"})
        phase = next((p for p in ("Failed", "Errored") if p in seen_phases), "Succeeded")
        if phase != "Succeeded" and phase not in tolerated.get(target, set()):
            result = phase
    return result


def outputs_at(walk: Walk, task_id: str) -> dict[str, Any]:
    """The outputs of ``task_id`` in the caller's own loop frame (Argo loops nest)."""
    text = walk.render(
        "{{ (outputs['" + task_id + "'] ?? null) | toJson }}|{{ parents | toJson }}", "outputs"
    )
    found, _, parents = str(text).partition("|")
    value = json.loads(found)
    for parent in reversed(json.loads(parents)):
        if not isinstance(value, dict):
            return {}
        value = value.get(parent["taskrun"]["value"])
    return value if isinstance(value, dict) else {}


class ArgoLoop(argo.ArgoLoop, Flowable):
    """One task per item, in item order; the items' outputs aggregated as Argo does."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "result": "each succeeded item's outputs.result (parsed as JSON), in item order",
        "parameters": "each succeeded item's output parameters, in item order",
        "parameterValues": "per output parameter, its values in item order",
        "itemStates": "each item's Argo phase: Succeeded, Failed or Skipped",
    }

    def resolve(self, walk: Walk) -> State:
        """Run the items (``concurrency`` at once; none start after a failure with failFast)."""
        values = self._values(walk)
        limit = walk.limit(self.concurrency or None, "concurrency")
        states: list[State | None] = [None] * len(values)
        with ThreadPoolExecutor(max_workers=max(1, min(limit, len(values) or 1))) as pool:
            running: dict[Future[State], int] = {}
            index = 0
            failed = False
            while index < len(values) or running:
                while (
                    index < len(values) and len(running) < limit and not (failed and self.failFast)
                ):
                    value = values[index]
                    future = pool.submit(_run_item, walk, value, list(self.tasks))
                    running[future] = index
                    index += 1
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    position = running.pop(future)
                    states[position] = future.result()
                    failed = failed or states[position] == State.FAILED
        if failed and self.failFast and None in states:
            walk.log("INFO", f"failFast: {states.count(None)} item(s) not started after a failure")
        walk.keep_outputs(self._aggregate(walk, values, states))
        return worst([s for s in states if s is not None])

    def _values(self, walk: Walk) -> list[str]:
        if self.sequence is not None:
            raw: list[Any] = _sequence(self.sequence, walk, self)
        else:
            raw = as_list(walk.render(self.items, "items"), self, "items")
        # Each run carries "<index>:<item>", as Argo names a loop's nodes ("B(0:foo)"):
        # equal items stay apart, and the converted flow reads the item after the colon.
        return [
            f"{index}:"
            + (v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":")))
            for index, v in enumerate(raw)
        ]

    def _aggregate(
        self, walk: Walk, values: list[str], states: list[State | None]
    ) -> dict[str, Any]:
        outputs = outputs_at(walk, self.collect) if self.collect else {}
        results: list[Any] = []
        parameters: list[dict[str, Any]] = []
        by_name: dict[str, list[Any]] = {}
        phases = []
        for value, state in zip(values, states, strict=True):
            found = outputs.get(value)
            if state is None:
                phases.append("Omitted")
                continue
            if state == State.FAILED:
                phases.append("Failed")
                continue
            if self.collect and not isinstance(found, dict):
                phases.append("Skipped")  # a `when` that did not hold: no outputs
                continue
            phases.append("Succeeded")
            if not isinstance(found, dict):
                continue
            variables = found.get("vars") if isinstance(found.get("vars"), dict) else None
            if variables is not None and variables.get("result") not in {None, ""}:
                results.append(_item(variables["result"]))
            given = found.get("values") if isinstance(found.get("values"), dict) else {}
            params = (variables or {}).get("parameters") or (given or {}).get("parameters") or {}
            if params:
                parameters.append({str(k): v for k, v in params.items()})
                for name, param in params.items():
                    by_name.setdefault(str(name), []).append(param)
        return {
            "result": results,
            "parameters": parameters,
            "parameterValues": by_name,
            "itemStates": phases,
        }


def _item(result: Any) -> Any:
    """A result as Argo aggregates it: JSON when it parses, else the text."""
    if not isinstance(result, str):
        return result
    try:
        return json.loads(result)
    except json.JSONDecodeError:
        return result


def _sequence(sequence: argo.Sequence, walk: Walk, task: TaskBase) -> list[str]:
    """Argo's withSequence: ``start`` to ``end`` (or ``count`` numbers), each ``format``ted."""

    def number(value: Any, name: str) -> int:
        rendered = walk.render(value, f"sequence.{name}")
        try:
            return int(str(rendered).strip() or 0)
        except ValueError:
            raise EvaluationError(
                f"task {task.id!r}: sequence.{name}: {rendered!r} is not an integer"
            ) from None

    start = number(sequence.start or 0, "start")
    if sequence.count is not None:
        count = number(sequence.count, "count")
        end = start + count - 1
        if count <= 0:
            return []
    else:
        end = number(sequence.end, "end")
    form = str(walk.render(sequence.format, "sequence.format")) if sequence.format else "%d"
    step = 1 if start <= end else -1
    try:
        return [form % i for i in range(start, end + step, step)]
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"task {task.id!r}: sequence.format {form!r}: {exc}") from None


class ArgoRetry(argo.ArgoRetry, Flowable):
    """Run the tasks again, afresh, until they succeed or ``limit`` retries are spent."""

    def resolve(self, walk: Walk) -> State:
        """Each attempt runs the tasks anew; a retry waits the backoff interval first."""
        attempt = 1
        backoff = self.backoff or argo.Backoff()
        while True:
            state = walk.run_iteration(self.tasks, attempt)
            if state != State.FAILED or attempt > self.limit:
                return state
            if self.condition is not None and not truthy(walk.render(self.condition, "condition")):
                walk.log("INFO", f"attempt {attempt} failed; the retry condition does not hold")
                return state
            if backoff.maxDuration is not None:
                spent = (datetime.now(UTC) - walk.started_at).total_seconds()
                if spent >= walk.seconds(backoff.maxDuration, "backoff.maxDuration"):
                    walk.log("INFO", f"backoff.maxDuration {backoff.maxDuration} passed: no retry")
                    return state
            delay = walk.seconds(backoff.interval, "backoff.interval")
            if backoff.delayFactor:
                delay *= backoff.delayFactor ** (attempt - 1)
            if backoff.maxInterval is not None:
                delay = min(delay, walk.seconds(backoff.maxInterval, "backoff.maxInterval"))
            attempt += 1
            walk.log("INFO", f"attempt {attempt - 1} failed; retry {attempt - 1} of {self.limit}")
            walk.wait_before_iteration(self.tasks[0], attempt, delay)
