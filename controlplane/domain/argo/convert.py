"""Argo documents (Workflow, WorkflowTemplate, ClusterWorkflowTemplate, CronWorkflow) to flows.

One document becomes one flow (plus one flow per template that calls
itself). The workflow's ``arguments.parameters`` become the flow's inputs,
its entrypoint's body the flow's tasks (``inline.py``), ``onExit`` the flow's
``finally``, the entrypoint's output parameters the flow's outputs, and a
CronWorkflow's schedules Schedule triggers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from controlplane.domain.argo.base import RUNNERS, TemplateFlow, finalize
from controlplane.domain.argo.documents import ARGO_API_VERSION, ArgoDocument
from controlplane.domain.argo.durations import iso_duration
from controlplane.domain.argo.expr import ExprError, translate_expr
from controlplane.domain.argo.inline import Converter
from controlplane.domain.argo.leaf import HELPERS
from controlplane.domain.argo.scope import FAILED_MARKER, Scope, Workflow
from controlplane.domain.argo.values import Expr, Value, escape_literal, quote
from controlplane.domain.fields import FLOW_ID_PATTERN, NAMESPACE_PATTERN
from controlplane.domain.parse import Path
from controlplane.errors import Problem

KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
DESCRIPTION_ANNOTATION = "workflows.argoproj.io/description"
_CONCURRENCY = {"Allow", "Forbid", "Replace"}
# A run started by hand has no next schedule: "Replace" then bounds it by a year.
_NO_REPLACEMENT_SECONDS = 365 * 24 * 3600


@dataclass
class ConvertedFlow:
    """One flow converted from one Argo document."""

    flow_id: str
    namespace: str
    file: str
    document: int
    kind: str
    name: str
    spec: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass
class _Batch:
    """The documents converted together, so templateRef can find its WorkflowTemplate."""

    namespace: str | None
    runner: str
    catalog: dict[str, TemplateFlow] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def convert_documents(
    documents: list[ArgoDocument], *, namespace: str | None, runner: str
) -> tuple[list[ConvertedFlow], list[Problem]]:
    """Every document's flows, and every problem found (empty when all convert)."""
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {', '.join(RUNNERS)}")
    batch = _Batch(namespace, runner)
    for document in documents:
        _register(document, batch)
    flows: list[ConvertedFlow] = []
    for document in documents:
        flows.extend(_convert(document, batch))
    return flows, batch.problems


def _register(document: ArgoDocument, batch: _Batch) -> None:
    data = document.data
    if not isinstance(data, dict) or data.get("kind") not in {
        "WorkflowTemplate",
        "ClusterWorkflowTemplate",
    }:
        return
    name = (data.get("metadata") or {}).get("name")
    spec = data.get("spec") or {}
    if not isinstance(name, str) or not isinstance(spec, dict):
        return
    entrypoint = str(spec.get("entrypoint", ""))
    outputs: tuple[str, ...] = ()
    for template in spec.get("templates") or []:
        if isinstance(template, dict) and template.get("name") == entrypoint:
            parameters = (template.get("outputs") or {}).get("parameters") or []
            outputs = tuple(str(p.get("name")) for p in parameters if isinstance(p, dict))
    batch.catalog[name] = TemplateFlow(name, entrypoint, outputs)


def _convert(document: ArgoDocument, batch: _Batch) -> list[ConvertedFlow]:  # noqa: C901, PLR0912, PLR0915 - one document, read top to bottom
    data = document.data
    if not isinstance(data, dict):
        batch.problems.append(document.problem((), "an Argo document must be a mapping"))
        return []
    if data.get("apiVersion") != ARGO_API_VERSION:
        batch.problems.append(
            document.problem(("apiVersion",), f"apiVersion must be {ARGO_API_VERSION}")
        )
        return []
    kind = data.get("kind")
    if kind not in KINDS:
        batch.problems.append(
            document.problem(("kind",), f"kind {kind!r} is not one of {', '.join(KINDS)}")
        )
        return []
    metadata = data.get("metadata") or {}
    name = metadata.get("name") or str(metadata.get("generateName") or "").rstrip("-")
    flow_id = str(name)
    namespace = batch.namespace or str(metadata.get("namespace") or "default")
    problems: list[Problem] = []
    if not re.match(FLOW_ID_PATTERN, flow_id) or len(flow_id) > 100:  # noqa: PLR2004
        problems.append(
            document.problem(("metadata", "name"), f"{flow_id!r} is not a valid flow id")
        )
    if not re.match(NAMESPACE_PATTERN, namespace):
        problems.append(
            document.problem(("metadata", "namespace"), f"{namespace!r} is not a valid namespace")
        )
    if problems:
        batch.problems.extend(problems)
        return []
    spec_path: Path = ("spec",)
    spec = data.get("spec")
    cron: dict[str, Any] = {}
    if kind == "CronWorkflow":
        cron = spec if isinstance(spec, dict) else {}
        spec = cron.get("workflowSpec")
        spec_path = ("spec", "workflowSpec")
    if not isinstance(spec, dict):
        batch.problems.append(document.problem(spec_path, "the workflow spec is missing"))
        return []
    renamed = _cron_flow_id(kind, spec, flow_id)
    if renamed != flow_id:
        flow_id = renamed
    workflow = Workflow(
        flow_id,
        str(spec.get("entrypoint", "")),
        labels={str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()},
        service_account=spec.get("serviceAccountName"),
    )
    templates = _templates(spec, spec_path, document, batch)
    converter = Converter(
        document,
        namespace,
        batch.runner,
        workflow,
        templates,
        flow_id,
        catalog=batch.catalog,
    )
    converter.fields(data, (), "document")
    converter.fields(metadata, ("metadata",), "metadata")
    if kind == "CronWorkflow":
        converter.fields(cron, ("spec",), "cronSpec")
    converter.fields(spec, spec_path, "workflowSpec")
    flow = _flow(converter, spec, spec_path, flow_id, namespace, kind, str(name), document)
    if kind == "CronWorkflow":
        _schedule(converter, cron, flow)
        if cron.get("when") is not None:
            _cron_when(converter, cron, flow, namespace)
    flows = [
        ConvertedFlow(flow_id, namespace, document.file, document.index, kind, str(name), flow)
    ]
    done: set[str] = set()
    while set(converter.recursive) - done:
        template = min(set(converter.recursive) - done)
        done.add(template)
        flows.append(_companion(converter, template, namespace, document, kind, str(name)))
    notes = _notes(converter)
    for converted in flows:
        converted.notes = notes
    batch.problems.extend(converter.problems)
    return flows


def _cron_flow_id(kind: str, spec: dict[str, Any], name: str) -> str:
    """A CronWorkflow running the WorkflowTemplate of its own name gets ``<name>-cron``.

    Argo names each kind apart; Flowplane has one flow id per namespace, and the
    schedule's flow must not call itself.
    """
    ref = spec.get("workflowTemplateRef") if kind == "CronWorkflow" else None
    if isinstance(ref, dict) and ref.get("name") == name:
        return f"{name}-cron"
    return name


def _templates(
    spec: dict[str, Any], path: Path, document: ArgoDocument, batch: _Batch
) -> dict[str, tuple[dict[str, Any], Path]]:
    templates: dict[str, tuple[dict[str, Any], Path]] = {}
    for index, template in enumerate(spec.get("templates") or []):
        where = (*path, "templates", index)
        if not isinstance(template, dict) or not isinstance(template.get("name"), str):
            batch.problems.append(document.problem(where, "a template needs a name"))
            continue
        if template["name"] in templates:
            batch.problems.append(
                document.problem(
                    (*where, "name"), f"template {template['name']!r} is defined twice"
                )
            )
            continue
        templates[template["name"]] = (template, where)
    return templates


def _flow(  # noqa: C901, PLR0912, PLR0917 - the parts of one flow
    converter: Converter,
    spec: dict[str, Any],
    path: Path,
    flow_id: str,
    namespace: str,
    kind: str,
    name: str,
    document: ArgoDocument,
) -> dict[str, Any]:
    workflow = converter.workflow
    description = workflow.annotations.get(DESCRIPTION_ANNOTATION, "").strip()
    origin = f"Converted from Argo {kind} {name} ({document.file})."
    flow: dict[str, Any] = {
        "id": flow_id,
        "namespace": namespace,
        "description": f"{description}\n\n{origin}" if description else origin,
    }
    if workflow.labels:
        flow["labels"] = dict(workflow.labels)
    inputs = _inputs(converter, spec, path)
    if inputs:
        flow["inputs"] = inputs
    converter.defaults = dict(spec.get("templateDefaults") or {})
    if converter.defaults:
        converter.fields(converter.defaults, (*path, "templateDefaults"), "template")
        converter.defaults.pop("name", None)
    parallelism = spec.get("parallelism")
    if parallelism is not None:
        if isinstance(parallelism, int) and parallelism > 0:
            converter.parallelism = parallelism
        else:
            converter.refuse((*path, "parallelism"), "parallelism must be a positive integer")
    converter.node_selector = {str(k): str(v) for k, v in (spec.get("nodeSelector") or {}).items()}
    if converter.node_selector and converter.runner == "process":
        converter.notes.setdefault(
            ("nodeSelector", "applies on the Kubernetes runner only"), []
        ).append("spec.nodeSelector")
    if spec.get("workflowTemplateRef") is not None:
        tasks = _template_ref(converter, spec, path, namespace)
    else:
        tasks = _entrypoint(converter, spec, path, flow)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None:
        try:
            timeout = iso_duration(deadline)
        except ValueError as exc:
            converter.refuse((*path, "activeDeadlineSeconds"), str(exc))
            timeout = "PT0S"
        tasks = [
            {
                "id": converter.new_id("workflow"),
                "type": "io.kestra.plugin.core.flow.Sequential",
                "description": "Argo spec.activeDeadlineSeconds: the whole run's time limit",
                "timeout": timeout,
                "tasks": tasks,
            }
        ]
    flow["tasks"] = tasks
    exit_tasks = _exit_handler(converter, spec, path)
    if converter.uses_helpers:
        flow["variables"] = {"argo": HELPERS}
    if exit_tasks:
        flow["finally"] = exit_tasks
    if workflow.uses_status:
        flow["errors"] = [
            {
                "id": FAILED_MARKER,
                "type": "io.kestra.plugin.core.output.OutputValues",
                "description": "Marks the run failed for the exit handler's {{workflow.status}}",
                "values": {"status": "Failed"},
            }
        ]
    return _ordered(flow)


_ORDER = ("id", "namespace", "description", "labels", "inputs", "variables", "tasks")


def _ordered(flow: dict[str, Any]) -> dict[str, Any]:
    """The flow's keys in the order a reader expects (variables before the tasks using them)."""
    first = {key: flow[key] for key in _ORDER if key in flow}
    return {**first, **{key: value for key, value in flow.items() if key not in first}}


def _inputs(converter: Converter, spec: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    arguments = converter.fields(spec.get("arguments"), (*path, "arguments"), "arguments")
    inputs: list[dict[str, Any]] = []
    for index, raw in enumerate(arguments.get("parameters") or []):
        where = (*path, "arguments", "parameters", index)
        parameter = converter.fields(raw, where, "parameter")
        name = parameter.get("name")
        if not isinstance(name, str) or not re.match(r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$", name):
            converter.refuse(where, f"parameter name {name!r} cannot be a flow input id")
            continue
        if parameter.get("valueFrom") is not None:
            converter.refuse((*where, "valueFrom"), "workflow parameters take a value")
        entry: dict[str, Any] = {"id": name, "type": "STRING"}
        value = parameter.get("value", parameter.get("default"))
        if value is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if "{{" in text:
                converter.refuse((*where, "value"), "a workflow parameter's value must be literal")
            entry["defaults"] = text
            entry["required"] = False
        if parameter.get("enum"):
            entry["type"] = "SELECT"
            entry["values"] = [str(v) for v in parameter["enum"]]
        if parameter.get("description"):
            entry["description"] = str(parameter["description"]).strip()
        inputs.append(entry)
        converter.workflow.inputs[name] = name
    return inputs


def _entrypoint(
    converter: Converter, spec: dict[str, Any], path: Path, flow: dict[str, Any]
) -> list[dict[str, Any]]:
    entry = spec.get("entrypoint")
    found = converter.template(entry, (*path, "entrypoint"))
    if found is None:
        return []
    template, where = found
    _entry_inputs(converter, template, where, flow)
    arguments = {name: Value((Expr(f"inputs['{name}']"),)) for name in converter.workflow.inputs}
    built = converter.instantiate(
        template, where, arguments, converter.new_id(str(entry)), (), root=True
    )
    outputs = []
    for parameter in (template.get("outputs") or {}).get("parameters") or []:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            continue
        try:
            value = Value((built.ref.parameter(parameter["name"]),)).template()
        except ValueError:
            continue
        outputs.append({"id": parameter["name"], "type": "STRING", "value": value})
    for global_name, ref in converter.workflow.global_outputs.items():
        if global_name not in {o["id"] for o in outputs} and not ref.loops:
            parameter_name = converter.workflow.global_names[global_name]
            value = Value((ref.parameter(parameter_name),)).template()
            outputs.append({"id": global_name, "type": "STRING", "value": value, "required": False})
    if outputs:
        flow["outputs"] = outputs
    task = built.task
    if task["type"] == "io.kestra.plugin.core.flow.Sequential" and "steps" in template:
        # The entrypoint's steps are the flow's own task list.
        converter.ids.discard(task["id"])
        return list(task["tasks"])
    return [task]


def _entry_inputs(
    converter: Converter, template: dict[str, Any], path: Path, flow: dict[str, Any]
) -> None:
    """Entrypoint parameters no workflow argument names become flow inputs too.

    Argo fills them from ``-p`` at submit time (or the caller's arguments, for a
    WorkflowTemplate called through templateRef); Flowplane from the run's inputs.
    """
    inputs = template.get("inputs") if isinstance(template.get("inputs"), dict) else {}
    for parameter in (inputs or {}).get("parameters") or []:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if not isinstance(name, str) or name in converter.workflow.inputs:
            continue
        if not re.match(r"^[a-zA-Z0-9][.a-zA-Z0-9_-]*$", name):
            converter.refuse(
                (*path, "inputs"), f"parameter name {name!r} cannot be a flow input id"
            )
            continue
        entry: dict[str, Any] = {"id": name, "type": "STRING"}
        default = parameter.get("value", parameter.get("default"))
        if default is not None:
            entry["defaults"] = str(default)
            entry["required"] = False
        flow.setdefault("inputs", []).append(entry)
        converter.workflow.inputs[name] = name


def _template_ref(
    converter: Converter, spec: dict[str, Any], path: Path, namespace: str
) -> list[dict[str, Any]]:
    where = (*path, "workflowTemplateRef")
    ref = converter.fields(spec["workflowTemplateRef"], where, "workflowTemplateRef")
    for field_name in ("templates", "entrypoint"):
        if spec.get(field_name) is not None:
            converter.refuse(
                (*path, field_name),
                f"a workflowTemplateRef workflow defines no {field_name} of its own",
            )
    target = ref.get("name")
    if not isinstance(target, str):
        converter.refuse(where, "workflowTemplateRef needs a name")
        return []
    return [
        {
            "id": converter.new_id(target),
            "type": "io.kestra.plugin.core.flow.Subflow",
            "description": f"Argo workflowTemplateRef: runs WorkflowTemplate {target}",
            "namespace": namespace,
            "flowId": target,
            "inputs": {name: f"{{{{ inputs['{name}'] }}}}" for name in converter.workflow.inputs},
            "wait": True,
            "transmitFailed": True,
        }
    ]


def _exit_handler(converter: Converter, spec: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    on_exit = spec.get("onExit")
    hooks = spec.get("hooks")
    if on_exit is None and hooks is not None:
        if not isinstance(hooks, dict):
            converter.refuse((*path, "hooks"), "hooks must be a mapping")
            return []
        for hook_name in hooks:
            if hook_name != "exit":
                converter.refuse(
                    (*path, "hooks", hook_name),
                    f"hook {hook_name!r} is not supported: only the exit hook is",
                )
        hook = converter.fields(hooks.get("exit"), (*path, "hooks", "exit"), "hook")
        on_exit = hook.get("template")
    elif on_exit is not None and hooks is not None:
        converter.refuse(path, "give onExit or hooks.exit, not both")
    if on_exit is None:
        return []
    found = converter.template(on_exit, (*path, "onExit"))
    if found is None:
        return []
    converter.exit_handler = True
    try:
        built = converter.instantiate(found[0], found[1], {}, converter.new_id(str(on_exit)), ())
    finally:
        converter.exit_handler = False
    return [built.task]


def _schedule(converter: Converter, cron: dict[str, Any], flow: dict[str, Any]) -> None:  # noqa: C901 - one branch per CronWorkflow field
    schedules = cron.get("schedules")
    if cron.get("schedule") is not None:
        if schedules:
            converter.refuse(("spec", "schedule"), "give schedule or schedules, not both")
        schedules = [cron["schedule"]]
    if not isinstance(schedules, list) or not schedules:
        converter.refuse(("spec",), "a CronWorkflow needs schedules")
        return
    triggers = []
    for index, cron_text in enumerate(schedules):
        trigger: dict[str, Any] = {
            "id": "schedule" if len(schedules) == 1 else f"schedule-{index + 1}",
            "type": "io.kestra.plugin.core.trigger.Schedule",
            "cron": str(cron_text),
        }
        if cron.get("timezone"):
            trigger["timezone"] = str(cron["timezone"])
        deadline = cron.get("startingDeadlineSeconds")
        if isinstance(deadline, int) and deadline > 0:
            trigger["lateMaximumDelay"] = iso_duration(deadline)
        if cron.get("suspend") is True:
            trigger["disabled"] = True
        triggers.append(trigger)
    flow["triggers"] = triggers
    policy = cron.get("concurrencyPolicy", "Allow")
    if policy not in _CONCURRENCY:
        converter.refuse(
            ("spec", "concurrencyPolicy"),
            f"concurrencyPolicy must be one of {sorted(_CONCURRENCY)}",
        )
    elif policy == "Forbid":
        flow["concurrency"] = {"limit": 1, "behavior": "CANCEL"}
    elif policy == "Replace":
        if len(schedules) > 1:
            converter.refuse(
                ("spec", "concurrencyPolicy"),
                (
                    "concurrencyPolicy Replace with several schedules is not supported: a run is "
                    "stopped when its own schedule fires next, which another schedule does not see"
                ),
            )
            return
        # The running run is stopped when the next one is due: it times out then.
        seconds = (
            "(trigger.next is defined ? max(1, ((trigger.next | timestamp) - (now() | timestamp)))"
            f" : {_NO_REPLACEMENT_SECONDS})"
        )
        flow["tasks"] = [
            {
                "id": converter.new_id("replaced-by-next-run"),
                "type": "io.kestra.plugin.core.flow.Sequential",
                "description": "Argo concurrencyPolicy Replace: a run stops when the next is due",
                "timeout": "PT{{ " + seconds + " }}S",
                "tasks": flow["tasks"],
            }
        ]


_LAST_RUN = "cron-last-scheduled"


def _cron_when(
    converter: Converter, cron: dict[str, Any], flow: dict[str, Any], namespace: str
) -> None:
    """A CronWorkflow's ``when``: each scheduled run first checks it, and runs nothing if false.

    ``cronworkflow.lastScheduledTime`` (when the last run that passed began)
    is kept in the namespace's key-value store. Argo creates no workflow when
    the condition is false; Flowplane's run starts, checks it and ends SKIPPED.
    """
    where = ("spec", "when")
    key_name = f"argo-cron-{flow['id']}-last-scheduled"
    last_run = converter.new_id(_LAST_RUN)
    value = f"outputs['{last_run}'].value"
    last = f"({value} == null ? null : ({value} | number))"
    names = {
        "lastScheduledTime": last,
        "name": quote(flow["id"]),
        "namespace": "flow.namespace",
    }

    def resolve(path: list[str]) -> str:
        if len(path) == 2 and path[0] == "cronworkflow" and path[1] in names:  # noqa: PLR2004
            return names[path[1]]
        raise ExprError(
            f"unknown variable {'.'.join(path)} (a CronWorkflow when reads "
            "cronworkflow.lastScheduledTime, name and namespace, and now())"
        )

    text = str(cron["when"]).strip()
    match = re.fullmatch(r"\{\{=(.*)\}\}", text, flags=re.DOTALL)
    if match is None:
        converter.refuse(where, "a CronWorkflow when must be one {{= expression}}")
        return
    try:
        code = translate_expr(
            match.group(1).strip(),
            resolve,
            functions={"now": "(now() | timestamp)"},
            identity_methods=frozenset({"Seconds"}),
        )
    except ExprError as exc:
        converter.refuse(where, str(exc))
        return
    record = {
        "id": converter.new_id("cron-record-scheduled"),
        "type": "io.kestra.plugin.core.kv.Set",
        "description": "Keeps cronworkflow.lastScheduledTime for the next run's when",
        "key": key_name,
        "value": "{{ now() | timestamp }}",
    }
    flow["tasks"] = [
        {
            "id": last_run,
            "type": "io.kestra.plugin.core.kv.Get",
            "description": "cronworkflow.lastScheduledTime, for the CronWorkflow's when",
            "key": key_name,
        },
        {
            "id": converter.new_id("cron-when"),
            "type": "io.kestra.plugin.core.flow.If",
            "description": "Argo CronWorkflow when (spec.when of the source)",
            "condition": "{{ " + code + " }}",
            "then": [record, *flow["tasks"]],
        },
    ]
    del namespace


def _companion(  # noqa: C901, PLR0917 - a companion flow is a small whole flow
    converter: Converter,
    template_name: str,
    namespace: str,
    document: ArgoDocument,
    kind: str,
    name: str,
) -> ConvertedFlow:
    """The flow of a template that calls itself: its inputs are the template's parameters."""
    flow_id = converter.recursive[template_name]
    template, where = converter.templates[template_name]
    companion = Converter(
        document,
        namespace,
        converter.runner,
        Workflow(
            flow_id,
            template_name,
            labels=converter.workflow.labels,
            annotations=converter.workflow.annotations,
            service_account=converter.workflow.service_account,
        ),
        converter.templates,
        converter.flow_id,
        catalog=converter.catalog,
        defaults=converter.defaults,
        parallelism=converter.parallelism,
        node_selector=converter.node_selector,
        recursive=converter.recursive,
    )
    inputs = []
    arguments: dict[str, Value] = {}
    for parameter in (template.get("inputs") or {}).get("parameters") or []:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            continue
        entry: dict[str, Any] = {"id": parameter["name"], "type": "STRING"}
        default = parameter.get("value", parameter.get("default"))
        if default is not None:
            entry["defaults"] = str(default)
            entry["required"] = False
        inputs.append(entry)
        arguments[parameter["name"]] = Value((Expr(f"inputs['{parameter['name']}']"),))
    built = companion.instantiate(
        template, where, arguments, companion.new_id(template_name), (), root=True
    )
    flow: dict[str, Any] = {
        "id": flow_id,
        "namespace": namespace,
        "description": (
            f"Argo template {template_name} of {kind} {name} ({document.file}), "
            "which calls itself: it runs as its own flow."
        ),
    }
    if inputs:
        flow["inputs"] = inputs
    task = built.task
    tasks = list(task["tasks"]) if "steps" in template else [task]
    flow["tasks"] = tasks
    if companion.uses_helpers:
        flow["variables"] = {"argo": HELPERS}
    outputs = []
    for parameter in (template.get("outputs") or {}).get("parameters") or []:
        if isinstance(parameter, dict) and isinstance(parameter.get("name"), str):
            try:
                value = Value((built.ref.parameter(parameter["name"]),)).template()
            except ValueError:
                continue
            outputs.append({"id": parameter["name"], "type": "STRING", "value": value})
    if outputs:
        flow["outputs"] = outputs
    converter.problems.extend(p for p in companion.problems if p not in converter.problems)
    for note, paths in companion.notes.items():
        converter.notes.setdefault(note, []).extend(paths)
    return ConvertedFlow(
        flow_id, namespace, document.file, document.index, kind, name, _ordered(flow)
    )


def _notes(converter: Converter) -> list[str]:
    lines = []
    for (field_name, reason), paths in sorted(converter.notes.items()):
        unique = list(dict.fromkeys(paths))
        shown = ", ".join(unique[:3]) + (f" (+{len(unique) - 3} more)" if len(unique) > 3 else "")  # noqa: PLR2004
        lines.append(f"{field_name}: {reason} [{shown}]")
    return lines


__all__ = ["ConvertedFlow", "Scope", "convert_documents", "escape_literal", "finalize"]
