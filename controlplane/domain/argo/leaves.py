"""Container, script and suspend templates as flow tasks (a part of ``inline.Converter``)."""

from __future__ import annotations

import re
from typing import Any

from controlplane.domain.argo import leaf as shell
from controlplane.domain.argo.base import (
    DOCKER_PULL,
    DOCKER_RUNNER,
    KUBERNETES_RUNNER,
    RETRY_TYPE,
    SHELL_TYPE,
    Artifact,
    Built,
    ConverterBase,
    finalize,
)
from controlplane.domain.argo.durations import iso_duration
from controlplane.domain.argo.expr import TAG_MARK, ExprError, translate_expr
from controlplane.domain.argo.scope import CallRef, Scope
from controlplane.domain.argo.values import Value
from controlplane.domain.parse import Path, format_path


class LeafBuilder(ConverterBase):
    """Builds the tasks of leaf templates: shell tasks, their retries, and pauses."""

    def leaf(  # noqa: C901, PLR0912, PLR0915, PLR0917 - the container's fields, one by one
        self,
        template: dict[str, Any],
        path: Path,
        kind: str,
        scope: Scope,
        task_id: str,
        loops: tuple[str, ...],
        artifacts: dict[str, Artifact],
    ) -> Built:
        """A container or script template as a shell task."""
        where = (*path, kind)
        container = self.fields(
            template.get(kind), where, "container" if kind == "container" else "script"
        )
        name = scope.template
        env: dict[str, str] = {}
        task: dict[str, Any] = {"id": task_id, "type": SHELL_TYPE}
        raw_image = container.get("image")
        image = self.text(raw_image, scope, (*where, "image")) if raw_image else Value()
        image_text = image.text if image.is_literal else "set by a parameter"
        task["description"] = f"Argo template {name} ({kind}, image {image_text or 'none'})"
        wrapper = shell.Wrapper(argv=[], template=name)
        if self.runner == "process":
            if raw_image is None:
                wrapper.image_check = "static:" + f"template {name} names no image"
            elif image.is_literal and not shell.is_plain_image(image.text):
                wrapper.image_check = "static:" + shell.not_plain_message(image.text)
            elif not image.is_literal:
                wrapper.image_check = "dynamic"
                env["ARGO_IMAGE"] = image.template()
        else:
            if raw_image is None:
                self.refuse(where, f"the {self.runner} runner needs an image")
            task["containerImage"] = image.template()
            if self.runner == "kubernetes":
                task["taskRunner"] = self.kubernetes_runner(template, container, path, scope)
            else:
                task["taskRunner"] = self.docker_runner(template, container, path)
        command = container.get("command") or []
        args = container.get("args") or []
        if not isinstance(command, list) or not isinstance(args, list):
            self.refuse(where, "command and args must be lists")
            command, args = [], []
        words: list[Value] = [
            self.text(part, scope, (*where, "command", i)) for i, part in enumerate(command)
        ]
        if kind == "script":
            if args:
                self.refuse((*where, "args"), "script templates take no args (the script is run)")
            source = container.get("source")
            if not isinstance(source, str):
                self.refuse((*where, "source"), "a script template needs a source")
                source = ""
            if not command:
                self.refuse(
                    (*where, "command"), "a script template needs a command (its interpreter)"
                )
            script = self.text(source, scope, (*where, "source"))
            task["inputFiles"] = {"argo-script": script.template()}
            words.append(Value.literal("argo-script"))
        else:
            words += [self.text(part, scope, (*where, "args", i)) for i, part in enumerate(args)]
            wrapper.no_command = not command
        for index, value in enumerate(words):
            if value.is_literal:
                wrapper.argv.append(shell.word(value.text))
            else:
                variable = f"ARGO_ARG_{index}"
                env[variable] = value.template()
                wrapper.argv.append(f'"${variable}"')
        for index, raw in enumerate(container.get("env") or []):
            item = self.fields(raw, (*where, "env", index), "env")
            if not isinstance(item.get("name"), str):
                continue
            if item["name"].startswith("ARGO_"):
                self.refuse((*where, "env", index), "variables named ARGO_* are reserved")
            env[item["name"]] = self.text(
                item.get("value", ""), scope, (*where, "env", index)
            ).template()
        if container.get("workingDir") is not None:
            wrapper.working_dir = self.text(
                container["workingDir"], scope, (*where, "workingDir")
            ).text
        if self.runner != "kubernetes":
            ignored = (
                ("resources", "imagePullPolicy") if self.runner == "process" else ("resources",)
            )
            for field_name in ignored:
                if field_name in container:
                    self.notes.setdefault(
                        (field_name, "applies on the Kubernetes runner only"), []
                    ).append(format_path((*where, field_name)))
        for index, (name, artifact) in enumerate(artifacts.items()):
            file = scope.artifact_paths.get(name)
            if file is None:
                self.refuse((*path, "inputs", "artifacts"), f"input artifact {name!r} needs a path")
                continue
            variable = f"ARGO_ART_{index}"
            env[variable] = artifact.value.template()
            wrapper.input_artifacts.append((name, file, variable, artifact.raw, artifact.optional))
        ref_parameters = self.leaf_outputs(template, path, wrapper)
        ref_artifacts = self.leaf_artifacts(template, path, wrapper)
        task["failFast"] = False
        if env:
            task["env"] = env
        raw_strategy = template.get("retryStrategy")
        strategy: dict[str, Any] = raw_strategy if isinstance(raw_strategy, dict) else {}
        conditional = strategy.get("expression") is not None
        retry = self.retry(raw_strategy, (*path, "retryStrategy"))
        timeout = self.timeout(template, path, scope)
        if timeout is not None:
            task["timeout"] = timeout
        self.uses_helpers = True
        if not conditional:
            wrapper_commands = shell.commands(wrapper)
            task["commands"] = [wrapper_commands]
            if retry is not None:
                task["retry"] = retry
            ref = CallRef(
                "script",
                task_id,
                name,
                loops,
                ref_parameters,
                has_result=True,
                artifacts=ref_artifacts,
            )
            self.register_globals(template, path, ref)
            return Built(finalize(task, loops), ref)
        built = self.conditional_retry(
            task, wrapper, retry, strategy, path, scope, loops, ref_parameters, ref_artifacts
        )
        self.register_globals(template, path, built.ref)
        return built

    def conditional_retry(  # noqa: PLR0917 - the parts of one call
        self,
        task: dict[str, Any],
        wrapper: shell.Wrapper,
        retry: dict[str, Any] | None,
        strategy: dict[str, Any],
        path: Path,
        scope: Scope,
        loops: tuple[str, ...],
        parameters: tuple[str, ...],
        artifacts: tuple[str, ...],
    ) -> Built:
        """A leaf with ``retryStrategy.expression``: an Argo Retry of (run, exit-code check).

        The command's exit code must survive a failed attempt for the expression
        to read it (``lastRetry.exitCode``), so the shell task ends 0 and reports
        it; the next task fails the attempt when it is not 0.
        """
        outer = task["id"]
        run_id = self.new_id(f"{outer}_run")
        check_id = self.new_id(f"{outer}_exit-code")
        wrapper.soft = True
        run_task = {**task, "id": run_id, "commands": [shell.commands(wrapper)]}
        ref = CallRef(
            "script",
            run_id,
            scope.template,
            loops,
            parameters,
            has_result=True,
            artifacts=artifacts,
        )
        exit_code = ref.exit_code().code.replace("['exitCode']", "['vars']['exitCode']")
        check = {
            "id": check_id,
            "type": "io.kestra.plugin.core.execution.Fail",
            "description": "Fails the attempt when the command failed (the retry expression reads "
            "its exit code)",
            "condition": "{{ " + exit_code + " != 0 }}",
            "errorMessage": "command exited with code {{ " + exit_code + " }}",
        }
        attempt = {
            "id": self.new_id(f"{outer}_attempt"),
            "type": "io.kestra.plugin.core.flow.Sequential",
            "tasks": [finalize(run_task, loops), finalize(check, loops)],
        }
        condition = self.retry_condition(
            strategy["expression"], scope, ref, (*path, "retryStrategy", "expression")
        )
        wrapped: dict[str, Any] = {
            "id": outer,
            "type": RETRY_TYPE,
            "description": f"Argo template {scope.template} with a retryStrategy.expression",
            "limit": (retry or {}).get("maxAttempts", 1) - 1,
            "condition": condition,
            "tasks": [attempt],
        }
        backoff = {
            k: v
            for k, v in (retry or {}).items()
            if k in {"interval", "delayFactor", "maxInterval", "maxDuration"}
        }
        if backoff.get("interval", "PT0S") != "PT0S" or len(backoff) > 1:
            wrapped["backoff"] = backoff
        return Built(finalize(wrapped, loops), ref)

    def retry_condition(self, source: Any, scope: Scope, ref: CallRef, path: Path) -> str:
        """``retryStrategy.expression`` as a Pebble condition over the last attempt's outputs."""
        text = str(source)
        tags: list[str] = []

        def mark(match: re.Match[str]) -> str:
            tags.append(match.group(0))
            return f"__argo_tag_{len(tags) - 1}"

        marked = re.sub(r"\{\{.*?\}\}", mark, text, flags=re.DOTALL)
        values = [self.text(tag, scope, path) for tag in tags]
        variables = ref.base() + "['vars']"
        last = {
            "exitCode": f"{variables}['exitCode']",
            "status": "'Failed'",
            "duration": f"{variables}['duration']",
            "message": f"('Error (exit code ' ~ {variables}['exitCode'] ~ ')')",
        }

        def resolve(found: list[str]) -> str:
            if len(found) == 1 and found[0].startswith("__argo_tag_"):
                return f"⟪{found[0].removeprefix('__argo_tag_')}⟫"
            if len(found) == 2 and found[0] == "lastRetry" and found[1] in last:  # noqa: PLR2004
                return last[found[1]]
            raise ExprError(
                f"unknown variable {'.'.join(found)} (a retry expression reads "
                "lastRetry.exitCode, status, duration and message)"
            )

        try:
            code = translate_expr(marked, resolve)
        except ExprError as exc:
            self.refuse(path, str(exc))
            return "{{ false }}"
        code = TAG_MARK.sub(lambda m: "(" + values[int(m.group(0)[1:-1])].expression() + ")", code)
        return "{{ " + code + " }}"

    def docker_runner(
        self, template: dict[str, Any], container: dict[str, Any], path: Path
    ) -> dict[str, Any]:
        """The Docker task runner of a leaf (the engine: the worker's ``DOCKER_HOST``)."""
        runner: dict[str, Any] = {"type": DOCKER_RUNNER}
        policy = container.get("imagePullPolicy")
        if policy in DOCKER_PULL:
            runner["pullPolicy"] = DOCKER_PULL[policy]
        for field_name in ("nodeSelector", "serviceAccountName"):
            if template.get(field_name) is not None:
                self.notes.setdefault(
                    (field_name, "applies on the Kubernetes runner only"), []
                ).append(format_path((*path, field_name)))
        return runner

    def kubernetes_runner(
        self, template: dict[str, Any], container: dict[str, Any], path: Path, scope: Scope
    ) -> dict[str, Any]:
        """The Kubernetes task runner of a leaf: node selector, account, resources, pull policy."""
        runner: dict[str, Any] = {"type": KUBERNETES_RUNNER}
        selector = {**self.node_selector, **(template.get("nodeSelector") or {})}
        if selector:
            runner["nodeSelector"] = {str(k): str(v) for k, v in selector.items()}
        account = template.get("serviceAccountName") or self.workflow.service_account
        if account:
            runner["serviceAccountName"] = str(account)
        resources = container.get("resources") or {}
        if isinstance(resources, dict) and resources:
            mapped = {}
            for argo_name, name in (("requests", "request"), ("limits", "limit")):
                amounts = resources.get(argo_name) or {}
                if amounts:
                    mapped[name] = {k: str(v) for k, v in amounts.items() if k in {"cpu", "memory"}}
            runner["resources"] = mapped
        policy = container.get("imagePullPolicy")
        if policy:
            runner["pullPolicy"] = str(policy)
        del path, scope
        return runner

    def leaf_outputs(
        self, template: dict[str, Any], path: Path, wrapper: shell.Wrapper
    ) -> tuple[str, ...]:
        """Output parameters of a leaf read from files (``valueFrom.path``)."""
        outputs = self.fields(template.get("outputs"), (*path, "outputs"), "outputs")
        names = []
        for index, raw in enumerate(outputs.get("parameters") or []):
            where = (*path, "outputs", "parameters", index)
            parameter = self.fields(raw, where, "parameter")
            value_from = self.fields(parameter.get("valueFrom"), (*where, "valueFrom"), "valueFrom")
            name = parameter.get("name")
            file = value_from.get("path")
            if not isinstance(name, str) or not isinstance(file, str):
                self.refuse(
                    where,
                    "an output parameter of a container or script needs a name and valueFrom.path",
                )
                continue
            default = value_from.get("default")
            wrapper.output_parameters.append(
                (name, file, None if default is None else str(default))
            )
            names.append(name)
        return tuple(names)

    def leaf_artifacts(
        self, template: dict[str, Any], path: Path, wrapper: shell.Wrapper
    ) -> tuple[str, ...]:
        """Output artifacts of a leaf: the files or folders it leaves at their paths."""
        outputs = template["outputs"] if isinstance(template.get("outputs"), dict) else {}
        names = []
        for index, raw in enumerate(outputs.get("artifacts") or []):
            where = (*path, "outputs", "artifacts", index)
            artifact = self.fields(raw, where, "artifact")
            name, file = artifact.get("name"), artifact.get("path")
            if not isinstance(name, str) or not isinstance(file, str):
                self.refuse(
                    where, "an output artifact of a container or script needs a name and a path"
                )
                continue
            for source in ("from", "fromExpression", "raw"):
                if source in artifact:
                    self.refuse(
                        (*where, source),
                        f"an output artifact of a leaf is read from its path, not {source}",
                    )
            wrapper.output_artifacts.append((name, file, bool(artifact.get("optional"))))
            names.append(name)
        return tuple(names)

    def suspend(
        self,
        template: dict[str, Any],
        path: Path,
        scope: Scope,
        task_id: str,
        loops: tuple[str, ...],
    ) -> Built:
        """A suspend template as a Pause (resumed by a reviewer, or after its duration)."""
        where = (*path, "suspend")
        suspend = self.fields(template.get("suspend") or {}, where, "suspend")
        task: dict[str, Any] = {
            "id": task_id,
            "type": "io.kestra.plugin.core.flow.Pause",
            "description": f"Argo suspend template {scope.template}: resume it to go on",
        }
        if suspend.get("duration") is not None:
            value = self.text(suspend["duration"], scope, (*where, "duration"))
            try:
                task["pauseDuration"] = (
                    iso_duration(value.text)
                    if value.is_literal
                    else ("{{ 'PT' ~ (" + value.expression() + " | upper) }}")
                )
            except ValueError as exc:
                self.refuse((*where, "duration"), str(exc))
        inputs = {
            p.get("name"): p
            for p in (template.get("inputs") or {}).get("parameters") or []
            if isinstance(p, dict)
        }
        outputs = self.fields(template.get("outputs"), (*path, "outputs"), "outputs")
        resume: list[dict[str, Any]] = []
        names = []
        for index, raw in enumerate(outputs.get("parameters") or []):
            at = (*path, "outputs", "parameters", index)
            parameter = self.fields(raw, at, "parameter")
            value_from = self.fields(parameter.get("valueFrom"), (*at, "valueFrom"), "valueFrom")
            name = parameter.get("name")
            if not isinstance(name, str) or "supplied" not in value_from:
                self.refuse(at, "a suspend template's outputs must be valueFrom.supplied")
                continue
            source = inputs.get(name, {})
            entry: dict[str, Any] = {"id": name, "type": "STRING"}
            default = value_from.get("default", source.get("default", source.get("value")))
            if default is not None:
                entry["defaults"] = str(default)
                entry["required"] = False
            enum = source.get("enum")
            if enum:
                entry["type"] = "SELECT"
                entry["values"] = [str(v) for v in enum]
            if source.get("description"):
                entry["description"] = str(source["description"]).strip()
            resume.append(entry)
            names.append(name)
        if resume:
            task["onResume"] = resume
        timeout = self.timeout(template, path, scope)
        if timeout is not None:
            task["timeout"] = timeout
        return Built(
            finalize(task, loops), CallRef("pause", task_id, scope.template, loops, tuple(names))
        )

    # --- steps ---------------------------------------------------------------------------
