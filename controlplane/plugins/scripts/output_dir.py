"""Kestra's ``{{ outputDir }}`` of script tasks: files written there become ``outputFiles``.

The worker names the folder (``services/worker/variables.py``): one folder of
the task run's working directory, at the path the script sees under the
Process runner and in a Docker container (the working directory is bound at
the worker's own path). The task creates it before the script starts and,
once the script ends, stores every regular file found in it under its path
relative to the folder, as Kestra's ``ScriptService.uploadOutputFiles`` does.
The Kubernetes runner collects no files, so it creates no folder either.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from controlplane.domain.tasktypes import scripts
from controlplane.plugins.api import RunContext, TaskBase
from controlplane.plugins.storage.globs import matching_files


def output_dir(task: TaskBase, run: RunContext) -> Path | None:
    """The task's ``outputDir`` (None under the Kubernetes runner)."""
    if isinstance(getattr(task, "taskRunner", None), scripts.KubernetesRunner):
        return None
    return Path(str(run.render("{{ outputDir }}")))


def prepare_output_dir(task: TaskBase, run: RunContext) -> list[Path]:
    """Create the task's ``outputDir``; the folders created, for the caller to hand over."""
    folder = output_dir(task, run)
    if folder is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    return [folder]


def collect_output_dir(task: TaskBase, run: RunContext) -> dict[str, str]:
    """Store the files the script left in ``outputDir``; their URIs by relative path."""
    folder = output_dir(task, run)
    if folder is None or folder.is_symlink() or not folder.is_dir():
        return {}
    store = run.working_dir.parent / "output-files" / task.id
    found: dict[str, str] = {}
    root = folder.resolve()
    for path in matching_files(folder, ["**"]):
        name = path.relative_to(folder).as_posix()
        # The worker copies as its own user: a link (to the age identity, say) is refused.
        if path.is_symlink() or not path.resolve().is_relative_to(root):
            run.log("WARN", f"output file {name!r} in outputDir is a link; it was not collected")
            continue
        destination = store / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(descriptor, "rb") as reader, destination.open("wb") as writer:
            shutil.copyfileobj(reader, writer)
        found[name] = str(destination)
    return found
