"""Namespace files as a running flow may read them (``namespace_files`` of RunContext and Walk).

A flow reads its own namespace's files; another namespace's only when that
namespace lets the flow's namespace in (``allowedNamespaces``), checked here
for script tasks and WorkingDirectory alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from controlplane.errors import FlowplaneError
from controlplane.plugins.api import TaskFailedError
from controlplane.runners.namespace_files import PathFilter
from controlplane.services.namespace_files import read_namespace_files
from controlplane.services.namespaces import ensure_namespace_allowed

if TYPE_CHECKING:
    from controlplane.services.worker.executor import Executor


def matching_namespace_files(
    executor: Executor,
    include: Sequence[str],
    exclude: Sequence[str],
    namespace: str | None = None,
) -> dict[str, bytes]:
    """The files of ``namespace`` (default: the run's) matching Kestra's globs, by path.

    Another namespace must allow the run's namespace, else TaskFailedError says so.
    """
    own = executor.execution.namespace
    target = namespace or own
    try:
        ensure_namespace_allowed(executor.engine, own, target, "read its namespace files")
    except FlowplaneError as exc:
        raise TaskFailedError(str(exc)) from None
    files = read_namespace_files(executor.engine, target)
    wanted = PathFilter(include, exclude)
    return {path: content for path, content in files.items() if wanted(path)}
