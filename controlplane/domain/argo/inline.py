"""Argo templates inlined into one flow: every call site becomes a task (or a small tree).

A Workflow's templates are functions; Flowplane flows have no functions, so
each call (a step, a dag task, the entrypoint, an exit handler) becomes the
tasks of the called template, with its input parameters substituted and its
task ids prefixed by the call's id (``A_B`` is task ``B`` of the template that
task ``A`` calls). A template that calls itself becomes its own flow, called
through a Subflow task (``convert.py`` writes those flows).

What each Argo construct becomes:

=========================  ====================================================
container, script          ``shell.Commands`` running the exact argv (leaf.py)
steps                      ``Sequential`` of groups; a group of several steps
                           is a ``Parallel``
dag                        ``io.flowplane.argo.Dag`` (depends, continueOn,
                           failFast, target)
suspend                    ``Pause`` (duration; supplied outputs: onResume)
withItems/Param/Sequence   ``io.flowplane.argo.Loop`` (ordered aggregation)
when                       ``runIf``
continueOn (steps)         ``AllowFailure``
onExit, hooks.exit         ``Sequential`` with ``finally``
retryStrategy              ``retry`` (containers), ``io.flowplane.argo.Retry``
                           (steps and dag templates)
timeout, activeDeadline…   ``timeout``
templateRef, recursion     ``Subflow``
=========================  ====================================================
"""

from __future__ import annotations

from typing import Any

from controlplane.domain.argo.base import (
    Artifact,
    Built,
    TemplateFlow,
    finalize,
    unbounded,
)
from controlplane.domain.argo.bodies import BodyBuilder
from controlplane.domain.argo.leaves import LeafBuilder
from controlplane.domain.argo.schema import FIELDS, Refuse
from controlplane.domain.argo.scope import CallRef, Scope
from controlplane.domain.argo.values import Value, place
from controlplane.domain.parse import Path, format_path


class Converter(LeafBuilder, BodyBuilder):
    """Inlines one workflow's templates; collects every problem and note on the way."""

    def instantiate(
        self,
        template: dict[str, Any],
        path: Path,
        arguments: dict[str, Value],
        task_id: str,
        loops: tuple[str, ...],
        *,
        root: bool = False,
        artifacts: dict[str, Artifact] | None = None,
    ) -> Built:
        """The tasks of one call of ``template`` (already resolved), with id ``task_id``."""
        self.fields(template, path, "template")
        name = str(template.get("name", "inline"))
        if name in self.stack:
            if artifacts:
                self.refuse(path, "a template that calls itself cannot take artifacts")
            return self.recursion(name, template, path, arguments, task_id, loops)
        params = self.bind_inputs(template, path, arguments)
        bound, artifact_paths = self.bind_artifacts(template, path, artifacts or {})
        kinds = [k for k in ("container", "script", "steps", "dag", "suspend") if k in template]
        refused = any(isinstance(FIELDS["template"].get(k), Refuse) for k in template)
        if len(kinds) != 1 and refused:
            return Built(
                {"id": task_id, "type": "io.kestra.plugin.core.log.Log", "message": ""},
                CallRef("none", task_id, name),
            )
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            self.refuse(
                path,
                f"a template needs exactly one of container, script, steps, dag "
                f"or suspend (found {found})",
            )
            return Built(
                {"id": task_id, "type": "io.kestra.plugin.core.log.Log", "message": ""},
                CallRef("none", task_id, name),
            )
        kind = kinds[0]
        scope = Scope(
            self.workflow,
            name,
            params=params,
            output_paths=self.output_paths(template, path),
            artifacts={k: a.value for k, a in bound.items()},
            artifact_paths=artifact_paths,
            leaf=kind in {"container", "script"},
            exit_handler=self.exit_handler,
        )
        self.stack.append(name)
        try:
            if kind in {"container", "script"}:
                built = self.leaf(template, path, kind, scope, task_id, loops, bound)
            elif kind == "steps":
                built = self.steps(template, path, scope, task_id, loops, root=root)
            elif kind == "dag":
                built = self.dag(template, path, scope, task_id, loops, root=root)
            else:
                built = self.suspend(template, path, scope, task_id, loops)
        finally:
            self.stack.pop()
        if kind in {"steps", "dag"}:
            built = self.flowable_limits(template, path, built, loops)
        return built

    def bind_inputs(
        self, template: dict[str, Any], path: Path, arguments: dict[str, Value]
    ) -> dict[str, Value]:
        """The template's input parameters: the call's arguments, else their defaults."""
        inputs = self.fields(template.get("inputs"), (*path, "inputs"), "inputs")
        params: dict[str, Value] = {}
        declared = inputs.get("parameters") or []
        own_scope = Scope(
            self.workflow, str(template.get("name", "")), exit_handler=self.exit_handler
        )
        for index, raw in enumerate(declared):
            where = (*path, "inputs", "parameters", index)
            parameter = self.fields(raw, where, "parameter")
            name = parameter.get("name")
            if not isinstance(name, str):
                self.refuse(where, "an input parameter needs a name")
                continue
            if parameter.get("valueFrom") is not None:
                self.refuse((*where, "valueFrom"), "input parameters take a value or default")
            if name in arguments:
                params[name] = arguments[name]
            elif parameter.get("value") is not None:
                params[name] = self.text(parameter["value"], own_scope, (*where, "value"))
            elif parameter.get("default") is not None:
                params[name] = self.text(parameter["default"], own_scope, (*where, "default"))
            elif "suspend" not in template:
                self.refuse(where, f"input parameter {name!r} gets no argument and has no default")
        for extra in set(arguments) - {p.get("name") for p in declared if isinstance(p, dict)}:
            self.notes.setdefault(
                ("arguments", "arguments the called template does not declare are not passed"),
                [],
            ).append(f"{format_path(path)}: {extra}")
        return params

    def bind_artifacts(
        self, template: dict[str, Any], path: Path, given: dict[str, Artifact]
    ) -> tuple[dict[str, Artifact], dict[str, str]]:
        """The template's input artifacts (the call's, else their own ``from`` or ``raw``).

        Also returns the paths of its input and output artifacts, by name.
        """
        bound: dict[str, Artifact] = {}
        paths: dict[str, str] = {}
        own_scope = Scope(
            self.workflow, str(template.get("name", "")), exit_handler=self.exit_handler
        )
        inputs = template["inputs"] if isinstance(template.get("inputs"), dict) else {}
        for index, raw in enumerate(inputs.get("artifacts") or []):
            where = (*path, "inputs", "artifacts", index)
            artifact = self.fields(raw, where, "artifact")
            name = artifact.get("name")
            if not isinstance(name, str):
                self.refuse(where, "an input artifact needs a name")
                continue
            if isinstance(artifact.get("path"), str):
                paths[name] = artifact["path"]
            found = given.get(name) or self.artifact_source(artifact, where, own_scope)
            external = any(isinstance(FIELDS["artifact"].get(k), Refuse) for k in artifact)
            if found is None and not artifact.get("optional") and not external:
                self.refuse(
                    where, f"input artifact {name!r} gets no argument and has no from or raw"
                )
            bound[name] = found or Artifact(Value(), raw=False, optional=True)
            if artifact.get("optional"):
                bound[name] = Artifact(bound[name].value, bound[name].raw, optional=True)
        for extra in set(given) - set(bound):
            self.refuse(
                path, f"template {template.get('name')!r} declares no input artifact {extra!r}"
            )
        outputs = template["outputs"] if isinstance(template.get("outputs"), dict) else {}
        for raw in outputs.get("artifacts") or []:
            if (
                isinstance(raw, dict)
                and isinstance(raw.get("name"), str)
                and isinstance(raw.get("path"), str)
            ):
                paths.setdefault(raw["name"], raw["path"])
        return bound, paths

    def output_paths(self, template: dict[str, Any], path: Path) -> dict[str, str]:
        """``outputs.parameters.<n>.path`` of a leaf template, by parameter name."""
        outputs = template.get("outputs") or {}
        paths: dict[str, str] = {}
        for parameter in outputs.get("parameters") or [] if isinstance(outputs, dict) else []:
            if isinstance(parameter, dict) and isinstance(parameter.get("valueFrom"), dict):
                value_path = parameter["valueFrom"].get("path")
                if isinstance(value_path, str) and isinstance(parameter.get("name"), str):
                    paths[parameter["name"]] = value_path
        del path
        return paths

    # --- leaves --------------------------------------------------------------------------

    def call(  # noqa: C901, PLR0917 - a call site has these parts, in this order
        self,
        step: Any,
        path: Path,
        scope: Scope,
        loops: tuple[str, ...],
        prefix: str,
        kind: str,
        *,
        limit: int | None,
        fail_fast: Any,
    ) -> Built | None:
        """One step or dag task: its template call, wrapped for loops, hooks, when, continueOn."""
        step = self.fields(step, path, "step" if kind == "step" else "dagTask")
        name = step.get("name")
        if not isinstance(name, str) or not name:
            self.refuse(path, f"a {kind} needs a name")
            return None
        loop_kinds = [
            k for k in ("withItems", "withParam", "withSequence") if step.get(k) is not None
        ]
        if len(loop_kinds) > 1:
            self.refuse(path, "give one of withItems, withParam, withSequence")
        continue_on = self.fields(step.get("continueOn"), (*path, "continueOn"), "continueOn")
        exit_hook = self.exit_hook(step, path)
        # The layers, outermost first; the outermost takes the step's own name as id.
        chain = [
            layer
            for layer, wanted in (
                # Flowplane cannot tell an Argo Error from a Failure, and a FAILED
                # task stands for Failed: only continueOn.failed tolerates it.
                ("allow", kind == "step" and bool(continue_on.get("failed"))),
                ("loop", bool(loop_kinds)),
                ("exit", exit_hook is not None),
            )
            if wanted
        ] + ["body"]
        outer_id = self.new_id(f"{prefix}_{name}" if prefix else name)
        suffixes = {"loop": "loop", "exit": "hooked", "body": "item" if "loop" in chain else "run"}
        ids = {chain[0]: outer_id}
        for layer in chain[1:]:
            ids[layer] = self.new_id(f"{outer_id}_{suffixes[layer]}")
        loop_id = ids.get("loop")
        inner_loops = (*loops, loop_id) if loop_id else loops
        call_scope = scope.at_call(loop_id)
        arguments = self.arguments(step.get("arguments"), (*path, "arguments"), call_scope)
        artifacts = self.artifact_arguments(step.get("arguments"), (*path, "arguments"), call_scope)
        when = self.condition(step.get("when"), call_scope, (*path, "when"))
        target = self.call_target(step, path)
        if target is None:
            return None
        with self.parallel(path) if loop_id else unbounded():
            if isinstance(target, TemplateFlow):
                if artifacts:
                    self.refuse(
                        (*path, "arguments", "artifacts"),
                        "a templateRef call passes parameters only",
                    )
                built = self.subflow_call(target, arguments, ids["body"], inner_loops)
            else:
                built = self.instantiate(
                    target[0], target[1], arguments, ids["body"], inner_loops, artifacts=artifacts
                )
            task, ref = built.task, built.ref
            if exit_hook is not None:
                hook_template, hook_path, hook_arguments = exit_hook
                hook_values = {
                    k: self.text(v, call_scope, (*path, "hooks", "exit", "arguments"))
                    for k, v in hook_arguments.items()
                }
                hook = self.instantiate(
                    hook_template,
                    hook_path,
                    hook_values,
                    self.new_id(f"{outer_id}_exit"),
                    inner_loops,
                )
                task = finalize(
                    {
                        "id": ids["exit"],
                        "type": "io.kestra.plugin.core.flow.Sequential",
                        "tasks": [task],
                        "finally": [hook.task],
                    },
                    inner_loops,
                )
        if when is not None:
            task = {**task, "runIf": place(when, inner_loops)}
        if loop_id is not None:
            task = self.loop(
                step, path, loop_kinds[0], call_scope, loop_id, task, ref, loops, limit, fail_fast
            )
            ref = CallRef(
                "loop",
                loop_id,
                ref.template,
                loops,
                ref.parameters,
                has_result=ref.kind == "script",
            )
        if "allow" in ids:
            task = finalize(
                {
                    "id": ids["allow"],
                    "type": "io.kestra.plugin.core.flow.AllowFailure",
                    "description": "Argo continueOn: a failure here ends in WARNING",
                    "tasks": [task],
                },
                loops,
            )
        return Built(task, ref, parallel=loop_id is not None)

    def arguments(self, raw: Any, path: Path, scope: Scope) -> dict[str, Value]:
        """A call's argument parameters, rewritten in the caller's scope."""
        arguments = self.fields(raw, path, "arguments")
        values: dict[str, Value] = {}
        for index, item in enumerate(arguments.get("parameters") or []):
            where = (*path, "parameters", index)
            parameter = self.fields(item, where, "parameter")
            name = parameter.get("name")
            if not isinstance(name, str):
                self.refuse(where, "an argument needs a name")
                continue
            if parameter.get("valueFrom") is not None:
                self.refuse((*where, "valueFrom"), "arguments take a value")
                continue
            values[name] = self.text(parameter.get("value", ""), scope, (*where, "value"))
        return values

    def artifact_arguments(self, raw: Any, path: Path, scope: Scope) -> dict[str, Artifact]:
        """A call's argument artifacts (``from``, ``fromExpression`` or ``raw``)."""
        arguments = raw if isinstance(raw, dict) else {}
        found: dict[str, Artifact] = {}
        for index, item in enumerate(arguments.get("artifacts") or []):
            where = (*path, "artifacts", index)
            artifact = self.fields(item, where, "artifact")
            name = artifact.get("name")
            source = self.artifact_source(artifact, where, scope)
            external = any(isinstance(FIELDS["artifact"].get(k), Refuse) for k in artifact)
            if not isinstance(name, str) or source is None:
                if not external:
                    self.refuse(
                        where, "an artifact argument needs a name and from, fromExpression or raw"
                    )
                continue
            found[name] = source
        return found

    def call_target(  # noqa: PLR0911 - one return per way to name a template
        self, step: dict[str, Any], path: Path
    ) -> tuple[dict[str, Any], Path] | TemplateFlow | None:
        """The template a step calls: by name, inline, or in another WorkflowTemplate."""
        given = [k for k in ("template", "templateRef", "inline") if step.get(k) is not None]
        if len(given) != 1:
            self.refuse(path, "a step or task needs exactly one of template, templateRef, inline")
            return None
        if given[0] == "template":
            return self.template(step["template"], (*path, "template"))
        if given[0] == "inline":
            inline = step["inline"]
            if not isinstance(inline, dict):
                self.refuse((*path, "inline"), "inline must be a template")
                return None
            return self.with_defaults({"name": f"{step.get('name')}-inline", **inline}), (
                *path,
                "inline",
            )
        ref = self.fields(step["templateRef"], (*path, "templateRef"), "templateRef")
        target = self.catalog.get(str(ref.get("name")))
        if target is None:
            self.refuse(
                (*path, "templateRef"),
                (
                    f"templateRef names WorkflowTemplate {ref.get('name')!r}, which is not among "
                    "the converted files; convert its file in the same run (or keep both in the "
                    "flows repository)"
                ),
            )
            return None
        if ref.get("template") != target.entrypoint:
            self.refuse(
                (*path, "templateRef", "template"),
                (
                    f"templateRef may only call the entrypoint ({target.entrypoint!r}) of "
                    f"WorkflowTemplate {ref.get('name')!r}: it is converted to one flow"
                ),
            )
            return None
        return target

    def subflow_call(
        self,
        target: TemplateFlow,
        arguments: dict[str, Value],
        task_id: str,
        loops: tuple[str, ...],
    ) -> Built:
        """A call of another WorkflowTemplate's entrypoint, as a Subflow."""
        task = {
            "id": task_id,
            "type": "io.kestra.plugin.core.flow.Subflow",
            "namespace": self.namespace,
            "flowId": target.flow_id,
            "inputs": {k: v.template() for k, v in arguments.items()},
            "wait": True,
            "transmitFailed": True,
        }
        return Built(
            finalize(task, loops),
            CallRef("subflow", task_id, target.flow_id, loops, target.outputs),
        )

    def recursion(  # noqa: PLR0917 - the parts of one call
        self,
        name: str,
        template: dict[str, Any],
        path: Path,
        arguments: dict[str, Value],
        task_id: str,
        loops: tuple[str, ...],
    ) -> Built:
        """A template that calls itself: a Subflow to the flow it becomes on its own."""
        flow_id = self.recursive.setdefault(name, f"{self.flow_id}-{name}")
        outputs = tuple(
            str(p.get("name"))
            for p in (template.get("outputs") or {}).get("parameters") or []
            if isinstance(p, dict)
        )
        del path
        task = {
            "id": task_id,
            "type": "io.kestra.plugin.core.flow.Subflow",
            "description": f"Argo template {name} calls itself: it runs as flow {flow_id}",
            "namespace": self.namespace,
            "flowId": flow_id,
            "inputs": {k: v.template() for k, v in arguments.items()},
            "wait": True,
            "transmitFailed": True,
        }
        return Built(finalize(task, loops), CallRef("subflow", task_id, name, loops, outputs))

    def exit_hook(  # noqa: C901 - onExit and hooks.exit, each checked
        self, step: dict[str, Any], path: Path
    ) -> tuple[dict[str, Any], Path, dict[str, Any]] | None:
        """The template (and arguments) of a step's ``onExit`` or ``hooks.exit``."""
        hooks = step.get("hooks")
        on_exit = step.get("onExit")
        if hooks is not None and on_exit is not None:
            self.refuse(path, "give onExit or hooks.exit, not both")
        if on_exit is not None:
            found = self.template(on_exit, (*path, "onExit"))
            return None if found is None else (*found, {})
        if hooks is None:
            return None
        if not isinstance(hooks, dict):
            self.refuse((*path, "hooks"), "hooks must be a mapping")
            return None
        for hook_name in hooks:
            if hook_name != "exit":
                self.refuse(
                    (*path, "hooks", hook_name),
                    (
                        f"hook {hook_name!r} is not supported: only the exit hook is, "
                        "which runs when the step ends"
                    ),
                )
        if "exit" not in hooks:
            return None
        hook = self.fields(hooks["exit"], (*path, "hooks", "exit"), "hook")
        if hook.get("template") is None:
            self.refuse((*path, "hooks", "exit"), "the exit hook needs a template")
            return None
        found = self.template(hook["template"], (*path, "hooks", "exit", "template"))
        arguments = {}
        hook_args = self.fields(
            hook.get("arguments"), (*path, "hooks", "exit", "arguments"), "arguments"
        )
        for item in hook_args.get("parameters") or []:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                arguments[item["name"]] = item.get("value", "")
        return None if found is None else (*found, arguments)


__all__ = ["Artifact", "Built", "Converter", "TemplateFlow", "finalize"]
