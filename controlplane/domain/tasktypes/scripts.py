"""Script tasks (shell and Python), and the task runners that execute them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from controlplane.domain.fields import DynBool, DynDuration, StrictModel, Text
from controlplane.domain.tasktypes.base import TaskBase

PROCESS_RUNNER = "io.kestra.plugin.core.runner.Process"
# Kestra's Enterprise plugin name; the older open-source name and the short one are aliases.
KUBERNETES_RUNNER = "io.kestra.plugin.ee.kubernetes.runner.Kubernetes"
DOCKER_RUNNER = "io.kestra.plugin.scripts.runner.docker.Docker"
_RUNNER_ALIASES = {
    "Process": PROCESS_RUNNER,
    "Kubernetes": KUBERNETES_RUNNER,
    "io.kestra.plugin.kubernetes.runner.Kubernetes": KUBERNETES_RUNNER,
}
# Kestra's enum spellings of the pull policy, next to Kubernetes' own.
_PULL_POLICIES = {"ALWAYS": "Always", "IF_NOT_PRESENT": "IfNotPresent", "NEVER": "Never"}


def _runner_type(value: Any) -> Any:
    return _RUNNER_ALIASES.get(value, value) if isinstance(value, str) else value


def _pull_policy(value: Any) -> Any:
    return _PULL_POLICIES.get(value, value) if isinstance(value, str) else value


class ProcessRunner(StrictModel):
    """Run the script as a local subprocess of the worker."""

    type: Annotated[Literal["io.kestra.plugin.core.runner.Process"], BeforeValidator(_runner_type)]


class KubernetesResource(StrictModel):
    """A CPU and memory amount, in Kubernetes quantities (``500m``, ``256Mi``)."""

    cpu: Text | None = None
    memory: Text | None = None


class KubernetesResources(StrictModel):
    """Pod resource requests and limits."""

    request: KubernetesResource | None = None
    limit: KubernetesResource | None = None


class KubernetesConnection(StrictModel):
    """How to reach the cluster (Kestra's ``config``); absent, the worker's own kubeconfig."""

    masterUrl: Text | None = None  # noqa: N815 - Kestra's field names
    oauthToken: Text | None = None  # noqa: N815
    username: Text | None = None
    password: Text | None = None
    caCertData: Text | None = None  # noqa: N815
    caCertFile: Text | None = None  # noqa: N815
    clientCertData: Text | None = None  # noqa: N815
    clientCertFile: Text | None = None  # noqa: N815
    clientKeyData: Text | None = None  # noqa: N815
    clientKeyFile: Text | None = None  # noqa: N815
    trustCerts: DynBool = False  # noqa: N815
    disableHostnameVerification: DynBool = False  # noqa: N815


class KubernetesRunner(StrictModel):
    """Run the script in a Kubernetes pod (the task's ``containerImage`` is the image)."""

    type: Annotated[
        Literal["io.kestra.plugin.ee.kubernetes.runner.Kubernetes"],
        BeforeValidator(_runner_type),
    ]
    namespace: Text = "default"
    config: KubernetesConnection | None = None
    resources: KubernetesResources | None = None
    nodeSelector: dict[str, Text] | None = None  # noqa: N815 - Kestra's field name
    serviceAccountName: Text | None = None  # noqa: N815
    labels: dict[str, Text] | None = None
    pullPolicy: Annotated[  # noqa: N815
        Literal["Always", "IfNotPresent", "Never"], BeforeValidator(_pull_policy)
    ] = "Always"
    delete: DynBool = True
    waitUntilRunning: DynDuration = "PT10M"  # noqa: N815
    waitUntilCompletion: DynDuration = "PT1H"  # noqa: N815


def _runner_tag(value: Any) -> str | None:
    name = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    # Accept the short and older names too; the model stores the full one.
    return _runner_type(name) if isinstance(name, str) else None


TaskRunner = Annotated[
    Annotated[ProcessRunner, Tag(PROCESS_RUNNER)]
    | Annotated[KubernetesRunner, Tag(KUBERNETES_RUNNER)],
    Discriminator(
        _runner_tag,
        custom_error_type="unsupported_task_runner",
        custom_error_message=(
            "taskRunner.type must be io.kestra.plugin.core.runner.Process or "
            "io.kestra.plugin.ee.kubernetes.runner.Kubernetes (Flowplane runs no Docker engine)"
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

    @field_validator("inputFiles", mode="before")
    @classmethod
    def _input_files_map(cls, value: Any) -> Any:
        # The runners write a map of files; one template string would be dropped.
        if isinstance(value, str):
            raise ValueError(
                "inputFiles as one string is not supported on script tasks; "
                "give a map of file names to contents"
            )
        return value

    @field_validator("warningOnStdErr", mode="before")
    @classmethod
    def _no_warning_on_stderr(cls, value: Any) -> Any:
        # A script's state comes from its exit code only; stderr lines are logged as WARN.
        if value is not False:
            raise ValueError(
                "warningOnStdErr is not supported: a script's state comes from its exit "
                "code (stderr lines are logged at WARN); exit non-zero to fail"
            )
        return value

    @field_validator("targetOS", mode="before")
    @classmethod
    def _linux_only(cls, value: Any) -> Any:
        if value == "WINDOWS":
            raise ValueError("targetOS WINDOWS is not supported: Flowplane workers run Linux")
        return value

    @model_validator(mode="after")
    def _image_needs_a_pod(self) -> _ScriptTask:
        # The Process runner runs on the worker's host: an image would be ignored.
        if self.containerImage is not None and not isinstance(self.taskRunner, KubernetesRunner):
            raise ValueError(
                "containerImage needs the Kubernetes task runner: the Process runner runs "
                "the script on the worker's host, not in an image"
            )
        return self

    @model_validator(mode="after")
    def _pod_has_no_output_files(self) -> _ScriptTask:
        # Reading files back out of a pod needs the exec API (a websocket per file);
        # the Kubernetes runner does not do that, so say so before anything runs.
        if isinstance(self.taskRunner, KubernetesRunner) and self.outputFiles:
            raise ValueError(
                "outputFiles is not supported with the Kubernetes task runner; "
                'print a ::{"outputs":{...}}:: line to return values'
            )
        return self


class _Commands(_ScriptTask):
    commands: Annotated[list[Text], Field(min_length=1)]


class _Script(_ScriptTask):
    script: Text


class ShellCommands(_Commands):
    """Run shell commands (``/bin/sh -c`` by default)."""

    TYPE = "io.kestra.plugin.scripts.shell.Commands"
    ALIASES = ("shell.Commands",)


class ShellScript(_Script):
    """Run a shell script."""

    TYPE = "io.kestra.plugin.scripts.shell.Script"
    ALIASES = ("shell.Script",)


class PythonCommands(_Commands):
    """Run commands with a Python interpreter on the PATH."""

    TYPE = "io.kestra.plugin.scripts.python.Commands"
    ALIASES = ("python.Commands",)


class PythonScript(_Script):
    """Run a Python script."""

    TYPE = "io.kestra.plugin.scripts.python.Script"
    ALIASES = ("python.Script",)
