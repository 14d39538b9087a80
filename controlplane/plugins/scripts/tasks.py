"""Shell and Python script tasks, run by the process runner or in a Kubernetes pod."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
from pathlib import Path, PurePosixPath
from typing import Any

from controlplane.domain.durations import parse_duration
from controlplane.domain.tasktypes import scripts
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.runners import kubernetes
from controlplane.runners.process import ProcessResult, run_process
from controlplane.runners.sandbox import Sandbox, SandboxError

_ScriptTask = (
    scripts.ShellCommands | scripts.ShellScript | scripts.PythonCommands | scripts.PythonScript
)
_OUTPUTS = {
    "exitCode": "the exit code of the script",
    "vars": 'values the script printed as ::{"outputs": {...}}:: lines',
    "outputFiles": "files matching outputFiles, by name",
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


def _argv(task: _ScriptTask, run: RunContext, python: str) -> tuple[list[str], Path | None]:
    """The command line, and the script file it runs (written here) if any."""
    before = [str(run.render(c)) for c in task.beforeCommands or []]
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
    prefix = "set -e\n" if task.failFast is True else ""
    return [*interpreter, prefix + "\n".join([*before, *body])], script


def run_script(task: _ScriptTask, run: RunContext) -> dict[str, Any]:
    """Run the script in the task's working directory; outputs from ``::{...}::`` lines."""
    timeout = _seconds(run.render(task.timeout)) if task.timeout else None
    if isinstance(task.taskRunner, scripts.KubernetesRunner):
        return _run_in_pod(task, task.taskRunner, run, timeout)
    result = _run_sandboxed(task, run, timeout)
    if result.timed_out:
        raise TaskFailedError(f"timed out after {task.timeout}")
    if result.killed:
        raise TaskFailedError("killed")
    outputs: dict[str, Any] = {"exitCode": result.exit_code, "vars": result.outputs}
    files = _collect_output_files(task, run)
    if files:
        outputs["outputFiles"] = files
    if result.exit_code != 0:
        raise TaskFailedError(_exit_message(result, run.sandbox))
    return outputs


def _run_sandboxed(task: _ScriptTask, run: RunContext, timeout: float | None) -> ProcessResult:
    """Start the script under the worker's sandbox policy (docs/security.md)."""
    sandbox = run.sandbox
    try:
        mode = sandbox.effective_mode()
        if isinstance(task, scripts.PythonCommands | scripts.PythonScript):
            sandbox.check_python(mode)
        if mode == "off":
            run.log("WARN", "the script sandbox is off: this script runs as the server's user")
        sandbox.prepare(run.working_dir, mode)
        for written in _write_input_files(task, run):
            sandbox.give(written, mode)
        argv, script = _argv(task, run, str(sandbox.python))
        if script is not None:
            sandbox.give(script, mode)
        env = {k: str(run.render(v)) for k, v in task.env.items()}
        launch = sandbox.launch(argv, cwd=run.working_dir, env=env, mode=mode)
    except SandboxError as exc:
        raise TaskFailedError(str(exc)) from None
    return run_process(
        launch.argv,
        cwd=run.working_dir,
        env=launch.env,
        on_line=run.log,
        timeout=timeout,
        should_stop=run.should_stop,
        user=launch.user,
        group=launch.group,
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
    files = task.inputFiles if isinstance(task.inputFiles, dict) else {}
    written = []
    for name, content in files.items():
        target = (run.working_dir / name).resolve()
        if run.working_dir.resolve() not in target.parents:
            raise TaskFailedError(f"input file {name!r} points outside the working directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(str(run.render(content)), encoding="utf-8")
        written.append(target)
    return written


def _collect_output_files(task: _ScriptTask, run: RunContext) -> dict[str, str]:
    """Copy matching files into the run's store; outputs map their names to stored paths.

    The server copies as its own user what the script left, so a symlink (to the
    age identity, say) or a path that resolves outside the directory is skipped.
    """
    found: dict[str, str] = {}
    root = run.working_dir.resolve()
    store = run.working_dir.parent / "output-files" / task.id
    for pattern in task.outputFiles or []:
        for path in sorted(run.working_dir.glob(str(run.render(pattern)))):
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
    files = dict(task.inputFiles) if isinstance(task.inputFiles, dict) else {}
    if isinstance(task, scripts.ShellScript | scripts.PythonScript):
        is_python = isinstance(task, scripts.PythonScript)
        script_name = "script.py" if is_python else "script.sh"
        files[script_name] = task.script
        body = [f"{'python' if is_python else '/bin/sh'} {script_name}"]
    else:
        body = [str(run.render(c)) for c in task.commands]
    writes = [_write_file_line(name, str(run.render(content))) for name, content in files.items()]
    interpreter = [str(run.render(p)) for p in task.interpreter or ["/bin/sh", "-c"]]
    prefix = "set -e\n" if task.failFast is True else ""
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

    return kubernetes.ClusterConnection(
        master_url=text(config.masterUrl),
        oauth_token=text(config.oauthToken),
        username=text(config.username),
        password=text(config.password),
        ca_cert_data=text(config.caCertData),
        ca_cert_file=text(config.caCertFile),
        client_cert_file=text(config.clientCertFile),
        client_key_file=text(config.clientKeyFile),
        trust_certs=_flag(run.render(config.trustCerts)),
        disable_hostname_verification=_flag(run.render(config.disableHostnameVerification)),
    )
