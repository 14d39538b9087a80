"""Namespace files: write, read and list the files of a namespace.

A path is relative and stays inside the namespace: no leading ``/``, no
``..`` or ``.`` segment, no empty segment, no backslash, no NUL. The same
rule serves the API (a 422 that names it) and flows, which will read a
namespace's files through ``read_namespace_files`` (Kestra's
``namespaceFiles``) into a task's working directory.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.errors import InvalidRequestError, NotFoundError
from controlplane.store import namespace_files as store
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.namespace_files import NamespaceFileRow

MAX_PATH_LENGTH = 500


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a namespace file path, or None when it is one."""
    segments = path.split("/")
    checks = (
        (not path, "the path is empty"),
        (
            len(path) > MAX_PATH_LENGTH,
            f"the path is {len(path)} characters long; the limit is {MAX_PATH_LENGTH}",
        ),
        ("\x00" in path, "the path contains a NUL character"),
        (
            path.startswith("/"),
            "the path is absolute; give it relative to the namespace, as in scripts/run.py",
        ),
        ("\\" in path, "the path contains a backslash; separate folders with '/'"),
        (
            any(segment in {"", ".", ".."} for segment in segments),
            "the path has an empty, '.' or '..' segment; it must stay inside the namespace",
        ),
    )
    return next((message for failed, message in checks if failed), None)


def check_path(path: str) -> str:
    """``path`` when it is valid; ``InvalidRequestError`` otherwise."""
    problem = path_problem(path)
    if problem is not None:
        raise InvalidRequestError(f"namespace file path {path!r}: {problem}")
    return path


def put_file(
    engine: Engine, namespace: str, path: str, content: bytes, *, actor: str
) -> tuple[NamespaceFileRow, bool]:
    """Create or replace a file; (row, created). The same bytes again change nothing."""
    check_path(path)
    with transaction(engine) as session:
        row, created, changed = store.put_file(session, namespace, path, content)
        if changed:
            record_event(
                session,
                actor=actor,
                action="namespace_file.put",
                target=f"namespace:{namespace}",
                summary={"path": path, "sha256": row.sha256, "size": row.size},
            )
        return row, created


def get_file(engine: Engine, namespace: str, path: str) -> NamespaceFileRow:
    """The file, or ``NotFoundError``."""
    check_path(path)
    with Session(engine) as session:
        row = store.get_file(session, namespace, path)
        if row is None:
            raise NotFoundError(f"namespace {namespace} has no file {path}")
        return row


def list_files(engine: Engine, namespace: str) -> Sequence[NamespaceFileRow]:
    """The files of a namespace, by path."""
    with Session(engine) as session:
        return store.list_files(session, namespace)


def delete_file(engine: Engine, namespace: str, path: str, *, actor: str) -> None:
    """Delete a file, or ``NotFoundError``."""
    check_path(path)
    with transaction(engine) as session:
        if not store.delete_file(session, namespace, path):
            raise NotFoundError(f"namespace {namespace} has no file {path}")
        record_event(
            session,
            actor=actor,
            action="namespace_file.delete",
            target=f"namespace:{namespace}",
            summary={"path": path},
        )


def read_namespace_files(engine: Engine, namespace: str) -> dict[str, bytes]:
    """Every file of ``namespace`` by path, for a flow that reads its namespace files."""
    with Session(engine) as session:
        return {row.path: row.content for row in store.list_files(session, namespace)}
