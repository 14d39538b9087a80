"""Shell and Python script tasks, run by the process runner."""

from __future__ import annotations

import shutil
import sys
from typing import Any

from controlplane.domain.durations import parse_duration
from controlplane.domain.tasktypes import scripts
from controlplane.runners.process import run_process
from controlplane.tasks.context import RunContext, TaskFailedError

_ScriptTask = (
    scripts.ShellCommands | scripts.ShellScript | scripts.PythonCommands | scripts.PythonScript
)


def _argv(task: _ScriptTask, run: RunContext) -> list[str]:
    before = [str(run.render(c)) for c in task.beforeCommands or []]
    if isinstance(task, scripts.ShellScript | scripts.PythonScript):
        suffix = ".py" if isinstance(task, scripts.PythonScript) else ".sh"
        script = run.working_dir / f"script{suffix}"
        script.write_text(str(run.render(task.script)), encoding="utf-8")
        runner = sys.executable if isinstance(task, scripts.PythonScript) else "/bin/sh"
        body = [f"{runner} {script.name}"]
    else:
        body = [str(run.render(c)) for c in task.commands]
        if isinstance(task, scripts.PythonCommands):
            # `python` in a command means the worker's interpreter, not whatever is on PATH.
            body = [
                c.replace("python ", f"{sys.executable} ", 1) if c.startswith("python ") else c
                for c in body
            ]
    interpreter = [str(run.render(p)) for p in task.interpreter or ["/bin/sh", "-c"]]
    joiner = "\nset -e\n" if task.failFast is True else "\n"
    return [*interpreter, joiner.join([*before, *body])]


def run_script(task: _ScriptTask, run: RunContext) -> dict[str, Any]:
    """Run the script in the task's working directory; outputs from ``::{...}::`` lines."""
    if task.taskRunner is not None and task.taskRunner.type != scripts.PROCESS_RUNNER:
        raise TaskFailedError(
            f"task runner {task.taskRunner.type} is not available in this worker yet"
        )
    _write_input_files(task, run)
    timeout = (
        parse_duration(str(run.render(task.timeout))).total_seconds() if task.timeout else None
    )
    result = run_process(
        _argv(task, run),
        cwd=run.working_dir,
        env={k: str(run.render(v)) for k, v in task.env.items()},
        on_line=run.log,
        timeout=timeout,
        should_stop=run.should_stop,
    )
    if result.timed_out:
        raise TaskFailedError(f"timed out after {task.timeout}")
    if result.killed:
        raise TaskFailedError("killed")
    outputs: dict[str, Any] = {"exitCode": result.exit_code, "vars": result.outputs}
    files = _collect_output_files(task, run)
    if files:
        outputs["outputFiles"] = files
    if result.exit_code != 0:
        raise TaskFailedError(f"command exited with code {result.exit_code}")
    return outputs


def _write_input_files(task: _ScriptTask, run: RunContext) -> None:
    files = task.inputFiles if isinstance(task.inputFiles, dict) else {}
    for name, content in files.items():
        target = (run.working_dir / name).resolve()
        if run.working_dir.resolve() not in target.parents:
            raise TaskFailedError(f"input file {name!r} points outside the working directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(str(run.render(content)), encoding="utf-8")


def _collect_output_files(task: _ScriptTask, run: RunContext) -> dict[str, str]:
    """Copy matching files into the run's store; outputs map their names to stored paths."""
    found: dict[str, str] = {}
    store = run.working_dir.parent / "output-files" / task.id
    for pattern in task.outputFiles or []:
        for path in sorted(run.working_dir.glob(str(run.render(pattern)))):
            if path.is_file():
                name = str(path.relative_to(run.working_dir))
                destination = store / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
                found[name] = str(destination)
    return found
