"""WorkingDirectory: its tasks share one directory, with input, output and cached files."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from controlplane.domain import expressions
from controlplane.domain.fields import State
from controlplane.domain.tasktypes import flowable
from controlplane.plugins.api import Flowable, TaskFailedError, Walk
from controlplane.plugins.namespace_files import write_selected_namespace_files
from controlplane.plugins.storage.files import collect_files, write_files

# Kept in the task run's stored outputs: the namespace files were written before a pause.
_NAMESPACE_FILES_WRITTEN = "namespaceFilesWritten"


class WorkingDirectory(flowable.WorkingDirectory, Flowable):
    """Run tasks in one shared directory, so files pass between them."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {"outputFiles": "files matching outputFiles, by name"}
    SHARES_DIRECTORY: ClassVar[bool] = True

    def resolve(self, walk: Walk) -> State:
        """Write namespace and input files, run the tasks in the shared directory, collect files."""
        shared = walk.shared_dir
        if shared is None:  # the worker creates it for SHARES_DIRECTORY types
            raise TaskFailedError("no shared directory was prepared")
        try:
            self._write_namespace_files(walk, shared)
        except TaskFailedError as exc:
            walk.log("ERROR", str(exc))
            return State.FAILED
        try:
            if self.inputFiles is not None:
                write_files(shared, walk.render(self.inputFiles, "inputFiles"))
                walk.hand_over(shared)
        except (TaskFailedError, expressions.RenderError, ValueError, OSError) as exc:
            walk.log("ERROR", f"inputFiles: {exc}")
            return State.FAILED
        cache = walk.cache_dir() if self.cache else None
        if cache is not None and self.cache is not None:
            ttl = walk.seconds(self.cache.ttl, "cache.ttl") if self.cache.ttl else None
            _restore_cache(cache, shared, ttl)
            walk.hand_over(shared)
        state = walk.run_tasks(self.tasks)
        if cache is not None and self.cache is not None and state != State.FAILED:
            patterns = [str(walk.render(p, "cache.patterns")) for p in self.cache.patterns]
            _save_cache(cache, shared, patterns)
        if self.outputFiles:
            patterns = [str(walk.render(p, "outputFiles")) for p in self.outputFiles]
            found = collect_files(shared, patterns, walk.files_dir())
            walk.keep_outputs({"outputFiles": found}, expose=False)
        return state

    def _write_namespace_files(self, walk: Walk, shared: Path) -> None:
        """Write the namespace files ``namespaceFiles`` selects into the shared folder.

        The walk runs again when a paused execution resumes; the folder then
        holds what the tasks that already ran made of the files, so it is kept
        (only files missing from it are written, as on another worker).
        """
        replay = bool(walk.stored_outputs.get(_NAMESPACE_FILES_WRITTEN))
        written = write_selected_namespace_files(
            self.namespaceFiles,
            shared,
            source=walk,
            own_namespace=str(walk.render("{{ flow.namespace }}", "namespaceFiles")),
            render=lambda value: walk.render(value, "namespaceFiles"),
            log=walk.log,
            if_exists="IGNORE" if replay else None,
        )
        if written:
            walk.hand_over(shared)
        if self.namespaceFiles is not None and not replay:
            walk.keep_outputs({_NAMESPACE_FILES_WRITTEN: True}, expose=False)


def _restore_cache(cache: Path, shared: Path, ttl: float | None) -> None:
    """Copy a WorkingDirectory's cached files into ``shared``, unless older than ``ttl``."""
    stamp = cache / ".saved"
    if not stamp.is_file():
        return
    if ttl is not None and time.time() - stamp.stat().st_mtime > ttl:
        shutil.rmtree(cache, ignore_errors=True)
        return
    for path in cache.rglob("*"):
        if path.is_file() and path != stamp:
            target = shared / path.relative_to(cache)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def _save_cache(cache: Path, shared: Path, patterns: list[str]) -> None:
    """Keep the files of ``shared`` matching ``patterns`` for the next execution."""
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    for pattern in patterns:
        for path in shared.glob(pattern):
            if path.is_file() and shared.resolve() in path.resolve().parents:
                target = cache / path.relative_to(shared)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    (cache / ".saved").touch()
