"""``DbtCLI``: dbt commands in the script sandbox, with Kestra's additions around them.

As Kestra's task does: ``profiles`` is written to ``profiles.yml`` in the
working directory; each command starting with ``dbt`` gets ``--project-dir``
(``projectDir``), ``--log-format`` (``logFormat``, JSON by default) and
``--log-path logs`` unless it names them; JSON log lines become log lines at
dbt's own level; ``loadManifest``/``storeManifest`` read and write
``target/manifest.json`` in the namespace's key-value store; and with
``parseRunResults`` the results of each node are logged and
``run_results.json`` and ``manifest.json`` are stored as output files.

With the Process runner dbt is the worker's (the ``dbt`` extra, beside the
worker's Python on the sandbox's ``PATH``); with the Kubernetes runner it is
the image's (``ghcr.io/kestra-io/dbt`` when ``containerImage`` names none).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import model_validator

from controlplane.domain.fields import DynBool, StrictModel, Text
from controlplane.plugins.api import RunContext, TaskFailedError, refuse
from controlplane.plugins.scripts.cli import hand_over, is_local_runner, run_cli
from controlplane.plugins.scripts.tasks import ShellCommands

TYPE = "io.kestra.plugin.dbt.cli.DbtCLI"
DEFAULT_IMAGE = "ghcr.io/kestra-io/dbt"
_LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARN", "warning": "WARN", "error": "ERROR"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

_OUTPUTS = {
    "exitCode": "the exit code of the commands",
    "vars": 'values printed as ::{"outputs": {...}}:: lines',
    "outputFiles": "files matching outputFiles, and run_results.json and manifest.json",
}


class KvStoreManifest(StrictModel):
    """Where a manifest lives in the key-value store (Kestra's ``KvStoreManifest``)."""

    key: Text
    namespace: Text


class DbtCLI(ShellCommands):
    """Run dbt CLI commands (build, run, test, ...) on a dbt project in the script sandbox."""

    TYPE = TYPE
    ALIASES = ("dbt.cli.DbtCLI",)
    OUTPUTS = _OUTPUTS
    SANDBOX = True

    profiles: Text | None = None
    projectDir: Text | None = None  # noqa: N815 - Kestra's field names
    parseRunResults: DynBool = True  # noqa: N815
    logFormat: Literal["JSON", "TEXT", "DEBUG", "NONE"] = "JSON"  # noqa: N815
    storeManifest: KvStoreManifest | None = None  # noqa: N815
    loadManifest: KvStoreManifest | None = None  # noqa: N815
    engine: Literal["CORE"] = "CORE"

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("engine") == "FUSION":
            raise ValueError(
                "engine FUSION is not supported: the worker runs dbt Core (the dbt extra)"
            )
        return refuse(
            values,
            {
                "docker": "Kestra's deprecated Docker options; use taskRunner and containerImage",
                "alertWebhook": "send alerts from the flow (errors/finally) with a notification "
                "task",
                "dbtPath": "dbt is found on the PATH",
            },
        )

    def run(self, context: RunContext) -> dict[str, Any]:
        """Write profiles and the loaded manifest, run the commands, read the results."""
        project = context.working_dir
        if self.projectDir is not None:
            project = (context.working_dir / str(context.render(self.projectDir))).resolve()
            if not project.is_relative_to(context.working_dir.resolve()):
                raise TaskFailedError("projectDir points outside the working directory")
        if is_local_runner(self):
            # dbt writes target/ and logs/ into the project: the sandbox user must own it
            # (inputFiles leave the directories they create to the server's user).
            hand_over(context, project)
        if self.profiles is not None:
            target = context.working_dir / "profiles.yml"
            if target.exists():
                context.log("INFO", "profiles.yml exists in the working directory; overriding it")
            target.write_text(str(context.render(self.profiles)), encoding="utf-8")
        if self.loadManifest is not None:
            hand_over(context, project / "target")
            _load_manifest(self.loadManifest, context, project)
        commands = [_dbt_command(self, command, context) for command in self.commands]
        task = self.model_copy(update={"commands": commands})
        logs = _DbtLogs(context, json_logs=self.logFormat == "JSON")
        env = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PYTHONUNBUFFERED": "true"}
        try:
            outputs = run_cli(task, cast("RunContext", logs), env=env, image=DEFAULT_IMAGE)
        except TaskFailedError:
            if is_local_runner(self):
                self._results(context, project, {})
            raise
        if is_local_runner(self):
            self._results(context, project, outputs)
        return outputs

    def _results(self, context: RunContext, project: Path, outputs: dict[str, Any]) -> None:
        """Log each node's result, store run_results.json and manifest.json, keep the manifest."""
        files = dict(outputs.get("outputFiles") or {})
        manifest = project / "target" / "manifest.json"
        results = project / "target" / "run_results.json"
        if self.storeManifest is not None and manifest.is_file():
            namespace = str(context.render(self.storeManifest.namespace))
            key = str(context.render(self.storeManifest.key))
            context.kv_put(
                namespace,
                key,
                json.loads(_read(manifest, context.working_dir)),
                action="store a manifest",
            )
            context.log("INFO", f"stored target/manifest.json as {namespace}/{key}")
        if manifest.is_file():
            files["manifest.json"] = context.put_file(_copy(manifest, context), "manifest.json")
        if _flag(context.render(self.parseRunResults)) and results.is_file():
            for result in json.loads(_read(results, context.working_dir)).get("results") or []:
                status = str(result.get("status"))
                level = {"error": "ERROR", "fail": "ERROR", "warn": "WARN"}.get(status, "INFO")
                seconds = result.get("execution_time") or 0
                context.log(level, f"{result.get('unique_id')}: {status} in {seconds:.2f} s")
            files["run_results.json"] = context.put_file(
                _copy(results, context), "run_results.json"
            )
        if files:
            outputs["outputFiles"] = files


class _DbtLogs:
    """The run context, with dbt's JSON log lines turned into log lines at their own level."""

    def __init__(self, context: RunContext, *, json_logs: bool) -> None:
        self._context = context
        self._json = json_logs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def log(self, level: str, message: str) -> None:
        """Forward one line; a dbt JSON event logs its message at its level."""
        if self._json and message.startswith("{"):
            try:
                event = json.loads(message)
            except json.JSONDecodeError:
                event = None
            info = event.get("info") if isinstance(event, dict) else None
            if isinstance(info, dict) and "msg" in info:
                level = _LEVELS.get(str(info.get("level", "")).lower(), level)
                message = _ANSI.sub("", str(info["msg"]))
        self._context.log(level, message)


def _dbt_command(task: DbtCLI, command: str, context: RunContext) -> str:
    """Kestra's additions to a ``dbt`` command: project dir, log format, log path."""
    if not command.startswith("dbt"):
        return command
    if task.projectDir is not None and "--project-dir" not in command:
        command += f" --project-dir {context.render(task.projectDir)}"
    if task.logFormat != "NONE" and "--log-format" not in command:
        command += f" --log-format {task.logFormat.lower()}"
    if "--log-path" not in command:
        command += " --log-path logs"
    return command


def _load_manifest(where: KvStoreManifest, context: RunContext, project: Path) -> None:
    namespace = str(context.render(where.namespace))
    key = str(context.render(where.key))
    found, value = context.kv_get(namespace, key, action="load a manifest")
    if not found or value in (None, ""):
        context.log("WARN", "loadManifest is set but no manifest was found in the KV store")
        return
    target = project / "target" / "manifest.json"
    target.write_text(value if isinstance(value, str) else json.dumps(value), encoding="utf-8")
    hand_over(context, target)


def _read(path: Path, root: Path) -> str:
    """Read a file dbt wrote, refusing a link the sandbox user may have planted."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise TaskFailedError(f"{path.name} lies outside the working directory")
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, encoding="utf-8") as handle:
        return handle.read()


def _copy(path: Path, context: RunContext) -> Path:
    """A copy of a file dbt wrote, for ``put_file`` to move into the stored files."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=context.working_dir, delete=False
    ) as copy:
        copy.write(_read(path, context.working_dir))
    return Path(copy.name)


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)
