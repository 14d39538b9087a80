"""LocalFiles, and writing and collecting files in a working directory."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from controlplane.domain.tasktypes import core
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.storage.globs import matching_files


class LocalFiles(core.LocalFiles):
    """Write files into, and collect files from, a WorkingDirectory."""

    OUTPUTS: ClassVar[Mapping[str, str]] = {"uris": "the collected files, by name"}

    def run(self, context: RunContext) -> dict[str, Any]:
        """Write ``inputs`` into the working directory and collect ``outputs`` as ``uris``."""
        inputs = context.render(self.inputs) if self.inputs is not None else None
        write_files(context.working_dir, inputs)
        patterns = [str(context.render(p)) for p in self.outputs or []]
        kept = context.working_dir.parent / "output-files" / self.id
        return {"uris": collect_files(context.working_dir, patterns, kept)}


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
    # Kestra's glob matching (globs.py): `**` crosses folders, `out/**` names files.
    for path in matching_files(directory, patterns):
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
