"""The converter's state and the helpers every part of it uses (``inline.py`` puts it together)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from controlplane.domain.argo.documents import ArgoDocument
from controlplane.domain.argo.durations import iso_duration
from controlplane.domain.argo.schema import FIELDS, Note, Refuse
from controlplane.domain.argo.scope import CallRef, RefusalError, Scope, Workflow, convert_text
from controlplane.domain.argo.values import Value, place
from controlplane.domain.argo.when import WhenError, translate_when
from controlplane.domain.parse import Path, format_path
from controlplane.errors import Problem

DAG_TYPE = "io.flowplane.argo.Dag"
LOOP_TYPE = "io.flowplane.argo.Loop"
RETRY_TYPE = "io.flowplane.argo.Retry"
SHELL_TYPE = "io.kestra.plugin.scripts.shell.Commands"
KUBERNETES_RUNNER = "io.kestra.plugin.ee.kubernetes.runner.Kubernetes"
DOCKER_RUNNER = "io.kestra.plugin.scripts.runner.docker.Docker"
# Where converted containers run: on the worker, in a pod, or in a Docker container.
RUNNERS = ("process", "kubernetes", "docker")
DOCKER_PULL = {"Always": "ALWAYS", "IfNotPresent": "IF_NOT_PRESENT", "Never": "NEVER"}
_CHILD_KEYS = {"tasks", "then", "else", "finally", "errors"}
_MAX_ID = 100


@dataclass(frozen=True)
class Built:
    """One call site as flow tasks: the outermost task and where its outputs are."""

    task: dict[str, Any]
    ref: CallRef
    parallel: bool = False


@dataclass(frozen=True)
class Artifact:
    """An artifact handed to a template: packed (base64 tar.gz) or ``raw`` text."""

    value: Value
    raw: bool
    optional: bool = False


@dataclass(frozen=True)
class TemplateFlow:
    """A WorkflowTemplate of the same batch, as a Subflow target."""

    flow_id: str
    entrypoint: str
    outputs: tuple[str, ...]


@dataclass
class ConverterBase:
    """Inlines one workflow's templates; collects every problem and note on the way."""

    document: ArgoDocument
    namespace: str
    runner: str
    workflow: Workflow
    templates: dict[str, tuple[dict[str, Any], Path]]
    flow_id: str
    catalog: dict[str, TemplateFlow] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    defaults_path: Path = ()
    parallelism: int | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    recursive: dict[str, str] = field(default_factory=dict)  # template -> companion flow id
    ids: set[str] = field(default_factory=set)
    stack: list[str] = field(default_factory=list)
    exit_handler: bool = False
    parallel_depth: int = 0
    uses_helpers: bool = False

    # --- problems and fields ---------------------------------------------------------

    def refuse(self, path: Path, message: str) -> None:
        """Record a construct that cannot be converted (the conversion fails)."""
        problem = self.document.problem(path, message)
        if problem not in self.problems:
            self.problems.append(problem)

    def fields(self, value: Any, path: Path, kind: str) -> dict[str, Any]:
        """``value`` as a mapping of ``kind``; unknown and refused fields become problems."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.refuse(path, f"must be a mapping, not {type(value).__name__}")
            return {}
        rules = FIELDS[kind]
        for name in value:
            if name not in rules:
                self.refuse((*path, name), f"unknown field {name!r} of {kind}")
                continue
            rule = rules[name]
            if isinstance(rule, Refuse):
                self.refuse((*path, name), rule.message)
            elif isinstance(rule, Note):
                self.notes.setdefault((name, rule.reason), []).append(format_path((*path, name)))
        return value

    def new_id(self, wanted: str) -> str:
        """A task id not used yet in this flow, as close to ``wanted`` as ids allow."""
        base = re.sub(r"[^a-zA-Z0-9_-]", "-", wanted).lstrip("-_") or "task"
        base = base[:_MAX_ID]
        candidate, number = base, 2
        while candidate in self.ids:
            suffix = f"-{number}"
            candidate = base[: _MAX_ID - len(suffix)] + suffix
            number += 1
        self.ids.add(candidate)
        return candidate

    def text(self, raw: Any, scope: Scope, path: Path) -> Value:
        """An Argo string with its tags rewritten (a refusal records a problem)."""
        if raw is None:
            return Value()
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        if not isinstance(raw, str | int | float):
            self.refuse(path, f"must be a string, not {type(raw).__name__}")
            return Value()
        try:
            return convert_text(str(raw), scope)
        except RefusalError as exc:
            self.refuse(path, str(exc))
            return Value.literal(str(raw))

    def condition(self, raw: Any, scope: Scope, path: Path) -> str | None:
        """A ``when`` as a ``runIf`` template."""
        if raw is None or raw == "":
            return None
        try:
            code = translate_when(str(raw), lambda tag: convert_text(tag, scope))
        except (WhenError, RefusalError) as exc:
            self.refuse(path, str(exc))
            return None
        return "{{ " + code + " }}"

    @contextmanager
    def parallel(self, path: Path) -> Iterator[None]:
        """Inside a construct whose children run at once (for spec.parallelism)."""
        if self.parallelism is not None and self.parallel_depth >= 1:
            self.refuse(
                path,
                "spec.parallelism bounds the whole run, but this runs in parallel inside "
                "another parallel group; Flowplane limits each group, not the run",
            )
        self.parallel_depth += 1
        try:
            yield
        finally:
            self.parallel_depth -= 1

    def limit(self, own: Any, path: Path) -> int | None:
        """A group's concurrency: the template's parallelism, else the workflow's."""
        if own is None:
            return self.parallelism
        if isinstance(own, int) and own > 0:
            return own if self.parallelism is None else min(own, self.parallelism)
        self.refuse(path, "parallelism must be a positive integer")
        return None

    # --- templates ---------------------------------------------------------------------

    def template(self, name: Any, path: Path) -> tuple[dict[str, Any], Path] | None:
        """The template named ``name``, with templateDefaults applied."""
        if not isinstance(name, str) or name not in self.templates:
            self.refuse(path, f"no template named {name!r} in spec.templates")
            return None
        template, where = self.templates[name]
        return self.with_defaults(template), where

    def with_defaults(self, template: dict[str, Any]) -> dict[str, Any]:
        """``template`` with spec.templateDefaults merged under its own fields."""
        if not self.defaults:
            return template
        merged = dict(self.defaults)
        for name, value in template.items():
            if isinstance(value, dict) and isinstance(merged.get(name), dict):
                merged[name] = {**merged[name], **value}
            else:
                merged[name] = value
        return merged

    def register_globals(self, template: dict[str, Any], path: Path, ref: CallRef) -> None:
        """Output parameters exported as ``workflow.outputs.parameters.<globalName>``."""
        outputs = template.get("outputs") or {}
        for index, parameter in enumerate(
            outputs.get("parameters") or [] if isinstance(outputs, dict) else []
        ):
            if isinstance(parameter, dict) and isinstance(parameter.get("globalName"), str):
                if ref.loops:
                    self.refuse(
                        (*path, "outputs", "parameters", index, "globalName"),
                        "globalName inside a loop is not supported",
                    )
                    continue
                self.workflow.global_outputs[parameter["globalName"]] = ref
                self.workflow.global_names[parameter["globalName"]] = str(parameter.get("name"))
        for index, artifact in enumerate(
            outputs.get("artifacts") or [] if isinstance(outputs, dict) else []
        ):
            if isinstance(artifact, dict) and isinstance(artifact.get("globalName"), str):
                if ref.loops:
                    self.refuse(
                        (*path, "outputs", "artifacts", index, "globalName"),
                        "globalName inside a loop is not supported",
                    )
                    continue
                self.workflow.global_artifacts[artifact["globalName"]] = (
                    ref,
                    str(artifact.get("name")),
                )

    def artifact_source(
        self, artifact: dict[str, Any], path: Path, scope: Scope
    ) -> Artifact | None:
        """Where an artifact's content comes from: ``from``, ``fromExpression`` or ``raw``."""
        if artifact.get("from") is not None:
            return Artifact(self.text(artifact["from"], scope, (*path, "from")), raw=False)
        if artifact.get("fromExpression") is not None:
            tag = "{{=" + str(artifact["fromExpression"]) + "}}"
            return Artifact(self.text(tag, scope, (*path, "fromExpression")), raw=False)
        if artifact.get("raw") is not None:
            data = artifact["raw"].get("data") if isinstance(artifact["raw"], dict) else None
            if not isinstance(data, str):
                self.refuse((*path, "raw"), "a raw artifact needs data")
                return None
            return Artifact(self.text(data, scope, (*path, "raw", "data")), raw=True)
        return None

    def retry(self, raw: Any, path: Path) -> dict[str, Any] | None:
        """A retryStrategy as a Flowplane ``retry``."""
        if raw is None:
            return None
        strategy = self.fields(raw, path, "retryStrategy")
        policy = strategy.get("retryPolicy", "OnFailure")
        if policy not in {"Always", "OnFailure"}:
            self.refuse(
                (*path, "retryPolicy"),
                (
                    f"retryPolicy {policy} is not supported: Flowplane cannot tell an Argo Error "
                    "(the pod could not run) from a Failure (the command failed); use OnFailure "
                    "or Always, which retry both"
                ),
            )
        limit = strategy.get("limit")
        try:
            retries = int(str(limit)) if limit is not None else None
        except ValueError:
            self.refuse(
                (*path, "limit"), "limit must be a number (templated limits are not supported)"
            )
            return None
        retry: dict[str, Any] = {"type": "constant", "interval": "PT0S"}
        backoff = self.fields(strategy.get("backoff"), (*path, "backoff"), "backoff")
        try:
            if backoff.get("duration") is not None:
                retry["interval"] = iso_duration(backoff["duration"])
            factor = float(backoff.get("factor", 1) or 1)
            if factor > 1:
                cap = backoff.get("cap") or backoff.get("maxDuration")
                retry = {
                    "type": "exponential",
                    "interval": retry["interval"] if retry["interval"] != "PT0S" else "PT1S",
                    "delayFactor": factor,
                    "maxInterval": iso_duration(cap) if cap is not None else "PT1H",
                }
            elif backoff.get("cap") is not None:
                self.notes.setdefault(
                    ("cap", "a cap matters only with a factor above 1"), []
                ).append(format_path((*path, "backoff", "cap")))
            if backoff.get("maxDuration") is not None:
                retry["maxDuration"] = iso_duration(backoff["maxDuration"])
        except ValueError as exc:
            self.refuse((*path, "backoff"), str(exc))
        # Argo's limit counts retries; Flowplane's maxAttempts counts the first try too.
        retry["maxAttempts"] = (retries if retries is not None else 1_000_000) + 1
        return retry

    def timeout(self, template: dict[str, Any], path: Path, scope: Scope) -> str | None:
        """``timeout`` and ``activeDeadlineSeconds`` as one task timeout (the shorter)."""
        candidates: list[str] = []
        for name in ("timeout", "activeDeadlineSeconds"):
            raw = template.get(name)
            if raw is None:
                continue
            value = self.text(raw, scope, (*path, name))
            if value.is_literal:
                try:
                    candidates.append(iso_duration(value.text))
                except ValueError as exc:
                    self.refuse((*path, name), str(exc))
            elif name == "activeDeadlineSeconds":
                candidates.append("PT{{ " + value.expression() + " }}S")
            else:
                candidates.append("{{ 'PT' ~ (" + value.expression() + " | upper) }}")
        if not candidates:
            return None
        if len(candidates) > 1:
            from controlplane.domain.durations import parse_duration  # noqa: PLC0415

            try:
                return min(candidates, key=lambda c: parse_duration(c).total_seconds())
            except ValueError:
                self.refuse(path, "give timeout or activeDeadlineSeconds, not both, when templated")
        return candidates[0]

    # --- suspend -------------------------------------------------------------------------

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
        """The tasks of one call of ``template`` (``inline.Converter`` implements it)."""
        raise NotImplementedError

    def call(  # noqa: PLR0917 - a call site has these parts, in this order
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
        """One step or dag task (``inline.Converter`` implements it)."""
        raise NotImplementedError


def finalize(task: dict[str, Any], loops: tuple[str, ...]) -> dict[str, Any]:
    """``task`` with the loop placeholders of its own fields written for ``loops``."""
    return {
        key: value if key in _CHILD_KEYS else place(value, loops) for key, value in task.items()
    }


@contextmanager
def unbounded() -> Iterator[None]:
    """No parallel group (the other branch of ``ConverterBase.parallel``)."""
    yield
