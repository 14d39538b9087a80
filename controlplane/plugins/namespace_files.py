"""Kestra's ``namespaceFiles``: which namespace files a task gets, written into its directory.

Script tasks write them into their working directory, a WorkingDirectory into
the folder its tasks share; both read ``namespaceFiles`` the same way here.
Matching and the link-safe writing live in ``controlplane.runners.namespace_files``;
reading another namespace's files is checked against its ``allowedNamespaces``
by whoever serves ``namespace_files`` (the worker's run context, or its walk).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from controlplane.domain.tasktypes.scripts import NamespaceFiles
from controlplane.plugins.api import TaskFailedError
from controlplane.runners.namespace_files import NamespaceFilesError, write_namespace_files


class NamespaceFileSource(Protocol):
    """What serves namespace files: ``RunContext`` and ``Walk`` both do."""

    def namespace_files(
        self, include: Sequence[str], exclude: Sequence[str], *, namespace: str | None = None
    ) -> dict[str, bytes]:
        """The files of ``namespace`` (default: the flow's) matching the globs, by path."""
        ...


def write_selected_namespace_files(
    config: NamespaceFiles | None,
    directory: Path,
    *,
    source: NamespaceFileSource,
    own_namespace: str,
    render: Callable[[Any], Any],
    log: Callable[[str, str], None],
    if_exists: str | None = None,
) -> list[Path]:
    """Write the namespace files ``config`` selects into ``directory``; return what was written.

    ``namespaces`` are read in order, so a path in a later namespace wins, as in
    Kestra; ``folderPerNamespace`` puts each namespace's files under its name.
    ``if_exists`` overrides ``config.ifExists`` (a replay keeps what is there).
    Any failure raises TaskFailedError starting with ``namespaceFiles:``.
    """
    if config is None or not _flag(render(config.enabled)):
        return []
    include = [str(render(p)) for p in config.include or []]
    exclude = [str(render(p)) for p in config.exclude or []]
    namespaces = [str(render(n)) for n in config.namespaces or [own_namespace]]
    per_namespace = _flag(render(config.folderPerNamespace))
    files: dict[str, bytes] = {}
    try:
        for namespace in namespaces:
            found = source.namespace_files(include, exclude, namespace=namespace)
            files.update({f"{namespace}/{p}" if per_namespace else p: c for p, c in found.items()})
        written = write_namespace_files(
            directory, files, if_exists=if_exists or config.ifExists, log=log
        )
    except (NamespaceFilesError, OSError) as exc:
        raise TaskFailedError(f"namespaceFiles: {exc}") from None
    log("INFO", f"namespaceFiles: {len(files)} file(s) from {', '.join(namespaces)}")
    return written


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"", "false", "0", "no"}
    return bool(value)
