"""Request and response bodies of API v1.

Write models forbid unknown fields: a typo in a Terraform attribute must be an
error, not something silently ignored.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from controlplane.domain.fields import NAMESPACE_PATTERN
from controlplane.services.flows import FlowRead, FlowState
from controlplane.store.db import as_utc
from controlplane.store.tables import FlowRevisionRow, NamespaceRow


def _storable(value: Any, where: str = "value") -> Any:
    """Refuse text no database can hold: NUL characters and lone surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where} contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where} is not valid Unicode (lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, f"{where} key")
            _storable(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _storable(item, f"{where}[{index}]")
    return value


StorableText = Annotated[str, AfterValidator(_storable)]


class WriteModel(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _all_storable(self) -> WriteModel:
        for name in type(self).model_fields:
            _storable(getattr(self, name), name)
        return self


class FlowContent(WriteModel):
    """A flow's YAML source."""

    content: Annotated[str, Field(min_length=1, description="Flow YAML, stored byte for byte")]


class ProblemOut(BaseModel):
    """One located problem in a flow source."""

    file: str | None
    line: int | None
    column: int | None
    path: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    code: str
    message: str
    problems: list[ProblemOut] | None = None


class GitCommit(BaseModel):
    """The Git commit a revision came from."""

    sha: str
    author: str | None
    message: str | None


class _RevisionFields(BaseModel):
    namespace: str
    id: str
    revision: int
    sha256: str = Field(description="sha256 of the source, byte for byte")
    spec_sha256: str = Field(description="sha256 of the normalized flow: equal means same flow")
    origin: str = Field(description="api, terraform or git:<source>")
    git_commit: GitCommit | None
    plan_id: str | None


def _revision_fields(row: FlowRevisionRow) -> dict[str, Any]:
    commit = (
        GitCommit(sha=row.git_commit_sha, author=row.git_author, message=row.git_message)
        if row.git_commit_sha
        else None
    )
    return {
        "namespace": row.namespace,
        "id": row.flow_id,
        "revision": row.revision,
        "sha256": row.source_sha256,
        "spec_sha256": row.spec_sha256,
        "origin": row.origin,
        "git_commit": commit,
        "plan_id": row.plan_id,
    }


class FlowSummary(_RevisionFields):
    """A flow in a list: everything but the source."""

    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, state: FlowState) -> FlowSummary:
        """Build from a stored flow state."""
        return cls(**_flow_fields(state.revision, state.flow.created_at))


class FlowPublic(FlowSummary):
    """A flow with its current source."""

    content: str = Field(description="The source exactly as it was written")

    @classmethod
    def of(cls, state: FlowState | FlowRead) -> FlowPublic:
        """Build from a stored flow state, or from the API's one-statement read."""
        created = state.flow_created_at if isinstance(state, FlowRead) else state.flow.created_at
        return cls(**_flow_fields(state.revision, created), content=state.revision.source)


def _flow_fields(revision: FlowRevisionRow, flow_created_at: datetime) -> dict[str, Any]:
    # ``revision`` may also be a plain row with the same column names (FlowRead).
    return {
        **_revision_fields(revision),
        "created_at": as_utc(flow_created_at),
        "updated_at": as_utc(revision.created_at),
    }


class FlowList(BaseModel):
    """A page of flows."""

    items: list[FlowSummary]
    total: int
    offset: int
    limit: int


class RevisionSummary(_RevisionFields):
    """One revision in a flow's history."""

    deleted: bool = Field(description="True for the tombstone a deletion writes")
    created_at: datetime
    created_by: str | None

    @classmethod
    def of(cls, row: FlowRevisionRow) -> RevisionSummary:
        """Build from a stored revision."""
        return cls(
            **_revision_fields(row),
            deleted=row.deleted,
            created_at=as_utc(row.created_at),
            created_by=row.created_by,
        )


class RevisionPublic(RevisionSummary):
    """One revision with its source."""

    content: str

    @classmethod
    def of(cls, row: FlowRevisionRow) -> RevisionPublic:
        """Build from a stored revision."""
        return cls(**RevisionSummary.of(row).model_dump(), content=row.source)


class RevisionList(BaseModel):
    """A flow's whole history, oldest first."""

    items: list[RevisionSummary]


class ValidationResult(BaseModel):
    """The outcome of validating a flow without storing it."""

    valid: bool
    namespace: str | None = None
    id: str | None = None
    spec_sha256: str | None = Field(default=None, description="sha256 of the normalized flow")
    problems: list[ProblemOut]


def _namespace_glob(value: str) -> str:
    """A namespace name, or a glob of them where ``*`` stands for any run of characters."""
    # Each ``*`` stands in for one valid character, so ``team.*`` and ``*`` pass
    # while ``?``, character classes, spaces and capitals do not.
    if not re.fullmatch(NAMESPACE_PATTERN, value.replace("*", "a")):
        message = f"{value!r} is not a namespace name or glob (such as 'team.*' or '*')"
        raise ValueError(message)
    return value


NamespaceGlob = Annotated[str, Field(max_length=150), AfterValidator(_namespace_glob)]


class NamespaceWrite(WriteModel):
    """The writable attributes of a namespace; a PUT replaces all of them."""

    description: str | None = None
    labels: dict[str, StorableText] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    allowed_namespaces: list[NamespaceGlob] = Field(
        default_factory=list,
        description=(
            "Namespaces (names or globs such as 'team.*') whose flows may act in this one: "
            "KV, Resume, log.Fetch, Subflow, flow triggers. Its own flows always may; "
            "empty lets no other namespace in."
        ),
    )


class NamespacePublic(BaseModel):
    """A namespace."""

    name: str
    description: str | None
    labels: dict[str, str]
    variables: dict[str, Any]
    allowed_namespaces: list[str] = Field(
        description="Namespaces (names or globs) whose flows may act in this one"
    )
    version: int = Field(description="Increases on every change")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: NamespaceRow) -> NamespacePublic:
        """Build from a stored namespace."""
        return cls(
            name=row.name,
            description=row.description,
            labels=row.labels,
            variables=row.variables,
            allowed_namespaces=list(row.allowed_namespaces),
            version=row.version,
            created_at=as_utc(row.created_at),
            updated_at=as_utc(row.updated_at),
        )


class NamespaceList(BaseModel):
    """A page of namespaces."""

    items: list[NamespacePublic]
    total: int
    offset: int
    limit: int


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
