"""Script tasks (shell and Python), and the task runners that execute them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from controlplane.domain.fields import DynBool, StrictModel, Text
from controlplane.domain.tasktypes.base import TaskBase, register

PROCESS_RUNNER = "io.kestra.plugin.core.runner.Process"
KUBERNETES_RUNNER = "io.kestra.plugin.kubernetes.runner.Kubernetes"
DOCKER_RUNNER = "io.kestra.plugin.scripts.runner.docker.Docker"


class ProcessRunner(StrictModel):
    """Run the script as a local subprocess of the worker."""

    type: Literal["io.kestra.plugin.core.runner.Process"]


class KubernetesResources(StrictModel):
    """Pod resource requests and limits, in Kubernetes quantities."""

    request: dict[str, Text] | None = None
    limit: dict[str, Text] | None = None


class KubernetesRunner(StrictModel):
    """Run the script in a Kubernetes pod."""

    type: Literal["io.kestra.plugin.kubernetes.runner.Kubernetes"]
    namespace: Text = "default"
    resources: KubernetesResources | None = None
    nodeSelector: dict[str, Text] | None = None  # noqa: N815 - Kestra's field name
    serviceAccountName: Text | None = None  # noqa: N815
    labels: dict[str, Text] | None = None
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"  # noqa: N815
    delete: bool = True
    config: dict[str, Any] | None = None
    waitUntilRunning: Text | None = None  # noqa: N815
    waitUntilCompletion: Text | None = None  # noqa: N815


def _runner_tag(value: Any) -> str | None:
    name = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    # Accept the short names too; the model stores the full one.
    short = {"Process": PROCESS_RUNNER, "Kubernetes": KUBERNETES_RUNNER}
    return short.get(name, name) if isinstance(name, str) else None


TaskRunner = Annotated[
    Annotated[ProcessRunner, Tag(PROCESS_RUNNER)]
    | Annotated[KubernetesRunner, Tag(KUBERNETES_RUNNER)],
    Discriminator(
        _runner_tag,
        custom_error_type="unsupported_task_runner",
        custom_error_message=(
            "taskRunner.type must be io.kestra.plugin.core.runner.Process or "
            "io.kestra.plugin.kubernetes.runner.Kubernetes (Flowplane runs no Docker engine)"
        ),
    ),
]


class _ScriptTask(TaskBase):
    env: dict[str, Text] = Field(default_factory=dict)
    inputFiles: dict[str, Text] | Text | None = None  # noqa: N815
    outputFiles: list[Text] | None = None  # noqa: N815
    beforeCommands: list[Text] | None = None  # noqa: N815
    interpreter: list[Text] | None = None
    taskRunner: TaskRunner | None = None  # noqa: N815
    containerImage: Text | None = None  # noqa: N815
    warningOnStdErr: DynBool = False  # noqa: N815
    failFast: DynBool = True  # noqa: N815
    targetOS: Literal["LINUX", "WINDOWS", "AUTO"] = "AUTO"  # noqa: N815


class _Commands(_ScriptTask):
    commands: Annotated[list[Text], Field(min_length=1)]


class _Script(_ScriptTask):
    script: Text


@register
class ShellCommands(_Commands):
    """Run shell commands (``/bin/sh -c`` by default)."""

    TYPE = "io.kestra.plugin.scripts.shell.Commands"
    ALIASES = ("shell.Commands",)


@register
class ShellScript(_Script):
    """Run a shell script."""

    TYPE = "io.kestra.plugin.scripts.shell.Script"
    ALIASES = ("shell.Script",)


@register
class PythonCommands(_Commands):
    """Run commands with a Python interpreter on the PATH."""

    TYPE = "io.kestra.plugin.scripts.python.Commands"
    ALIASES = ("python.Commands",)


@register
class PythonScript(_Script):
    """Run a Python script."""

    TYPE = "io.kestra.plugin.scripts.python.Script"
    ALIASES = ("python.Script",)
