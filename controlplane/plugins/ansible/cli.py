"""``AnsibleCLI``: ``ansible-playbook`` and friends in the script sandbox, with Kestra's outputs.

With the Process runner the commands run on the worker, with the Ansible the
worker has installed (the ``ansible`` extra puts ``ansible-playbook`` beside
the worker's Python, which the sandbox's ``PATH`` includes). Before the
commands, the task writes into the working directory what Kestra's task writes:
``ansible.cfg`` (Kestra's default, or ``ansibleConfig``, unless ``inputFiles``
brings one), the results callback ``callback_plugins/kestra_logger.py`` and the
``kestra`` module (``library/kestra.py``); see ``callback.py``.

Outputs, as Kestra's: ``exitCode``, ``vars`` (``vars.outputs``: the values
declared with the ``kestra`` module; ``vars.playbooks``), ``playbooks`` (per
``ansible-playbook`` run: plays, tasks, each host's status and result) and
``outputFiles`` (``log`` too when ``outputLogFile``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import model_validator

from controlplane.domain.fields import DynBool, Text
from controlplane.plugins.ansible import callback
from controlplane.plugins.api import RunContext, TaskFailedError, refuse
from controlplane.plugins.scripts.cli import is_local_runner, run_cli
from controlplane.plugins.scripts.tasks import ShellCommands

TYPE = "io.kestra.plugin.ansible.cli.AnsibleCLI"
DEFAULT_IMAGE = "cytopia/ansible:latest-tools"
_CONFIG = "ansible.cfg"
# Where the callback appends its results; read, then deleted, after the commands.
_RESULTS = ".flowplane-ansible-results.jsonl"
# Files Kestra's task installs from; Flowplane does not install anything (say so).
_REQUIREMENTS = {
    "requirements.txt": "pip install -r requirements.txt",
    "requirements.yml": "ansible-galaxy install -r requirements.yml",
}

_OUTPUTS = {
    "exitCode": "the exit code of the commands",
    "vars": "outputs: the values declared with the kestra module; playbooks: as below",
    "playbooks": "per ansible-playbook run: plays, tasks, and each host's status and result",
    "outputFiles": "files matching outputFiles (and `log` with outputLogFile), by name",
}


class AnsibleCLI(ShellCommands):
    """Run Ansible CLI commands (ansible-playbook, ansible, ...) in the script sandbox."""

    TYPE = TYPE
    # The type's name before the plugin moved it into its `cli` package.
    ALIASES = ("io.kestra.plugin.ansible.AnsibleCLI",)
    OUTPUTS = _OUTPUTS
    SANDBOX = True

    ansibleConfig: Text | None = None  # noqa: N815 - Kestra's field names
    outputLogFile: DynBool = False  # noqa: N815
    outputsMode: Literal["ALL", "EXPLICIT"] = "ALL"  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        return refuse(
            values,
            {
                "docker": "Kestra's deprecated Docker options; use taskRunner and containerImage",
                "autoInstallPythonRequirements": (
                    "Flowplane installs nothing before the commands; run pip in beforeCommands"
                ),
                "autoInstallGalaxyRequirements": (
                    "Flowplane installs nothing before the commands; run ansible-galaxy in "
                    "beforeCommands"
                ),
            },
        )

    @model_validator(mode="after")
    def _results_need_the_worker(self) -> AnsibleCLI:
        # The callback's results file is read back from the working directory,
        # which only the Process runner shares with the worker.
        if not is_local_runner(self):
            for name, default in (
                ("ansibleConfig", None),
                ("outputLogFile", False),
                ("outputsMode", "ALL"),
            ):
                if getattr(self, name) != default:
                    raise ValueError(
                        f"{name} needs the Process task runner: the results and the log are "
                        "read from the working directory, which a pod does not share"
                    )
        return self

    def run(self, context: RunContext) -> dict[str, Any]:
        """Write the config, callback and module, run the commands, collect the results."""
        if not is_local_runner(self):
            return run_cli(self, context, image=DEFAULT_IMAGE)
        workdir = context.working_dir
        results = workdir / _RESULTS
        results.unlink(missing_ok=True)
        _install(self, context)
        _warn_about_requirements(self, context)
        task: AnsibleCLI = self
        if _truthy(context.render(self.outputLogFile)):
            task = self.model_copy(update={"outputFiles": [*(self.outputFiles or []), "log"]})
        env = {
            callback.OUTPUTS_ENV: str(workdir / _RESULTS),
            callback.MODE_ENV: self.outputsMode,
            # The sandbox user's passwd home is unusable; keep Ansible's files in the run.
            "ANSIBLE_REMOTE_TMP": str(workdir / ".ansible" / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
        }
        try:
            outputs = run_cli(task, context, env=env)
            playbooks, declared = _read_results(results)
        finally:
            results.unlink(missing_ok=True)
        outputs["vars"] = {**outputs.get("vars", {}), "outputs": declared, "playbooks": playbooks}
        outputs["playbooks"] = playbooks
        return outputs


def _install(task: AnsibleCLI, context: RunContext) -> None:
    """Write ansible.cfg (unless the flow brings one), the callback and the kestra module."""
    workdir = context.working_dir
    given = set(task.inputFiles) if isinstance(task.inputFiles, dict) else set()
    files = {
        callback.CALLBACK_PATH: callback.CALLBACK_SOURCE,
        callback.MODULE_PATH: callback.MODULE_SOURCE,
    }
    if _CONFIG in given:
        context.log("WARN", "inputFiles holds an ansible.cfg: it is used, ansibleConfig is not")
    else:
        template = task.ansibleConfig if task.ansibleConfig is not None else callback.DEFAULT_CONFIG
        files[_CONFIG] = _render_config(template, workdir, context)
    for name, content in files.items():
        target = workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.parent.chmod(0o755)
        target.write_text(content, encoding="utf-8")
        target.chmod(0o644)


def _render_config(template: str, workdir: Path, context: RunContext) -> str:
    """Kestra renders the config with ``workingDir`` set to the task's directory."""
    for spelling in ("{{ workingDir }}", "{{workingDir}}"):
        template = template.replace(spelling, str(workdir))
    return str(context.render(template))


def _warn_about_requirements(task: AnsibleCLI, context: RunContext) -> None:
    given = set(task.inputFiles) if isinstance(task.inputFiles, dict) else set()
    for name, command in _REQUIREMENTS.items():
        if name in given or (context.working_dir / name).is_file():
            context.log(
                "WARN",
                f"{name} is not installed automatically (Kestra's task does); "
                f"add `{command}` to beforeCommands if the playbooks need it",
            )


def _read_results(path: Path) -> tuple[list[Any], dict[str, Any]]:
    """The playbooks and declared outputs the callback recorded, one line per run."""
    playbooks: list[Any] = []
    declared: dict[str, Any] = {}
    try:
        # The sandbox user wrote it: a link planted there is not followed.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return playbooks, declared
    except OSError:
        raise TaskFailedError("the Ansible results file is not a regular file") from None
    with os.fdopen(descriptor, encoding="utf-8") as handle:
        text = handle.read()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            message = f"the Ansible results file has an unreadable line {number}"
            raise TaskFailedError(message) from None
        playbooks.append(record.get("playbook", {}))
        declared.update(record.get("outputs") or {})
    return playbooks, declared


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)
