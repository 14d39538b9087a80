"""Files in a task's working directory: LocalFiles, WorkingDirectory's files, log files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from sqlmodel import Session

from controlplane.domain.tasktypes import TaskBase, core
from controlplane.store import executions as store
from controlplane.store.db import as_utc
from controlplane.tasks.context import RunContext, TaskFailedError


def run_local_files(task: core.LocalFiles, run: RunContext) -> dict[str, Any]:
    """Write ``inputs`` into the working directory and collect ``outputs`` as ``uris``."""
    write_files(run.working_dir, run.render(task.inputs) if task.inputs is not None else None)
    patterns = [str(run.render(p)) for p in task.outputs or []]
    store = run.working_dir.parent / "output-files" / task.id
    return {"uris": collect_files(run.working_dir, patterns, store)}


def write_files(directory: Path, files: Any) -> list[str]:
    """Write ``{relative name: content}`` under ``directory``; return the names written.

    ``files`` may also be a JSON string of that map (a rendered template). A
    name that would land outside the directory fails the task.
    """
    if files is None:
        return []
    if isinstance(files, str):
        try:
            files = json.loads(files)
        except json.JSONDecodeError:
            raise TaskFailedError("input files must be a map of file names to contents") from None
    if not isinstance(files, dict):
        raise TaskFailedError("input files must be a map of file names to contents")
    root = directory.resolve()
    for name, content in files.items():
        target = (root / str(name)).resolve()
        if root not in target.parents:
            raise TaskFailedError(f"input file {name!r} points outside the working directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else json.dumps(content, default=str)
        target.write_text(text, encoding="utf-8")
    return [str(name) for name in files]


def collect_files(directory: Path, patterns: list[str], store: Path) -> dict[str, str]:
    """Copy files matching the glob ``patterns`` into ``store``; map their names to copies."""
    found: dict[str, str] = {}
    root = directory.resolve()
    for pattern in patterns:
        for path in sorted(directory.glob(pattern)):
            # A script may plant a link to a server file (the age identity): the
            # worker copies as root, so links and paths leaving the directory are skipped.
            if path.is_symlink() or not path.resolve().is_relative_to(root) or not path.is_file():
                continue
            name = str(path.relative_to(directory))
            destination = store / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as reader, destination.open("wb") as writer:
                shutil.copyfileobj(reader, writer)
            found[name] = str(destination)
    return found


def write_log_file(task: TaskBase, run: RunContext) -> str:
    """Write this task run's log lines to a file (Kestra's ``logToFile``); return its path.

    The lines are read back from the execution's log, so they are masked and
    filtered by ``logLevel`` exactly as the log shows them.
    """
    run_id = str(run.render("{{ taskrun.id }}"))
    with Session(run.engine) as session:
        rows = [r for r in store.logs_of(session, run.execution.id) if r.task_run_id == run_id]
    path = run.working_dir.parent / "logs" / f"{task.id}-{run_id}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{as_utc(r.timestamp).isoformat()} {r.level} {r.message}\n" for r in rows]
    path.write_text("".join(lines), encoding="utf-8")
    return str(path)
