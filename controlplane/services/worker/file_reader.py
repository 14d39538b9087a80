"""Kestra's ``read(path)`` template function, as the worker offers it to one task run.

``read`` returns a file's text. The path is either a file of the running
execution (the URI a task output gave: an absolute path inside the
execution's directory, optionally ``file://``) or a namespace file of the
flow's namespace (``scripts/etl.py``; a leading ``/`` is allowed). With
``namespace=``, a namespace file of another namespace is read when that
namespace lets the flow in (``allowedNamespaces``). Nothing else on the
worker's disk is reachable: paths of other executions are refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from controlplane.domain.cost import MAX_TEXT_SIZE
from controlplane.errors import FlowplaneError
from controlplane.services.execution_files import ExecutionFiles
from controlplane.services.namespace_files import read_namespace_files

if TYPE_CHECKING:
    from controlplane.services.worker.executor import Executor


class ReadError(ValueError):
    """``read()`` could not return the file; the message says why."""


@dataclass(frozen=True)
class FileReader:
    """``read(path, namespace=None)`` for one task run of ``executor``'s execution."""

    executor: Executor
    task_run_id: str

    def __call__(self, path: str, namespace: str | None = None) -> str:
        """The file's text (UTF-8; bytes that are not UTF-8 become U+FFFD)."""
        if not isinstance(path, str) or not path:
            raise ReadError("read() expects the path of a namespace file or of a file output")
        if path.startswith("kestra://"):
            raise ReadError(
                f"read({path!r}): kestra:// URIs name Kestra's internal storage; "
                "pass the URI a task output gave (outputFiles, uri)"
            )
        own = self.executor.execution.namespace
        if namespace is None and self._in_execution(path):
            return self._execution_file(path)
        return self._namespace_file(path, namespace or own)

    def _in_execution(self, path: str) -> bool:
        text = path.removeprefix("file://")
        if not text.startswith("/"):
            return False
        root = os.path.realpath(self.executor.work_dir)
        return Path(os.path.realpath(text)).is_relative_to(root)

    def _execution_file(self, uri: str) -> str:
        try:
            with ExecutionFiles(self.executor.work_dir, self.task_run_id).open(uri) as handle:
                content = handle.read(MAX_TEXT_SIZE * 4 + 1)
        except FlowplaneError as exc:
            raise ReadError(f"read({uri!r}): {exc}") from None
        return _text(uri, content)

    def _namespace_file(self, path: str, namespace: str) -> str:
        own = self.executor.execution.namespace
        if namespace != own:
            try:
                self.executor.authorize(own, namespace, "read its namespace files")
            except FlowplaneError as exc:
                raise ReadError(f"read({path!r}): {exc}") from None
        wanted = path.removeprefix("nsfile://").lstrip("/")
        files = read_namespace_files(self.executor.engine, namespace)
        if wanted not in files:
            where = "a file of this execution nor " if path.startswith("/") else ""
            raise ReadError(f"read({path!r}): not {where}a namespace file of {namespace}")
        return _text(path, files[wanted])


def _text(path: str, content: bytes) -> str:
    text = content.decode("utf-8", errors="replace")
    if len(text) > MAX_TEXT_SIZE:
        raise ReadError(
            f"read({path!r}): the file is over {MAX_TEXT_SIZE // 1024 // 1024} MiB of text, "
            "more than a template may hold; give its URI to the task instead"
        )
    return text
