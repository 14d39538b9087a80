"""Steps and dag templates and loops as flowables (a part of ``inline.Converter``)."""

from __future__ import annotations

from typing import Any

from controlplane.domain.argo.base import (
    DAG_TYPE,
    LOOP_TYPE,
    RETRY_TYPE,
    Built,
    ConverterBase,
    finalize,
    unbounded,
)
from controlplane.domain.argo.depends import (
    DependsError,
    Node,
    Op,
    Ref,
    format_depends,
    parse_depends,
    referenced_tasks,
)
from controlplane.domain.argo.scope import CallRef, Scope
from controlplane.domain.parse import Path, format_path


class BodyBuilder(ConverterBase):
    """Builds the tasks of steps and dag templates, and of loops."""

    def steps(
        self,
        template: dict[str, Any],
        path: Path,
        scope: Scope,
        task_id: str,
        loops: tuple[str, ...],
        *,
        root: bool,
    ) -> Built:
        """A steps template: a Sequential of its groups (a Parallel for several steps)."""
        groups = template.get("steps")
        if not isinstance(groups, list) or not groups:
            self.refuse((*path, "steps"), "steps must be a non-empty list of lists")
            groups = []
        body = Scope(**{**scope.__dict__, "siblings": {}, "sibling_kind": "steps"})
        prefix = "" if root else task_id
        tasks: list[dict[str, Any]] = []
        limit = self.limit(template.get("parallelism"), (*path, "parallelism"))
        fail_fast = template.get("failFast")
        for number, raw in enumerate(groups, start=1):
            where = (*path, "steps", number - 1)
            # An Argo shorthand: a group of one step given as a mapping.
            group = [raw] if isinstance(raw, dict) else raw
            if not isinstance(group, list) or not group:
                self.refuse(where, "a steps group must be a non-empty list")
                continue
            together = len(group) > 1
            built_group: list[Built] = []
            names: dict[str, CallRef] = {}
            with self.parallel(where) if together else unbounded():
                for index, step in enumerate(group):
                    built = self.call(
                        step,
                        (*where, index),
                        body,
                        loops,
                        prefix,
                        "step",
                        limit=None if together else limit,
                        fail_fast=fail_fast,
                    )
                    if built is not None:
                        built_group.append(built)
                        names[str(step.get("name"))] = built.ref
            body.siblings.update(names)
            if len(built_group) == 1:
                tasks.append(built_group[0].task)
            elif built_group:
                parallel: dict[str, Any] = {
                    "id": self.new_id(f"{prefix or 'steps'}_{number}"),
                    "type": "io.kestra.plugin.core.flow.Parallel",
                    "tasks": [b.task for b in built_group],
                }
                if limit:
                    parallel["concurrent"] = limit
                tasks.append(parallel)
        outputs = self.flowable_outputs(template, path, body, task_id, loops)
        if outputs is not None:
            tasks.append(outputs[0])
        ref = outputs[1] if outputs is not None else CallRef("none", task_id, scope.template, loops)
        sequential = {
            "id": task_id,
            "type": "io.kestra.plugin.core.flow.Sequential",
            "tasks": tasks,
        }
        return Built(finalize(sequential, loops), ref)

    # --- dag -----------------------------------------------------------------------------

    def dag(  # noqa: C901, PLR0912, PLR0915
        self,
        template: dict[str, Any],
        path: Path,
        scope: Scope,
        task_id: str,
        loops: tuple[str, ...],
        *,
        root: bool,
    ) -> Built:
        """A dag template as an ``io.flowplane.argo.Dag``."""
        where = (*path, "dag")
        spec = self.fields(template.get("dag"), where, "dagTemplate")
        tasks = spec.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            self.refuse((*where, "tasks"), "a dag needs a non-empty list of tasks")
            tasks = []
        by_name: dict[str, tuple[int, dict[str, Any]]] = {}
        for index, raw in enumerate(tasks):
            task = self.fields(raw, (*where, "tasks", index), "dagTask")
            name = task.get("name")
            if not isinstance(name, str):
                self.refuse((*where, "tasks", index), "a dag task needs a name")
                continue
            if name in by_name:
                self.refuse((*where, "tasks", index, "name"), f"task name {name!r} is used twice")
                continue
            by_name[name] = (index, task)
        logic: dict[str, Node | None] = {}
        deps: dict[str, list[str]] = {}
        for name, (index, task) in by_name.items():
            at = (*where, "tasks", index)
            if task.get("depends") is not None and task.get("dependencies") is not None:
                self.refuse(at, "give depends or dependencies, not both")
            node: Node | None = None
            if task.get("depends") is not None:
                try:
                    node = parse_depends(str(task["depends"]))
                except DependsError as exc:
                    self.refuse((*at, "depends"), str(exc))
                names = referenced_tasks(node) if node is not None else []
            else:
                names = [str(d) for d in task.get("dependencies") or []]
            for dep in names:
                if dep not in by_name:
                    self.refuse(
                        (*at, "depends" if node else "dependencies"),
                        f"{dep!r} is not a task of this dag",
                    )
            deps[name] = [d for d in names if d in by_name]
            logic[name] = node
        order = _topological(deps)
        if order is None:
            self.refuse((*where, "tasks"), "the dag's dependencies form a cycle")
            order = list(by_name)
        prefix = "" if root else task_id
        body_scope = Scope(**{**scope.__dict__, "siblings": {}, "sibling_kind": "tasks"})
        ids: dict[str, str] = {}
        refs: dict[str, CallRef] = {}
        nodes: list[dict[str, Any]] = []
        continue_on: dict[str, dict[str, bool]] = {}
        depends_out: dict[str, str] = {}
        limit = self.limit(template.get("parallelism"), (*path, "parallelism"))
        with self.parallel(where) if len(by_name) > 1 else unbounded():
            for name in order:
                index, task = by_name[name]
                at = (*where, "tasks", index)
                visible = {a: refs[a] for a in _ancestors(name, deps) if a in refs}
                task_scope = Scope(**{**body_scope.__dict__, "siblings": visible})
                built = self.call(
                    task, at, task_scope, loops, prefix, "task", limit=None, fail_fast=None
                )
                if built is None:
                    continue
                ids[name] = built.task["id"]
                refs[name] = built.ref
                node_entry: dict[str, Any] = {"task": built.task}
                if deps[name]:
                    node_entry["dependsOn"] = [ids[d] for d in deps[name] if d in ids]
                nodes.append(node_entry)
                node = logic[name]
                # A plain "a && b" over the same tasks is what dependsOn says already.
                if node is not None and not _plain_conjunction(node, deps[name]):
                    depends_out[ids[name]] = format_depends(node, lambda n: ids.get(n, n))
                flags = self.fields(task.get("continueOn"), (*at, "continueOn"), "continueOn")
                if flags:
                    continue_on[ids[name]] = {k: bool(v) for k, v in flags.items()}
        dag: dict[str, Any] = {"id": task_id, "type": DAG_TYPE, "tasks": nodes}
        if depends_out:
            dag["depends"] = depends_out
        if continue_on:
            dag["continueOn"] = continue_on
        if spec.get("failFast") is not None:
            dag["failFast"] = bool(spec["failFast"])
        if limit:
            dag["concurrent"] = limit
        if spec.get("target") is not None:
            target = self.text(spec["target"], scope, (*where, "target"))
            if target.is_literal:
                names = target.text.split()
                missing = [n for n in names if n not in ids]
                if missing:
                    self.refuse(
                        (*where, "target"), f"target names unknown tasks: {', '.join(missing)}"
                    )
                dag["target"] = " ".join(ids.get(n, n) for n in names)
            else:
                dag["target"] = target.template()
                if any(ids[n] != n for n in ids):
                    dag["taskNames"] = dict(ids)
        dag = finalize(dag, loops)
        outputs = self.flowable_outputs(
            template,
            path,
            body_scope.__class__(**{**body_scope.__dict__, "siblings": refs}),
            task_id,
            loops,
        )
        if outputs is None:
            return Built(dag, CallRef("none", task_id, scope.template, loops), parallel=True)
        dag["id"] = self.new_id(f"{task_id}_dag")
        sequential = {
            "id": task_id,
            "type": "io.kestra.plugin.core.flow.Sequential",
            "tasks": [dag, outputs[0]],
        }
        return Built(finalize(sequential, loops), outputs[1], parallel=True)

    def flowable_outputs(
        self,
        template: dict[str, Any],
        path: Path,
        scope: Scope,
        task_id: str,
        loops: tuple[str, ...],
    ) -> tuple[dict[str, Any], CallRef] | None:
        """The output parameters of a steps or dag template, as an OutputValues task."""
        outputs = self.fields(template.get("outputs"), (*path, "outputs"), "outputs")
        parameters = outputs.get("parameters") or []
        artifacts = outputs.get("artifacts") or []
        if not parameters and not artifacts:
            return None
        values: dict[str, str] = {}
        packed: dict[str, str] = {}
        for index, raw in enumerate(artifacts):
            at = (*path, "outputs", "artifacts", index)
            artifact = self.fields(raw, at, "artifact")
            name = artifact.get("name")
            source = self.artifact_source(artifact, at, scope) if isinstance(name, str) else None
            if source is None or source.raw or not isinstance(name, str):
                self.refuse(
                    at,
                    "an output artifact of a steps or dag template needs a name and "
                    "from or fromExpression",
                )
                continue
            packed[name] = source.value.template()
        for index, raw in enumerate(parameters):
            at = (*path, "outputs", "parameters", index)
            parameter = self.fields(raw, at, "parameter")
            value_from = self.fields(parameter.get("valueFrom"), (*at, "valueFrom"), "valueFrom")
            name = parameter.get("name")
            if not isinstance(name, str):
                self.refuse(at, "an output parameter needs a name")
                continue
            if "parameter" in value_from:
                values[name] = self.text(
                    value_from["parameter"], scope, (*at, "valueFrom", "parameter")
                ).template()
            elif "expression" in value_from:
                tag = "{{=" + str(value_from["expression"]) + "}}"
                values[name] = self.text(tag, scope, (*at, "valueFrom", "expression")).template()
            else:
                self.refuse(
                    at,
                    "an output parameter of a steps or dag template needs "
                    "valueFrom.parameter or valueFrom.expression",
                )
        task_ref = self.new_id(f"{task_id}_outputs")
        task = finalize(
            {
                "id": task_ref,
                "type": "io.kestra.plugin.core.output.OutputValues",
                "values": {"parameters": values, "artifacts": packed},
            },
            loops,
        )
        ref = CallRef(
            "values", task_ref, scope.template, loops, tuple(values), artifacts=tuple(packed)
        )
        self.register_globals(template, path, ref)
        return task, ref

    def flowable_limits(
        self, template: dict[str, Any], path: Path, built: Built, loops: tuple[str, ...]
    ) -> Built:
        """RetryStrategy and timeouts of a steps or dag template."""
        task = built.task
        if template.get("retryStrategy") is not None:
            strategy = template["retryStrategy"]
            if isinstance(strategy, dict) and strategy.get("expression") is not None:
                self.refuse(
                    (*path, "retryStrategy", "expression"),
                    "retryStrategy.expression is supported on container and script templates only",
                )
            retry = self.retry(strategy, (*path, "retryStrategy"))
            if retry is not None:
                inner_id = self.new_id(f"{task['id']}_try")
                outer_id = task["id"]
                task = {**task, "id": inner_id}
                wrapper: dict[str, Any] = {
                    "id": outer_id,
                    "type": RETRY_TYPE,
                    "limit": retry["maxAttempts"] - 1,
                    "tasks": [task],
                }
                backoff = {
                    k: v
                    for k, v in retry.items()
                    if k in {"interval", "delayFactor", "maxInterval", "maxDuration"}
                }
                if backoff.get("interval", "PT0S") != "PT0S" or len(backoff) > 1:
                    wrapper["backoff"] = backoff
                task = finalize(wrapper, loops)
        for name in ("timeout", "activeDeadlineSeconds"):
            if template.get(name) is not None:
                self.notes.setdefault(
                    (name, "Argo applies it to container and script templates only"), []
                ).append(format_path((*path, name)))
        return Built(task, built.ref, built.parallel)

    # --- call sites ----------------------------------------------------------------------

    def loop(  # noqa: PLR0917 - the parts of one loop, in call order
        self,
        step: dict[str, Any],
        path: Path,
        loop_kind: str,
        scope: Scope,
        loop_id: str,
        item_task: dict[str, Any],
        ref: CallRef,
        loops: tuple[str, ...],
        limit: int | None,
        fail_fast: Any,
    ) -> dict[str, Any]:
        """The Loop task that runs ``item_task`` once per item."""
        outer = Scope(**{**scope.__dict__, "loop": None})
        task: dict[str, Any] = {"id": loop_id, "type": LOOP_TYPE}
        at = (*path, loop_kind)
        raw = step[loop_kind]
        if loop_kind == "withItems":
            if not isinstance(raw, list):
                self.refuse(at, "withItems must be a list")
                raw = []
            task["items"] = [
                self.text(i, outer, (*at, n)).template() if isinstance(i, str) else i
                for n, i in enumerate(raw)
            ]
        elif loop_kind == "withParam":
            task["items"] = self.text(raw, outer, at).template()
        else:
            sequence = self.fields(raw, at, "sequence")
            task["sequence"] = {
                k: self.text(v, outer, (*at, k)).template() if isinstance(v, str) else v
                for k, v in sequence.items()
            }
            if "count" in sequence and "end" in sequence:
                self.refuse(at, "give count or end, not both")
        concurrency = limit or self.parallelism
        if concurrency:
            task["concurrency"] = concurrency
        if fail_fast:
            task["failFast"] = True
        if ref.kind in {"script", "values"}:
            task["collect"] = ref.task_id
        task["tasks"] = [item_task]
        return finalize(task, loops)


def _plain_conjunction(node: Node, deps: list[str]) -> bool:
    """Whether ``node`` is ``a && b && …`` of bare names, each dependency once."""
    names: list[str] = []

    def walk(item: Node) -> bool:
        if isinstance(item, Ref):
            names.append(item.task)
            return item.result is None
        return isinstance(item, Op) and item.op == "&&" and walk(item.left) and walk(item.right)

    return walk(node) and sorted(names) == sorted(deps)


def _topological(deps: dict[str, list[str]]) -> list[str] | None:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> bool:
        if state.get(name) == 1:
            return False
        if state.get(name) == 2:  # noqa: PLR2004
            return True
        state[name] = 1
        for dep in deps.get(name, []):
            if not visit(dep):
                return False
        state[name] = 2
        order.append(name)
        return True

    for name in deps:
        if not visit(name):
            return None
    return order


def _ancestors(name: str, deps: dict[str, list[str]]) -> set[str]:
    found: set[str] = set()
    pending = list(deps.get(name, []))
    while pending:
        current = pending.pop()
        if current not in found:
            found.add(current)
            pending.extend(deps.get(current, []))
    return found
