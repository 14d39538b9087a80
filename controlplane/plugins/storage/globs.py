"""Which files of a working directory an ``outputFiles`` pattern names, as Kestra decides.

Kestra tests each file under the working directory against a Java
``PathMatcher`` glob rooted at that directory (``WorkingDir.findAllFilesMatching``):
``*`` and ``?`` stay inside one folder, ``**`` crosses folders, ``{a,b}`` and
``[abc]`` work as in Java. So ``*.csv`` names the CSV files at the top only,
``**.csv`` those at any depth, ``out/**`` everything under ``out`` and ``**``
every file. ``glob:`` and ``regex:`` prefixes choose the syntax explicitly.
Regular files are returned, and symbolic links (never followed) so that the
caller can refuse them by name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from controlplane.plugins.api import TaskFailedError
from controlplane.runners.namespace_files import NamespaceFilesError, PathFilter


def matching_files(directory: Path, patterns: Iterable[str]) -> list[Path]:
    """The files and links under ``directory`` that one of ``patterns`` names, sorted."""
    filters = [_filter(pattern) for pattern in patterns]
    if not filters:
        return []
    found: list[Path] = []
    for folder, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        links = [name for name in dirs if (Path(folder) / name).is_symlink()]
        for name in sorted([*files, *links]):
            path = Path(folder) / name
            if not path.is_symlink() and not path.is_file():
                continue
            relative = path.relative_to(directory).as_posix()
            if any(wanted(relative) for wanted in filters):
                found.append(path)
    return found


def _filter(pattern: str) -> PathFilter:
    # Rooted at the directory: "/" + the pattern, matched against "/" + the file's path.
    rooted = pattern if pattern.startswith(("glob:", "regex:")) else "glob:/" + pattern.lstrip("/")
    try:
        return PathFilter([rooted], [])
    except NamespaceFilesError as exc:
        reason = str(exc).rpartition(": ")[2]
        raise TaskFailedError(f"output files pattern {pattern!r} is invalid: {reason}") from None
