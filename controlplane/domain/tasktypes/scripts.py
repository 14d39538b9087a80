"""Script tasks (shell and Python), and the task runners that execute them."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from controlplane.domain.fields import DynBool, DynDuration, DynInt, StrictModel, Text
from controlplane.domain.tasktypes.base import TaskBase

PROCESS_RUNNER = "io.kestra.plugin.core.runner.Process"
# Kestra's Enterprise plugin name; the older open-source name and the short one are aliases.
KUBERNETES_RUNNER = "io.kestra.plugin.ee.kubernetes.runner.Kubernetes"
DOCKER_RUNNER = "io.kestra.plugin.scripts.runner.docker.Docker"
_RUNNER_ALIASES = {
    "Process": PROCESS_RUNNER,
    "Kubernetes": KUBERNETES_RUNNER,
    "io.kestra.plugin.kubernetes.runner.Kubernetes": KUBERNETES_RUNNER,
    "Docker": DOCKER_RUNNER,
    # The Docker runner's name while it was in beta (Kestra 0.16).
    "io.kestra.plugin.scripts.runner.docker.DockerTaskRunner": DOCKER_RUNNER,
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

    @model_validator(mode="before")
    @classmethod
    def _type_only(cls, value: Any) -> Any:
        # Kestra's Process runner documents no property besides `type`.
        extra = sorted(set(value) - {"type"}) if isinstance(value, dict) else []
        if extra:
            raise ValueError(
                f"the Process task runner takes no options besides type (as in Kestra): "
                f"remove {', '.join(extra)}"
            )
        return value


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


# --- Docker runner (docs/docker.md) -------------------------------------------------

# Binary units, as Kestra (512MB) and the docker CLI (512m) both read them.
_BYTE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_BYTE_SIZE = re.compile(r"(\d+)\s*(?:([kmgt])i?b?|b)?", re.IGNORECASE)
_DOCKER_PULL_POLICIES = {v: k for k, v in _PULL_POLICIES.items()}


def parse_byte_size(value: str | int) -> int:
    """Bytes in ``512MB``, ``512Mb``, ``512MiB``, ``512m`` or a plain number; ``-1`` stays -1."""
    text = str(value).strip()
    if text == "-1":
        return -1
    match = _BYTE_SIZE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{value!r} is not a size: give a number of bytes, or a number with KB, MB, GB "
            "or TB (512MB)"
        )
    return int(match.group(1)) * _BYTE_UNITS[(match.group(2) or "").lower()]


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _byte_size(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError("must be a size such as 512MB, or a {{ expression }}")
    if not _is_template(value):
        parse_byte_size(value)
    return value


def _cpus(value: Any) -> Any:
    if _is_template(value):
        return value
    try:
        amount = float(value) if not isinstance(value, bool) else 0.0
    except (TypeError, ValueError):
        amount = 0.0
    if amount <= 0:
        raise ValueError("must be a positive number of CPUs (0.5, 2), or a {{ expression }}")
    return str(value)


def _docker_pull_policy(value: Any) -> Any:
    return _DOCKER_PULL_POLICIES.get(value, value) if isinstance(value, str) else value


ByteSize = Annotated[str, BeforeValidator(_byte_size)]


class DockerCredentials(StrictModel):
    """Credentials for a private registry, sent with the pull (Kestra's ``credentials``)."""

    registry: Text | None = None
    username: Text | None = None
    password: Text | None = None
    registryToken: Text | None = None  # noqa: N815 - Kestra's field names
    identityToken: Text | None = None  # noqa: N815
    auth: Text | None = None

    @field_validator("registryToken", "identityToken")
    @classmethod
    def _no_tokens(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            raise ValueError(
                f"credentials.{info.field_name} is not supported: give username and password "
                "(or auth); a registry's access token goes in password"
            )
        return value


class DockerCpu(StrictModel):
    """The CPU limit of the container."""

    cpus: Annotated[str, BeforeValidator(_cpus)]


class DockerMemory(StrictModel):
    """Memory limits of the container (sizes such as ``512MB``)."""

    memory: ByteSize | None = None
    memorySwap: ByteSize | None = None  # noqa: N815 - Kestra's field names
    memorySwappiness: DynInt | None = None  # noqa: N815
    memoryReservation: ByteSize | None = None  # noqa: N815
    kernelMemory: ByteSize | None = None  # noqa: N815
    oomKillDisable: DynBool | None = None  # noqa: N815

    @field_validator("memorySwappiness")
    @classmethod
    def _percent(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and not 0 <= value <= 100:  # noqa: PLR2004 - a percentage
            raise ValueError("memory.memorySwappiness must be between 0 and 100")
        return value

    @field_validator("kernelMemory")
    @classmethod
    def _no_kernel_memory(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "memory.kernelMemory is not supported: Docker Engine ignores it since API 1.42 "
                "(kernel memory counts towards memory.memory); set memory.memory instead"
            )
        return value


# Properties Kestra's Docker runner has that a flow may not use here, with the reason.
_DOCKER_REFUSED = {
    "volumes": (
        "volumes is not supported: a flow may not mount paths of the Docker host into its "
        "container (the host holds the server's data); pass files with inputFiles"
    ),
    "portBindings": (
        "portBindings is not supported: a task's container may not publish ports on its host"
    ),
    "deviceRequests": (
        "deviceRequests is not supported: flows are not given the Docker host's devices (GPUs)"
    ),
}


def shared_network_refusal(mode: str) -> str | None:
    """Why a Docker ``networkMode`` is refused (it shares a namespace), or None.

    ``host`` puts the container on the worker host's network, loopback services
    included; ``container:<id>`` joins another container's (Flowplane's own, or
    its database's).
    """
    name = mode.strip().lower()
    if name == "host" or name.startswith("container:"):
        return (
            f"networkMode {mode.strip()!r} is refused: a task's container may not share the "
            "host's or another container's network namespace; use bridge (the default), "
            "none, or a named network"
        )
    return None


class DockerRunner(StrictModel):
    """Run the script in a container of a Docker Engine API (Docker or Podman)."""

    type: Annotated[
        Literal["io.kestra.plugin.scripts.runner.docker.Docker"], BeforeValidator(_runner_type)
    ]
    host: Text | None = None
    config: Text | dict[str, Any] | None = None
    credentials: DockerCredentials | None = None
    pullPolicy: Annotated[  # noqa: N815 - Kestra's field names
        Literal["ALWAYS", "IF_NOT_PRESENT", "NEVER"], BeforeValidator(_docker_pull_policy)
    ] = "IF_NOT_PRESENT"
    user: Text | None = None
    entryPoint: list[Text] | None = None  # noqa: N815
    extraHosts: list[Text] | None = None  # noqa: N815
    networkMode: Text | None = None  # noqa: N815
    cpu: DockerCpu | None = None
    memory: DockerMemory | None = None
    shmSize: ByteSize | None = None  # noqa: N815
    fileHandlingStrategy: Literal["MOUNT", "VOLUME"] = "MOUNT"  # noqa: N815
    delete: DynBool = True
    wait: DynBool = True
    killGracePeriod: DynDuration = "PT0S"  # noqa: N815
    resume: DynBool = False
    privileged: DynBool | None = None
    volumes: list[Text] | None = None
    portBindings: list[Text] | None = None  # noqa: N815
    deviceRequests: list[Any] | None = None  # noqa: N815

    @field_validator("volumes", "portBindings", "deviceRequests")
    @classmethod
    def _refused(cls, value: list[Any] | None, info: ValidationInfo) -> list[Any] | None:
        if value:
            raise ValueError(_DOCKER_REFUSED[str(info.field_name)])
        return value

    @field_validator("networkMode")
    @classmethod
    def _own_network(cls, value: str | None) -> str | None:
        refusal = shared_network_refusal(value) if value and "{{" not in value else None
        if refusal:
            raise ValueError(refusal)
        return value

    @field_validator("host")
    @classmethod
    def _no_host(cls, value: str | None) -> str | None:
        # The engine is the operator's choice: a flow naming one could send the
        # worker's registry credentials there, or use an engine meant for others.
        if value is not None:
            raise ValueError(
                "host is not supported: the Docker engine is set on the worker with DOCKER_HOST"
            )
        return value

    @field_validator("privileged")
    @classmethod
    def _not_privileged(cls, value: bool | str | None) -> bool | str | None:
        if value is not None and value is not False:
            raise ValueError(
                "privileged is not supported: a privileged container controls the Docker host"
            )
        return value

    @field_validator("wait")
    @classmethod
    def _waits(cls, value: bool | str) -> bool | str:
        if value is not True:
            raise ValueError(
                "wait: false is not supported: Flowplane follows every container to its end, "
                "so the task's timeout, kill, logs and outputs apply to it"
            )
        return value

    @field_validator("resume")
    @classmethod
    def _no_resume(cls, value: bool | str) -> bool | str:
        if value is not False:
            raise ValueError(
                "resume is not supported: a task run again after a worker restart starts a "
                "new container"
            )
        return value

    @field_validator("config")
    @classmethod
    def _auths_only(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if isinstance(value, dict):
            check_docker_config(value)
        return value


def check_docker_config(config: Any) -> None:
    """Refuse a Docker ``config.json`` that holds more than registry ``auths``."""
    if not isinstance(config, dict):
        raise ValueError("config must be a Docker config.json object with an auths map")
    extra = sorted(set(config) - {"auths"})
    if extra:
        raise ValueError(
            f"config may only hold auths, not {', '.join(extra)}: credential helpers "
            "(credsStore, credHelpers) would run programs on the worker; give the registry's "
            "auths, or credentials"
        )
    auths = config.get("auths", {})
    if not isinstance(auths, dict) or not all(isinstance(v, dict) for v in auths.values()):
        raise ValueError("config.auths must map registries to {auth} or {username, password}")
    for registry, entry in auths.items():
        tokens = sorted(set(entry) - {"auth", "username", "password", "email"})
        if tokens:
            raise ValueError(
                f"config.auths of {registry} may hold auth, or username and password, "
                f"not {', '.join(tokens)}"
            )


def _runner_tag(value: Any) -> str | None:
    name = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    # Accept the short and older names too; the model stores the full one.
    return _runner_type(name) if isinstance(name, str) else None


TaskRunner = Annotated[
    Annotated[ProcessRunner, Tag(PROCESS_RUNNER)]
    | Annotated[KubernetesRunner, Tag(KUBERNETES_RUNNER)]
    | Annotated[DockerRunner, Tag(DOCKER_RUNNER)],
    Discriminator(
        _runner_tag,
        custom_error_type="unsupported_task_runner",
        custom_error_message=(
            "taskRunner.type must be io.kestra.plugin.core.runner.Process, "
            "io.kestra.plugin.scripts.runner.docker.Docker or "
            "io.kestra.plugin.ee.kubernetes.runner.Kubernetes"
        ),
    ),
]


class NamespaceFiles(StrictModel):
    """Kestra's ``namespaceFiles``: namespace files copied into the working directory first."""

    enabled: DynBool = True
    include: list[Text] | None = None
    exclude: list[Text] | None = None
    namespaces: list[Text] | None = None
    ifExists: Literal["OVERWRITE", "FAIL", "WARN", "IGNORE"] = "OVERWRITE"  # noqa: N815
    folderPerNamespace: DynBool = False  # noqa: N815


class _ScriptTask(TaskBase):
    env: dict[str, Text] = Field(default_factory=dict)
    namespaceFiles: NamespaceFiles | None = None  # noqa: N815
    inputFiles: dict[str, Text] | Text | None = None  # noqa: N815
    outputFiles: list[Text] | None = None  # noqa: N815
    beforeCommands: list[Text] | None = None  # noqa: N815
    interpreter: list[Text] | None = None
    taskRunner: TaskRunner | None = None  # noqa: N815
    containerImage: Text | None = None  # noqa: N815
    warningOnStdErr: DynBool = False  # noqa: N815
    failFast: DynBool = True  # noqa: N815
    targetOS: Literal["LINUX", "WINDOWS", "AUTO"] = "AUTO"  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _dependencies_are_python(cls, value: Any) -> Any:
        # Kestra has `dependencies` on its Python tasks only; say so, not "unknown property".
        python = "dependencies" in cls.model_fields
        if isinstance(value, dict) and "dependencies" in value and not python:
            raise ValueError(
                "dependencies is only for Python script tasks (python.Script, "
                "python.Commands); install packages in beforeCommands"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _image_means_docker(cls, value: Any) -> Any:
        # Kestra's default task runner is Docker: `containerImage` with no `taskRunner`
        # runs as if `taskRunner: {type: ...docker.Docker}` were written (docs/docker.md).
        # A copy: the parsed source itself (and the stored flow) stays as written.
        if (
            isinstance(value, dict)
            and value.get("containerImage") is not None
            and value.get("taskRunner") is None
        ):
            return {**value, "taskRunner": {"type": DOCKER_RUNNER}}
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
        container = isinstance(self.taskRunner, KubernetesRunner | DockerRunner)
        if self.containerImage is not None and not container:
            raise ValueError(
                "containerImage needs the Docker or Kubernetes task runner: the Process "
                "runner runs the script on the worker's host, not in an image"
            )
        return self

    @model_validator(mode="after")
    def _namespace_files_on_the_worker(self) -> _ScriptTask:
        # Namespace files are written into the worker's working directory, which a
        # container shares (or receives a copy of); a pod does not see it.
        files = self.namespaceFiles
        runner = self.taskRunner
        enabled = files is not None and files.enabled is not False
        if enabled and isinstance(runner, KubernetesRunner):
            raise ValueError(
                f"namespaceFiles is not supported with the {runner.type} task runner: "
                "the files are written into the worker's working directory, which a pod "
                "does not see; pass what the script needs in inputFiles"
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


class _PythonTask(_ScriptTask):
    """What Python script tasks add: ``dependencies`` installed into a cached environment."""

    dependencies: list[Text] | None = None
    dependencyCacheEnabled: DynBool = True  # noqa: N815
    pythonVersion: Text | None = None  # noqa: N815
    packageManager: Literal["UV", "PIP"] = "UV"  # noqa: N815

    @field_validator("dependencies")
    @classmethod
    def _plain_requirements(cls, value: list[str] | None) -> list[str] | None:
        # The worker installs them outside the sandbox: a URL, a path or a pip option is refused.
        for item in value or []:
            if "{{" in item or "{%" in item:
                continue  # checked once rendered
            if item.lstrip().startswith("-") or any(c in item for c in ("@", "/", "\\")):
                raise ValueError(
                    f"dependencies: {item!r} is not a package requirement; give a name with an "
                    "optional version (pandas==2.2): URLs, paths and pip options are refused"
                )
        return value

    @field_validator("pythonVersion")
    @classmethod
    def _worker_python(cls, value: str | None) -> str | None:
        if value is not None:
            raise ValueError(
                "pythonVersion is not supported: Python scripts run the worker's interpreter "
                "(its version is the one of the Flowplane install)"
            )
        return value

    @field_validator("packageManager", mode="before")
    @classmethod
    def _uv_only(cls, value: Any) -> Any:
        if value == "PIP":
            raise ValueError(
                "packageManager PIP is not supported: dependencies are installed by uv"
            )
        return value

    @model_validator(mode="after")
    def _dependencies_on_the_worker(self) -> _PythonTask:
        # The Docker runner pip-installs them in the container before the script.
        runner = self.taskRunner
        if self.dependencies and isinstance(runner, KubernetesRunner):
            raise ValueError(
                f"dependencies needs the Process task runner or the Docker one, not {runner.type}: "
                "install them in the image or in beforeCommands"
            )
        return self


class PythonCommands(_PythonTask, _Commands):
    """Run commands with a Python interpreter on the PATH."""

    TYPE = "io.kestra.plugin.scripts.python.Commands"
    ALIASES = ("python.Commands",)


class PythonScript(_PythonTask, _Script):
    """Run a Python script."""

    TYPE = "io.kestra.plugin.scripts.python.Script"
    ALIASES = ("python.Script",)
