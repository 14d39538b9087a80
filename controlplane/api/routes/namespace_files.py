"""``/api/v1/namespaces/{ns}/files``: the files of a namespace (Kestra's namespace files).

Editors write, viewers read, and a scoped token reaches only its namespaces.
A file is sent as text (``content``) or as bytes (``content_base64``) and read
back as base64 with its sha256, so Terraform can tell drift without guessing
at encodings. Bodies obey ``max_body_bytes`` like every request. A path is
relative and stays inside the namespace (``services.namespace_files``): a
leading ``/``, a ``..`` segment or a NUL is a 422.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import AfterValidator, BaseModel, Field, model_validator

from controlplane.api.auth import Editor, Viewer
from controlplane.api.deps import EngineDep
from controlplane.api.schemas import ErrorBody, WriteModel
from controlplane.domain.fields import NAMESPACE_PATTERN
from controlplane.services import namespace_files as service
from controlplane.store.db import as_utc
from controlplane.store.namespace_files import NamespaceFileRow

router = APIRouter(prefix="/api/v1/namespaces/{namespace}/files", tags=["namespace files"])
Namespace = Annotated[str, Path(pattern=NAMESPACE_PATTERN, max_length=150)]


def _valid_path(path: str) -> str:
    problem = service.path_problem(path)
    if problem is not None:
        raise ValueError(problem)
    return path


FilePath = Annotated[
    str,
    Path(max_length=service.MAX_PATH_LENGTH, description="Relative, e.g. scripts/etl.py"),
    AfterValidator(_valid_path),
]
_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 422)
}


class FileWrite(WriteModel):
    """A file's content: ``content`` (UTF-8 text) or ``content_base64`` (any bytes)."""

    content: str | None = Field(default=None, description="Text, stored as UTF-8")
    content_base64: str | None = Field(default=None, description="Bytes, base64-encoded")

    @model_validator(mode="after")
    def _exactly_one(self) -> FileWrite:
        if (self.content is None) == (self.content_base64 is None):
            msg = "give exactly one of content and content_base64"
            raise ValueError(msg)
        if self.content_base64 is not None:
            try:
                base64.b64decode(self.content_base64, validate=True)
            except binascii.Error:
                msg = "content_base64 is not valid base64"
                raise ValueError(msg) from None
        return self

    def data(self) -> bytes:
        """The file's bytes."""
        if self.content_base64 is not None:
            return base64.b64decode(self.content_base64)
        return (self.content or "").encode()


class FileMeta(BaseModel):
    """A file's metadata."""

    namespace: str
    path: str
    size: int = Field(description="Bytes")
    sha256: str = Field(description="sha256 of the bytes, hex")
    updated_at: datetime

    @classmethod
    def of(cls, row: NamespaceFileRow) -> FileMeta:
        """Build from a stored file."""
        return cls(
            namespace=row.namespace,
            path=row.path,
            size=row.size,
            sha256=row.sha256,
            updated_at=as_utc(row.updated_at),
        )


class FilePublic(FileMeta):
    """A file with its content."""

    content_base64: str

    @classmethod
    def of(cls, row: NamespaceFileRow) -> FilePublic:
        """Build from a stored file, content included."""
        return cls(
            **FileMeta.of(row).model_dump(),
            content_base64=base64.b64encode(row.content).decode(),
        )


@router.get("", response_model=list[FileMeta], responses=_ERRORS)
def list_files(engine: EngineDep, principal: Viewer, namespace: Namespace) -> list[FileMeta]:
    """A namespace's files, by path (metadata only)."""
    principal.check_namespace(namespace)
    return [FileMeta.of(r) for r in service.list_files(engine, namespace)]


@router.put(
    "/{path:path}", response_model=FileMeta, responses={201: {"model": FileMeta}, **_ERRORS}
)
def put_file(
    engine: EngineDep,
    principal: Editor,
    namespace: Namespace,
    path: FilePath,
    body: FileWrite,
    response: Response,
) -> FileMeta:
    """Create or replace a file; the same bytes again change nothing."""
    principal.check_namespace(namespace)
    row, created = service.put_file(engine, namespace, path, body.data(), actor=principal.actor)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return FileMeta.of(row)


@router.get("/{path:path}", response_model=FilePublic, responses=_ERRORS)
def get_file(
    engine: EngineDep, principal: Viewer, namespace: Namespace, path: FilePath
) -> FilePublic:
    """One file with its content (base64)."""
    principal.check_namespace(namespace)
    return FilePublic.of(service.get_file(engine, namespace, path))


@router.delete("/{path:path}", status_code=204, responses=_ERRORS)
def delete_file(
    engine: EngineDep, principal: Editor, namespace: Namespace, path: FilePath
) -> Response:
    """Delete a file; 404 when there is none."""
    principal.check_namespace(namespace)
    service.delete_file(engine, namespace, path, actor=principal.actor)
    return Response(status_code=204)
