"""Argo variables (``{{inputs.parameters.x}}``, ``{{steps.a.outputs.result}}``) as expressions.

A ``Scope`` is what a template body sees where it is inlined: its bound
input parameters, the steps or tasks before it (``CallRef``), the loop item
at a loop's call site, and the workflow. ``convert_text`` rewrites a string
with ``{{...}}`` and ``{{= ...}}`` tags into a ``Value``; a variable the
scope does not know, or one Flowplane cannot provide, is a ``RefusalError``
naming it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from controlplane.domain.argo.expr import ExprError, translate_expr
from controlplane.domain.argo.values import Expr, Value, loop_value, quote

# The flow-level marker the workflow's exit handler reads ``workflow.status`` from.
FAILED_MARKER = "argo-workflow-failed"


class RefusalError(ValueError):
    """Something the converter cannot express; the message says what and why."""


def key(name: str) -> str:
    """``['name']`` for a map key (Argo names hold dashes)."""
    return f"[{quote(name)}]"


@dataclass(frozen=True)
class CallRef:
    """Where the outputs of one template call live in the flow.

    ``kind`` is ``script`` (a shell task: ``vars.result``, ``vars.parameters``),
    ``loop`` (an Argo loop: aggregated ``result`` and ``parameters``),
    ``values`` (an OutputValues task of a steps or dag template), ``pause``
    (a suspend: ``onResume``), ``subflow`` (``outputs`` of the child run) or
    ``none``. ``loops`` are the loops enclosing the producing task.
    """

    kind: str
    task_id: str
    template: str
    loops: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    has_result: bool = False
    artifacts: tuple[str, ...] = ()

    def base(self) -> str:
        """``outputs['id']`` with one index per enclosing loop."""
        return (
            "outputs" + key(self.task_id) + "".join(f"[{loop_value(loop)}]" for loop in self.loops)
        )

    def result(self) -> Expr:
        """``outputs.result`` of the call."""
        if self.kind == "loop" and self.has_result:
            return Expr(self.base() + "['result']", text=False)
        if self.kind == "script" and self.has_result:
            return Expr(self.base() + "['vars']['result']")
        raise RefusalError(f"template {self.template!r} has no outputs.result")

    def exit_code(self) -> Expr:
        """``exitCode`` of a container or script call."""
        if self.kind != "script":
            raise RefusalError(f"template {self.template!r} has no exitCode")
        return Expr(self.base() + "['exitCode']", text=False)

    def parameter(self, name: str) -> Expr:
        """``outputs.parameters.<name>`` (a JSON list of values for a loop)."""
        if name not in self.parameters:
            raise RefusalError(f"template {self.template!r} has no output parameter {name!r}")
        if self.kind == "loop":
            return Expr(self.base() + "['parameterValues']" + key(name), text=False)
        where = {
            "script": "['vars']['parameters']",
            "values": "['values']['parameters']",
            "pause": "['onResume']",
        }
        if self.kind == "subflow":
            return Expr(self.base() + "['outputs']" + key(name))
        return Expr(self.base() + where[self.kind] + key(name))

    def artifact(self, name: str) -> Expr:
        """``outputs.artifacts.<name>``: the packed artifact (a base64 tar.gz)."""
        if self.kind == "loop":
            raise RefusalError(f"artifacts of the loop over {self.template!r} are not aggregated")
        if name not in self.artifacts or self.kind not in {"script", "values"}:
            raise RefusalError(f"template {self.template!r} has no output artifact {name!r}")
        where = "['vars']['artifacts']" if self.kind == "script" else "['values']['artifacts']"
        return Expr(self.base() + where + key(name))

    def all_parameters(self) -> Expr:
        """``outputs.parameters`` of a loop: a JSON list of each item's parameters."""
        if self.kind != "loop":
            raise RefusalError(f"outputs.parameters of {self.template!r} needs a parameter name")
        return Expr(self.base() + "['parameters']", text=False)


@dataclass
class Workflow:
    """What every scope of one workflow shares."""

    name: str
    entrypoint: str
    inputs: dict[str, str] = field(default_factory=dict)  # parameter -> flow input id
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    service_account: str | None = None
    global_outputs: dict[str, CallRef] = field(default_factory=dict)
    global_names: dict[str, str] = field(default_factory=dict)  # globalName -> parameter
    global_artifacts: dict[str, tuple[CallRef, str]] = field(default_factory=dict)
    uses_status: bool = False


@dataclass
class Scope:
    """What a template body sees where it is inlined."""

    workflow: Workflow
    template: str
    params: dict[str, Value] = field(default_factory=dict)
    siblings: dict[str, CallRef] = field(default_factory=dict)
    sibling_kind: str | None = None  # "steps" or "tasks"
    loop: str | None = None  # the loop whose {{item}} is in scope (a loop's call site)
    output_paths: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Value] = field(default_factory=dict)  # bound input artifacts
    artifact_paths: dict[str, str] = field(default_factory=dict)  # inputs and outputs
    leaf: bool = False  # a container or script template ({{retries}} is known)
    exit_handler: bool = False  # the workflow's onExit handler ({{workflow.status}})

    def at_call(self, loop: str | None) -> Scope:
        """The scope at a step or task that loops over ``loop`` (its item is in scope)."""
        copy = Scope(**self.__dict__)
        copy.loop = loop
        return copy


_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def convert_text(raw: str, scope: Scope) -> Value:
    """``raw`` with every Argo tag rewritten; raises ``RefusalError`` for the first unknown one."""
    parts: list[Any] = []
    position = 0
    for match in _TAG.finditer(raw):
        parts.append(raw[position : match.start()])
        parts.extend(convert_tag(match.group(0), scope).parts)
        position = match.end()
    parts.append(raw[position:])
    return Value.of(parts)


def convert_tag(tag: str, scope: Scope) -> Value:
    """One ``{{...}}`` or ``{{= ...}}`` tag as a value."""
    inner = tag[2:-2].strip()
    if inner.startswith("="):
        source = inner[1:].strip()
        try:
            code = translate_expr(source, lambda path: resolve(path, scope).expression())
        except ExprError as exc:
            raise RefusalError(f"expression {source!r}: {exc}") from None
        return Value((Expr(code, text=False),))
    if not re.fullmatch(r"[A-Za-z0-9_.\-/]+", inner):
        raise RefusalError(f"{tag} is not an Argo variable")
    return resolve(inner.split("."), scope)


def resolve(path: list[str], scope: Scope) -> Value:  # noqa: PLR0911 - one case per root
    """The value of the variable ``path`` (``["inputs", "parameters", "x"]``) in ``scope``."""
    root, rest = path[0], path[1:]
    name = ".".join(path)
    if root == "inputs":
        return _inputs(rest, scope, name)
    if root == "workflow":
        return _workflow(rest, scope, name)
    if root == "item":
        if scope.loop is None:
            raise RefusalError(
                f"{{{{{name}}}}} is used outside withItems, withParam or withSequence"
            )
        # A loop's runs carry "<index>:<item>" (as Argo names them), so equal items stay apart.
        item = f"({loop_value(scope.loop)} | substringAfter(':'))"
        if not rest:
            return Value((Expr(item),))
        field_path = "".join(key(part) for part in rest)
        return Value((Expr(f"fromJson{item}{field_path}", text=False),))
    if root in {"steps", "tasks"} and len(rest) >= 2:  # noqa: PLR2004 - name, then a field
        return _sibling(root, rest, scope, name)
    if root == "retries" and not rest and scope.leaf:
        return Value((Expr("(taskrun.attemptsCount - 1)", text=False),))
    if root == "outputs" and len(rest) == 3 and rest[2] == "path":  # noqa: PLR2004
        paths = scope.output_paths if rest[0] == "parameters" else scope.artifact_paths
        if rest[0] in {"parameters", "artifacts"} and rest[1] in paths:
            return Value.literal(paths[rest[1]])
    raise RefusalError(_unknown(name))


def _unknown(name: str) -> str:
    hints = {
        "lastRetry": "lastRetry.* is only known to retryStrategy.expression, which is refused",
        "node": "node and pod names do not exist in Flowplane",
        "pod": "node and pod names do not exist in Flowplane",
        "cronworkflow": "cronworkflow.* variables are not supported",
    }
    root = name.split(".", 1)[0]
    return f"unknown variable {{{{{name}}}}}" + (f": {hints[root]}" if root in hints else "")


def _inputs(rest: list[str], scope: Scope, name: str) -> Value:
    if rest == ["parameters"]:
        items = ", ".join(
            f"{{'name': {quote(param)}, 'value': {value.expression()}}}"
            for param, value in scope.params.items()
        )
        return Value((Expr(f"([{items}] | toJson)"),))
    if len(rest) == 2 and rest[0] == "parameters":  # noqa: PLR2004
        if rest[1] not in scope.params:
            raise RefusalError(f"template {scope.template!r} has no input parameter {rest[1]!r}")
        return scope.params[rest[1]]
    if len(rest) == 2 and rest[0] == "artifacts":  # noqa: PLR2004
        if rest[1] not in scope.artifacts:
            raise RefusalError(f"template {scope.template!r} has no input artifact {rest[1]!r}")
        return scope.artifacts[rest[1]]
    path_of = len(rest) == 3 and rest[0] == "artifacts" and rest[2] == "path"  # noqa: PLR2004
    if path_of and rest[1] in scope.artifact_paths:
        return Value.literal(scope.artifact_paths[rest[1]])
    raise RefusalError(_unknown(name))


def _workflow(rest: list[str], scope: Scope, name: str) -> Value:  # noqa: C901, PLR0911, PLR0912
    wf = scope.workflow
    if not rest:
        raise RefusalError(_unknown(name))
    head, tail = rest[0], rest[1:]
    if head == "parameters":
        if not tail or tail == ["json"]:
            items = ", ".join(
                f"{{'name': {quote(param)}, 'value': inputs{key(input_id)}}}"
                for param, input_id in wf.inputs.items()
            )
            return Value((Expr(f"([{items}] | toJson)"),))
        parameter = ".".join(tail)
        if parameter not in wf.inputs:
            raise RefusalError(f"the workflow has no parameter {parameter!r} (spec.arguments)")
        return Value((Expr("inputs" + key(wf.inputs[parameter])),))
    if tail:
        if head in {"labels", "annotations"}:
            values = wf.labels if head == "labels" else wf.annotations
            label = ".".join(tail)
            if label == "json":
                return Value.literal(json.dumps(values, separators=(",", ":"), sort_keys=True))
            if label not in values:
                raise RefusalError(f"the workflow has no {head[:-1]} {label!r}")
            return Value.literal(values[label])
        if head == "outputs" and len(tail) == 2 and tail[0] == "artifacts":  # noqa: PLR2004
            if tail[1] not in wf.global_artifacts:
                raise RefusalError(f"no template exports an artifact with globalName {tail[1]!r}")
            ref, artifact = wf.global_artifacts[tail[1]]
            return Value((ref.artifact(artifact),))
        if head == "outputs" and len(tail) == 2 and tail[0] == "parameters":  # noqa: PLR2004
            if tail[1] not in wf.global_outputs:
                raise RefusalError(f"no template exports a parameter with globalName {tail[1]!r}")
            ref = wf.global_outputs[tail[1]]
            return Value((ref.parameter(wf.global_names[tail[1]]),))
        if head == "creationTimestamp" and tail == ["RFC3339"]:
            return Value((Expr("execution.startDate"),))
        if head == "creationTimestamp" and tail == ["s"]:
            return Value((Expr("(execution.startDate | timestamp)", text=False),))
        raise RefusalError(_unknown(name))
    if head in {"name", "uid"}:
        return Value((Expr("execution.id"),))
    if head == "namespace":
        return Value((Expr("flow.namespace"),))
    if head == "mainEntrypoint":
        return Value.literal(wf.entrypoint)
    if head == "serviceAccountName" and wf.service_account:
        return Value.literal(wf.service_account)
    if head == "creationTimestamp":
        return Value((Expr("execution.startDate"),))
    if head == "scheduledTime":
        return Value((Expr("(trigger.date ?? execution.startDate)", text=False),))
    if head == "duration":
        code = "((now() | timestamp) - (execution.startDate | timestamp))"
        return Value((Expr(code, text=False),))
    if head == "status":
        if not scope.exit_handler:
            return Value.literal("Running")
        wf.uses_status = True
        code = f"(outputs{key(FAILED_MARKER)}.values.status ?? 'Succeeded')"
        return Value((Expr(code, text=False),))
    if head == "failures":
        raise RefusalError(
            "{{workflow.failures}} is not supported: Flowplane expressions cannot list "
            "the failed task runs"
        )
    raise RefusalError(_unknown(name))


def _sibling(root: str, rest: list[str], scope: Scope, name: str) -> Value:
    if scope.sibling_kind != root:
        where = "a steps template" if root == "steps" else "a dag template"
        raise RefusalError(f"{{{{{name}}}}} is only known inside {where}")
    step, field_path = rest[0], rest[1:]
    if step not in scope.siblings:
        raise RefusalError(
            f"{{{{{name}}}}}: no earlier {root[:-1]} named {step!r} "
            f"(a {root[:-1]} may only read those that run before it)"
        )
    ref = scope.siblings[step]
    if field_path == ["outputs", "result"]:
        return Value((ref.result(),))
    if field_path == ["exitCode"]:
        return Value((ref.exit_code(),))
    if field_path == ["outputs", "parameters"]:
        return Value((ref.all_parameters(),))
    if len(field_path) == 3 and field_path[:2] == ["outputs", "parameters"]:  # noqa: PLR2004
        return Value((ref.parameter(field_path[2]),))
    if len(field_path) == 3 and field_path[:2] == ["outputs", "artifacts"]:  # noqa: PLR2004
        return Value((ref.artifact(field_path[2]),))
    raise RefusalError(
        _unknown(name)
        + " (Flowplane exposes a step's outputs.result, parameters, artifacts and exitCode)"
    )
