"""Shell and Python script tasks, run by the process runner or in a Kubernetes pod."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from controlplane.domain.durations import parse_duration
from controlplane.domain.tasktypes import scripts
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.flow.values import truthy
from controlplane.plugins.namespace_files import write_selected_namespace_files
from controlplane.plugins.scripts.container_dependencies import install_lines
from controlplane.plugins.scripts.input_uris import execution_file, text_content
from controlplane.plugins.scripts.output_dir import collect_output_dir, prepare_output_dir
from controlplane.plugins.storage.globs import matching_files
from controlplane.runners import docker, kubernetes
from controlplane.runners.dependencies import DependencyError, PythonEnvironment, python_environment
from controlplane.runners.prestart import Prestarted
from controlplane.runners.process import ProcessResult, start_process, watch_process
from controlplane.runners.sandbox import Launch, Sandbox, SandboxError

_ScriptTask = (
    scripts.ShellCommands | scripts.ShellScript | scripts.PythonCommands | scripts.PythonScript
)
_OUTPUTS = {
    "exitCode": "the exit code of the script",
    "vars": 'values the script printed as ::{"outputs": {...}}:: lines',
    "outputFiles": "files matching outputFiles, and those written to {{ outputDir }}, by name",
}


class ShellCommands(scripts.ShellCommands):
    """Run shell commands in the script sandbox."""

    OUTPUTS = _OUTPUTS
    SANDBOX = True

    def run(self, context: RunContext) -> dict[str, Any]:
        """Run the commands (``run_script``)."""
        return run_script(self, context)


class ShellScript(scripts.ShellScript):
    """Run a shell script in the script sandbox."""

    OUTPUTS = _OUTPUTS
    SANDBOX = True

    def run(self, context: RunContext) -> dict[str, Any]:
        """Run the script (``run_script``)."""
        return run_script(self, context)


class PythonCommands(scripts.PythonCommands):
    """Run Python commands in the script sandbox."""

    OUTPUTS = _OUTPUTS
    SANDBOX = True

    def run(self, context: RunContext) -> dict[str, Any]:
        """Run the commands (``run_script``)."""
        return run_script(self, context)


class PythonScript(scripts.PythonScript):
    """Run a Python script in the script sandbox."""

    OUTPUTS = _OUTPUTS
    SANDBOX = True

    def run(self, context: RunContext) -> dict[str, Any]:
        """Run the script (``run_script``)."""
        return run_script(self, context)


def _argv(
    task: _ScriptTask, run: RunContext, python: str, setup: Sequence[str] = ()
) -> tuple[list[str], Path | None]:
    """The command line, and the script file it runs (written here) if any.

    ``setup`` lines run first, before ``beforeCommands``.
    """
    before = [*setup, *(str(run.render(c)) for c in task.beforeCommands or [])]
    script: Path | None = None
    if isinstance(task, scripts.ShellScript | scripts.PythonScript):
        suffix = ".py" if isinstance(task, scripts.PythonScript) else ".sh"
        script = run.working_dir / f"script{suffix}"
        script.write_text(str(run.render(task.script)), encoding="utf-8")
        runner = python if isinstance(task, scripts.PythonScript) else "/bin/sh"
        body = [f"{runner} {script.name}"]
    else:
        body = [str(run.render(c)) for c in task.commands]
        if isinstance(task, scripts.PythonCommands):
            # `python` in a command means the worker's interpreter, not whatever is on PATH.
            body = [
                c.replace("python ", f"{python} ", 1) if c.startswith("python ") else c
                for c in body
            ]
    interpreter = [str(run.render(p)) for p in task.interpreter or ["/bin/sh", "-c"]]
    # `set -e` goes first, so the very first failing command stops the script.
    prefix = "set -e\n" if truthy(run.render(task.failFast)) else ""
    return [*interpreter, prefix + "\n".join([*before, *body])], script


def run_script(task: _ScriptTask, run: RunContext) -> dict[str, Any]:
    """Run the script in the task's working directory; outputs from ``::{...}::`` lines."""
    timeout = _seconds(run.render(task.timeout)) if task.timeout else None
    if isinstance(task.taskRunner, scripts.KubernetesRunner):
        return _run_in_pod(task, task.taskRunner, run, timeout)
    if isinstance(task.taskRunner, scripts.DockerRunner):
        return _run_in_container(task, task.taskRunner, run, timeout)
    result = _run_sandboxed(task, run, timeout)
    if result.timed_out:
        raise TaskFailedError(f"timed out after {task.timeout}")
    if result.killed:
        raise TaskFailedError("killed")
    outputs: dict[str, Any] = {"exitCode": result.exit_code, "vars": result.outputs}
    # outputDir's files first, then outputFiles' (which win on a name), as in Kestra.
    files = {**collect_output_dir(task, run), **_collect_output_files(task, run)}
    if files:
        outputs["outputFiles"] = files
    if result.exit_code != 0:
        raise TaskFailedError(_exit_message(result, run.sandbox))
    return outputs


def _run_sandboxed(task: _ScriptTask, run: RunContext, timeout: float | None) -> ProcessResult:
    """Start the script under the worker's sandbox policy (docs/security.md).

    Namespace files, then input files, are written into the working directory
    first; a Python task's ``dependencies`` are installed (outside the sandbox)
    into a cached environment that the sandbox binds read-only.
    """
    sandbox = run.sandbox
    try:
        mode = sandbox.effective_mode()
        if isinstance(task, scripts.PythonCommands | scripts.PythonScript):
            sandbox.check_python(mode)
    except SandboxError as exc:
        raise TaskFailedError(str(exc)) from None
    with _dependencies(task, run) as venv:
        # A sandbox started ahead, its slot now the working directory (runners.prestart).
        ready = _prestarted(sandbox, mode, venv, run.working_dir)
        try:
            command, env, launch = _prepare(task, run, mode, venv)
        except BaseException as exc:
            if ready is not None:
                ready.discard()
            if isinstance(exc, SandboxError):
                raise TaskFailedError(str(exc)) from None
            raise
        if ready is None:
            process = start_process(
                launch.argv,
                cwd=run.working_dir,
                env=launch.env,
                user=launch.user,
                group=launch.group,
            )
        else:
            process = ready.send(_prestarted_task(task, run, command, env, launch.env))
        return watch_process(process, on_line=run.log, timeout=timeout, should_stop=run.should_stop)


def _prepare(
    task: _ScriptTask, run: RunContext, mode: str, venv: PythonEnvironment | None
) -> tuple[tuple[list[str], Path | None], dict[str, str], Launch]:
    """Write the task's files, and give its command line, its own env and the launch."""
    sandbox = run.sandbox
    if mode == "off":
        run.log("WARN", "the script sandbox is off: this script runs as the server's user")
    sandbox.prepare(run.working_dir, mode)
    for written in [
        *_write_namespace_files(task, run),
        *_write_input_files(task, run),
        *prepare_output_dir(task, run),
    ]:
        sandbox.give(written, mode)
    python = venv.python if venv is not None else sandbox.python
    argv, script = _argv(task, run, str(python))
    if script is not None:
        sandbox.give(script, mode)
    env = {k: str(run.render(v)) for k, v in task.env.items()}
    launch = sandbox.launch(
        argv, cwd=run.working_dir, env=env, mode=mode, venv=venv.path if venv is not None else None
    )
    return (argv, script), env, launch


def _prestarted(
    sandbox: Sandbox, mode: str, venv: PythonEnvironment | None, working_dir: Path
) -> Prestarted | None:
    """A started sandbox for a bwrap task without ``dependencies`` (their venv is bound)."""
    if sandbox.pool is None or mode != "bwrap" or venv is not None:
        return None
    return sandbox.pool.claim(working_dir)


# Variables a fresh interpreter reads as it starts (TZ: when `time` is imported,
# which the waiting one may have done): a task that sets one gets a fresh one.
_STARTUP_ENV = ("PYTHON", "LC_", "LANG", "HOME", "TZ")


def _prestarted_task(
    task: _ScriptTask,
    run: RunContext,
    command: tuple[list[str], Path | None],
    env: dict[str, str],
    clean_env: dict[str, str],
) -> dict[str, Any]:
    """What a started sandbox runs, given ``_argv``'s command line and script file.

    The script in the waiting interpreter, where that is what ``python
    script.py`` would do; else the command line a cold sandbox runs.
    """
    cwd = str(run.working_dir)
    argv, script = command
    if (
        isinstance(task, scripts.PythonScript)
        and script is not None
        and not task.beforeCommands
        and task.interpreter is None
        and not any(name.startswith(_STARTUP_ENV) for name in env)
        # A user site in the working directory would be read by a fresh interpreter.
        and not (run.working_dir / ".local").exists()
    ):
        return {"cwd": cwd, "env": clean_env, "script": script.name}
    return {"cwd": cwd, "env": clean_env, "argv": argv}


@contextlib.contextmanager
def _dependencies(task: _ScriptTask, run: RunContext) -> Iterator[PythonEnvironment | None]:
    """A Python task's ``dependencies`` installed into an environment (cached), or None."""
    requirements: list[str] = []
    cache = True
    if isinstance(task, scripts.PythonCommands | scripts.PythonScript):
        rendered = (str(run.render(d)).strip() for d in task.dependencies or [])
        requirements = [r for r in rendered if r]
        cache = _flag(run.render(task.dependencyCacheEnabled))
    if not requirements:
        yield None
        return
    try:
        with python_environment(
            requirements,
            python=run.sandbox.python,
            packages=run.sandbox.packages,
            task_type=task.TYPE,
            log=run.log,
            should_stop=run.should_stop,
            timeout=run.remaining_seconds(),
            cache=cache,
        ) as environment:
            yield environment
    except DependencyError as exc:
        raise TaskFailedError(str(exc)) from None


def _write_namespace_files(task: _ScriptTask, run: RunContext) -> list[Path]:
    """Copy the namespace files ``namespaceFiles`` selects into the working directory."""
    return write_selected_namespace_files(
        task.namespaceFiles,
        run.working_dir,
        source=run,
        own_namespace=run.execution.namespace,
        render=run.render,
        log=run.log,
    )


def _exit_message(result: ProcessResult, sandbox: Sandbox) -> str:
    """Name the sandbox limit a signal most likely comes from."""
    message = f"command exited with code {result.exit_code}"
    if result.signal == signal.SIGXCPU or (
        result.signal == signal.SIGKILL and sandbox.cpu_seconds is not None
    ):
        name = signal.Signals(result.signal).name
        message += (
            f" (killed by {name}; the sandbox limits CPU time to {sandbox.cpu_seconds} s "
            "per process)"
        )
    return message


def _write_input_files(task: _ScriptTask, run: RunContext) -> list[Path]:
    written = []
    root = run.working_dir.resolve()
    for name, content in _input_files(task, run).items():
        target = (run.working_dir / name).resolve()
        if root not in target.parents:
            raise TaskFailedError(f"input file {name!r} points outside the working directory")
        # Directories made here are the script's too (it writes into them: dbt's target/),
        # so they are handed to the sandbox user with the files.
        for directory in reversed(target.parents):
            if directory.is_relative_to(root) and directory != root and not directory.exists():
                directory.mkdir()
                written.append(directory)
        data = execution_file(run, content)  # a file output's URI: its bytes, as Kestra
        if data is None:
            target.write_text(content, encoding="utf-8")
        else:
            target.write_bytes(data)
        written.append(target)
    return written


def _input_files(task: _ScriptTask, run: RunContext) -> dict[str, str]:
    """``inputFiles`` rendered: a map, or one template rendering to a JSON map (as Kestra).

    Contents that come out of the rendered JSON are written as they are, not
    rendered a second time: an upstream output cannot smuggle in a template.
    """
    files = task.inputFiles
    if not isinstance(files, str):
        return {name: str(run.render(content)) for name, content in (files or {}).items()}
    rendered = run.render(files)
    try:
        parsed = json.loads(rendered) if isinstance(rendered, str) else rendered
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise TaskFailedError(
            "inputFiles given as one string must render to a JSON map of file names to contents"
        )
    return {
        str(name): content if isinstance(content, str) else json.dumps(content, default=str)
        for name, content in parsed.items()
    }


def _collect_output_files(task: _ScriptTask, run: RunContext) -> dict[str, str]:
    """Copy matching files into the run's store; outputs map their names to stored paths.

    The server copies as its own user what the script left, so a symlink (to the
    age identity, say) or a path that resolves outside the directory is skipped.
    """
    found: dict[str, str] = {}
    root = run.working_dir.resolve()
    store = run.working_dir.parent / "output-files" / task.id
    # Kestra's glob matching (storage/globs.py): `**` crosses folders, `out/**` names files.
    patterns = [str(run.render(pattern)) for pattern in task.outputFiles or []]
    for path in matching_files(run.working_dir, patterns):
        if path.is_symlink() or not path.resolve().is_relative_to(root):
            run.log("WARN", f"output file {path.name!r} is a link; it was not collected")
            continue
        if path.is_file():
            name = str(path.relative_to(run.working_dir))
            destination = store / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            _copy_regular_file(path, destination)
            found[name] = str(destination)
    return found


def _copy_regular_file(source: Path, destination: Path) -> None:
    # O_NOFOLLOW: a link swapped in after the check above is refused, not followed.
    descriptor = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as reader, destination.open("wb") as writer:
        shutil.copyfileobj(reader, writer)


# Linux caps one argument at 128 KiB (MAX_ARG_STRLEN); the pod's script is one argument.
_MAX_POD_SCRIPT_BYTES = 120 * 1024
# Kestra's default images when a task names none.
_DEFAULT_IMAGES = {True: "python", False: "ubuntu"}


def _seconds(value: Any) -> float:
    return parse_duration(str(value)).total_seconds()


def _run_in_pod(
    task: _ScriptTask, runner: scripts.KubernetesRunner, run: RunContext, timeout: float | None
) -> dict[str, Any]:
    """Run the task as a pod; input files and the script travel inside the command."""
    is_python = isinstance(task, scripts.PythonCommands | scripts.PythonScript)
    image = str(run.render(task.containerImage)) if task.containerImage else None
    request = kubernetes.PodRequest(
        namespace=str(run.render(runner.namespace)),
        name_prefix=str(run.render("{{ flow.id }}-{{ task.id }}")),
        image=image or _DEFAULT_IMAGES[is_python],
        command=_pod_command(task, run),
        env={k: str(run.render(v)) for k, v in task.env.items()},
        pull_policy=runner.pullPolicy,
        labels=_pod_labels(runner, run),
        node_selector={k: str(run.render(v)) for k, v in (runner.nodeSelector or {}).items()},
        service_account_name=(
            str(run.render(runner.serviceAccountName)) if runner.serviceAccountName else None
        ),
        requests=_quantities(runner.resources.request if runner.resources else None),
        limits=_quantities(runner.resources.limit if runner.resources else None),
        delete=_flag(run.render(runner.delete)),
        wait_until_running=_seconds(run.render(runner.waitUntilRunning)),
        wait_until_completion=_seconds(run.render(runner.waitUntilCompletion)),
        timeout=timeout,
    )
    try:
        with kubernetes.api_client(_connection(runner, run)) as client:
            result = kubernetes.run_pod(
                client, request, on_line=run.log, should_stop=run.should_stop
            )
    except kubernetes.KubernetesError as exc:
        raise TaskFailedError(str(exc)) from None
    if result.timed_out:
        raise TaskFailedError(result.timed_out)
    if result.killed:
        raise TaskFailedError("killed")
    if result.exit_code != 0:
        raise TaskFailedError(f"command exited with code {result.exit_code}")
    return {"exitCode": result.exit_code, "vars": result.outputs}


def _pod_command(task: _ScriptTask, run: RunContext) -> list[str]:
    """The container command: input files written by the shell, then the task's lines."""
    before = [str(run.render(c)) for c in task.beforeCommands or []]
    files = {name: text_content(run, name, c) for name, c in _input_files(task, run).items()}
    if isinstance(task, scripts.ShellScript | scripts.PythonScript):
        is_python = isinstance(task, scripts.PythonScript)
        script_name = "script.py" if is_python else "script.sh"
        files[script_name] = str(run.render(task.script))
        body = [f"{'python' if is_python else '/bin/sh'} {script_name}"]
    else:
        body = [str(run.render(c)) for c in task.commands]
    writes = [_write_file_line(name, content) for name, content in files.items()]
    interpreter = [str(run.render(p)) for p in task.interpreter or ["/bin/sh", "-c"]]
    prefix = "set -e\n" if truthy(run.render(task.failFast)) else ""
    script = "\n".join(writes) + ("\n" if writes else "") + prefix + "\n".join([*before, *body])
    if len(script.encode()) > _MAX_POD_SCRIPT_BYTES:
        raise TaskFailedError(
            f"the pod's script with its input files is over {_MAX_POD_SCRIPT_BYTES // 1024} KiB; "
            "the Kubernetes runner passes them in the command, so keep them smaller"
        )
    return [*interpreter, script]


def _write_file_line(name: str, content: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise TaskFailedError(f"input file {name!r} points outside the working directory")
    mkdir = f"mkdir -p {shlex.quote(str(path.parent))} && " if len(path.parts) > 1 else ""
    return f"{mkdir}printf '%s' {shlex.quote(content)} > {shlex.quote(str(path))}"


def _pod_labels(runner: scripts.KubernetesRunner, run: RunContext) -> dict[str, str]:
    """The flow author's labels, then ours, which say which run the pod belongs to."""
    labels = {k: str(run.render(v)) for k, v in (runner.labels or {}).items()}
    for key, template in {
        "flowplane.io/namespace": "{{ flow.namespace }}",
        "flowplane.io/flow-id": "{{ flow.id }}",
        "flowplane.io/task-id": "{{ task.id }}",
        "flowplane.io/execution-id": "{{ execution.id }}",
        "flowplane.io/taskrun-id": "{{ taskrun.id }}",
        "flowplane.io/taskrun-attempt": "{{ taskrun.attemptsCount }}",
    }.items():
        labels[key] = str(run.render(template))
    return labels


def _quantities(resource: scripts.KubernetesResource | None) -> dict[str, str]:
    if resource is None:
        return {}
    return {k: v for k, v in {"cpu": resource.cpu, "memory": resource.memory}.items() if v}


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "false", "0", "no"}
    return bool(value)


def _connection(
    runner: scripts.KubernetesRunner, run: RunContext
) -> kubernetes.ClusterConnection | None:
    config = runner.config
    if config is None:
        return None

    def text(value: str | None) -> str | None:
        return str(run.render(value)) if value is not None else None

    def pem_file(data: str | None, name: str) -> str | None:
        if data is None:
            return None
        return kubernetes.private_pem_file(run.working_dir, name, str(run.render(data)))

    return kubernetes.ClusterConnection(
        master_url=text(config.masterUrl),
        oauth_token=text(config.oauthToken),
        username=text(config.username),
        password=text(config.password),
        ca_cert_data=text(config.caCertData),
        ca_cert_file=text(config.caCertFile),
        client_cert_file=pem_file(config.clientCertData, ".client.crt")
        or text(config.clientCertFile),
        client_key_file=pem_file(config.clientKeyData, ".client.key") or text(config.clientKeyFile),
        trust_certs=_flag(run.render(config.trustCerts)),
        disable_hostname_verification=_flag(run.render(config.disableHostnameVerification)),
    )


# --- Docker runner (docs/docker.md) -------------------------------------------------

# In a container, `python` means the image's interpreter; python3 is the name every
# image with Python has (Debian's python3 package installs no `python`).
_CONTAINER_PYTHON = "python3"


def _run_in_container(
    task: _ScriptTask, runner: scripts.DockerRunner, run: RunContext, timeout: float | None
) -> dict[str, Any]:
    """Run the task in a container that shares (or receives a copy of) the working directory."""
    is_python = isinstance(task, scripts.PythonCommands | scripts.PythonScript)
    image = str(run.render(task.containerImage)) if task.containerImage else None
    image = image or _DEFAULT_IMAGES[is_python]
    user, owner = _container_user(runner, run)
    written = [
        *_write_namespace_files(task, run),
        *_write_input_files(task, run),
        *prepare_output_dir(task, run),
    ]
    setup = install_lines(task, run, _CONTAINER_PYTHON)
    argv, script = _argv(task, run, _CONTAINER_PYTHON, setup)
    if script is not None:
        written.append(script)
    if runner.fileHandlingStrategy == "MOUNT":
        _hand_over(run.working_dir, written, owner)
    workdir = str(run.working_dir)
    env = {"HOME": workdir, "WORKING_DIR": workdir}
    env.update({k: str(run.render(v)) for k, v in task.env.items()})
    memory = runner.memory
    request = docker.ContainerRequest(
        image=image,
        command=argv,
        working_dir=run.working_dir,
        env=env,
        user=user,
        entrypoint=[str(run.render(p)) for p in runner.entryPoint or [""]],
        pull_policy=runner.pullPolicy,
        auth=_registry_auth(runner, run, image),
        labels=_container_labels(run),
        nano_cpus=_nano_cpus(runner, run),
        memory=_size(run, "memory.memory", memory.memory if memory else None),
        memory_swap=_size(run, "memory.memorySwap", memory.memorySwap if memory else None),
        memory_swappiness=(
            int(run.render(memory.memorySwappiness))
            if memory and memory.memorySwappiness is not None
            else None
        ),
        memory_reservation=_size(
            run, "memory.memoryReservation", memory.memoryReservation if memory else None
        ),
        oom_kill_disable=(
            _flag(run.render(memory.oomKillDisable))
            if memory and memory.oomKillDisable is not None
            else None
        ),
        shm_size=_size(run, "shmSize", runner.shmSize),
        network_mode=_network_mode(runner, run),
        extra_hosts=[str(run.render(h)) for h in runner.extraHosts or []],
        file_handling=runner.fileHandlingStrategy,
        owner=owner,
        delete=_flag(run.render(runner.delete)),
        kill_grace=_seconds(run.render(runner.killGracePeriod)),
        timeout=timeout,
    )
    try:
        # The engine is the worker's DOCKER_HOST: a flow cannot name one (DockerRunner.host).
        with docker.connect(None, task.TYPE) as client:
            result = docker.run_container(
                client, request, on_line=run.log, should_stop=run.should_stop
            )
    except docker.DockerError as exc:
        raise TaskFailedError(str(exc)) from None
    if result.timed_out:
        raise TaskFailedError(f"timed out after {task.timeout}")
    if result.killed:
        raise TaskFailedError("killed")
    outputs: dict[str, Any] = {"exitCode": result.exit_code, "vars": result.outputs}
    files = {**collect_output_dir(task, run), **_collect_output_files(task, run)}
    if files:
        outputs["outputFiles"] = files
    if result.exit_code != 0:
        message = f"command exited with code {result.exit_code}"
        if result.oom_killed:
            message += " (the container ran out of memory: see taskRunner.memory)"
        raise TaskFailedError(message)
    return outputs


def _container_user(
    runner: scripts.DockerRunner, run: RunContext
) -> tuple[str, tuple[int, int] | None]:
    """The container's user, and the uid/gid that must own the working directory.

    Without ``user``, the script runs as the sandbox user (``nobody``) when the
    worker is root or the files are copied in, else as the worker's own user,
    who owns the working directory already.
    """
    if runner.user:
        user = str(run.render(runner.user))
        uid, _, gid = user.partition(":")
        name = uid.strip()
        if runner.fileHandlingStrategy == "MOUNT" and (name == "root" or name.strip("0") == ""):
            # Root in a bind-mounted working directory writes files as the host's root.
            raise TaskFailedError(
                f"taskRunner.user {user!r} is refused with fileHandlingStrategy MOUNT: root in "
                "the container would own files in the worker's working directory; use "
                "fileHandlingStrategy: VOLUME, or a non-root user"
            )
        if uid.isdigit() and (not gid or gid.isdigit()):
            return user, (int(uid), int(gid or uid))
        return user, None
    if os.geteuid() == 0 or runner.fileHandlingStrategy == "VOLUME":
        owner = (run.sandbox.uid, run.sandbox.gid)
    else:
        owner = (os.getuid(), os.getgid())
    return f"{owner[0]}:{owner[1]}", owner


def _hand_over(directory: Path, written: list[Path], owner: tuple[int, int] | None) -> None:
    """Give the bind-mounted working directory and the files written into it to ``owner``."""
    if owner is None or os.geteuid() != 0:
        return
    os.chown(directory, *owner, follow_symlinks=False)
    directory.chmod(0o700)
    for path in written:
        os.chown(path, *owner, follow_symlinks=False)


def _registry_auth(
    runner: scripts.DockerRunner, run: RunContext, image: str
) -> dict[str, str] | None:
    """The pull's credentials, from ``credentials`` or ``config`` (rendered; never logged)."""
    credentials = None
    if runner.credentials is not None:
        credentials = {
            name: str(run.render(value)) if value is not None else None
            for name, value in runner.credentials
        }
    config = None
    if runner.config is not None:
        rendered = run.render(runner.config)
        try:
            config = json.loads(rendered) if isinstance(rendered, str) else rendered
            scripts.check_docker_config(config)
        except ValueError as exc:
            # json's message quotes the text, which may hold a password: keep only the cause.
            reason = str(exc) if not isinstance(exc, json.JSONDecodeError) else exc.msg
            raise TaskFailedError(f"taskRunner.config: {reason}") from None
    try:
        return docker.registry_auth(image, credentials, config)
    except docker.DockerError as exc:
        raise TaskFailedError(f"taskRunner: {exc}") from None


def _container_labels(run: RunContext) -> dict[str, str]:
    """Which run a container belongs to, as the Kubernetes runner labels its pods."""
    labels = {}
    for key, template in {
        "flowplane.io/namespace": "{{ flow.namespace }}",
        "flowplane.io/flow-id": "{{ flow.id }}",
        "flowplane.io/task-id": "{{ task.id }}",
        "flowplane.io/execution-id": "{{ execution.id }}",
        "flowplane.io/taskrun-id": "{{ taskrun.id }}",
        "flowplane.io/taskrun-attempt": "{{ taskrun.attemptsCount }}",
    }.items():
        labels[key] = str(run.render(template))
    return labels


def _nano_cpus(runner: scripts.DockerRunner, run: RunContext) -> int | None:
    if runner.cpu is None:
        return None
    rendered = str(run.render(runner.cpu.cpus))
    try:
        cpus = float(rendered)
    except ValueError:
        cpus = 0.0
    if cpus <= 0:
        raise TaskFailedError(f"taskRunner.cpu.cpus: {rendered!r} is not a positive number")
    return int(cpus * 1_000_000_000)


def _size(run: RunContext, name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return scripts.parse_byte_size(str(run.render(value)))
    except ValueError as exc:
        raise TaskFailedError(f"taskRunner.{name}: {exc}") from None


def _network_mode(runner: scripts.DockerRunner, run: RunContext) -> str | None:
    """The flow's ``networkMode``; ``none`` when the worker keeps scripts off the network."""
    mode = str(run.render(runner.networkMode)) if runner.networkMode else None
    if mode is not None:
        refusal = scripts.shared_network_refusal(mode)
        if refusal:
            raise TaskFailedError(refusal)
    if run.sandbox.network:
        return mode
    if mode not in {None, "none"}:
        raise TaskFailedError(
            f"networkMode {mode!r} is refused: this worker runs scripts without network "
            "(FLOWPLANE_SANDBOX_NETWORK=false)"
        )
    return "none"
