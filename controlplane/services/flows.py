"""Writing and reading flows: revisions, no-op detection, ownership and ETags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from controlplane.domain.normalize import normalize, source_digest, spec_digest
from controlplane.domain.validate import ValidatedFlow, validate_flow
from controlplane.errors import (
    ConflictError,
    InvalidFlowError,
    NotFoundError,
    OwnershipConflictError,
    StoreError,
)
from controlplane.services.namespaces import ensure_namespace
from controlplane.services.preconditions import check_if_match
from controlplane.store import flows as store
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.tables import FlowRevisionRow, FlowRow, GitSourceRow


@dataclass(frozen=True)
class Provenance:
    """Who and what a write comes from; copied into the revision it creates."""

    origin: str = "api"
    actor: str | None = None
    token_id: str | None = None  # the API token that wrote it, for lineage
    git_commit_sha: str | None = None
    git_author: str | None = None
    git_message: str | None = None
    plan_id: str | None = None


@dataclass(frozen=True)
class FlowState:
    """A flow row with its current revision."""

    flow: FlowRow
    revision: FlowRevisionRow

    @property
    def etag(self) -> str:
        """Strong ETag: changes whenever the current revision does."""
        return flow_etag(self.revision)


@dataclass(frozen=True)
class PutResult:
    """The outcome of a PUT: the state after it, and whether it wrote anything."""

    state: FlowState
    created: bool
    changed: bool


def flow_etag(revision: FlowRevisionRow) -> str:
    """The ETag of a flow whose current revision is ``revision``."""
    return f'"{revision.revision}-{revision.source_sha256[:16]}"'


def validate_for_path(namespace: str, flow_id: str, source: str) -> ValidatedFlow:
    """Validate ``source`` and check that its id and namespace match the URL's."""
    validated = validate_flow(source, file=f"{namespace}/{flow_id}.yaml")
    problems = []
    if validated.namespace != namespace:
        problems.append(
            validated.problem(
                f"namespace {validated.namespace!r} does not match {namespace!r} in the URL",
                ("namespace",),
            )
        )
    if validated.id != flow_id:
        problems.append(
            validated.problem(f"id {validated.id!r} does not match {flow_id!r} in the URL", ("id",))
        )
    if problems:
        raise InvalidFlowError(problems)
    return validated


def _ensure_owner(session: Session, flow: FlowRow, origin: str) -> None:
    """Flows synced from Git or a watched directory belong to it; other writers get 409.

    A deleted Git source releases its flows (they stay active, like a
    non-cascading delete in Argo CD), so they can be adopted by another writer.
    """
    if flow.deleted or flow.origin == origin:
        return
    if flow.origin.startswith("local:"):
        raise OwnershipConflictError(
            f"flow {flow.namespace}/{flow.flow_id} is managed by the watched directory "
            f"{flow.origin.removeprefix('local:')!r}; change the file there"
        )
    if flow.origin.startswith("git:"):
        source_id = flow.origin.removeprefix("git:")
        source = session.get(GitSourceRow, source_id)
        if source is not None and source.deleted_at is not None:
            return  # released when its source was deleted
        raise OwnershipConflictError(
            f"flow {flow.namespace}/{flow.flow_id} is managed by Git source {source_id!r}; "
            "change it in that repository"
        )


def put_flow(
    engine: Engine,
    namespace: str,
    flow_id: str,
    source: str,
    provenance: Provenance,
    *,
    if_match: str | None = None,
) -> PutResult:
    """Create or update a flow from ``source``.

    Identical source is a no-op that keeps the revision. Any other change
    (even a comment) writes a new immutable revision.
    """
    validated = validate_for_path(namespace, flow_id, source)
    try:
        with transaction(engine) as session:
            return _put(session, validated, provenance, if_match)
    except StoreError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            raise ConflictError(
                f"flow {namespace}/{flow_id} was written concurrently; retry the request"
            ) from None
        raise


@dataclass(frozen=True)
class Definition:
    """A validated flow ready to store: source plus its normalized spec and digest."""

    namespace: str
    flow_id: str
    source: str
    spec: dict[str, Any]
    spec_sha256: str

    @classmethod
    def of(cls, validated: ValidatedFlow) -> Definition:
        """From a freshly validated source."""
        return cls(
            validated.namespace,
            validated.id,
            validated.source,
            normalize(validated.spec),
            spec_digest(validated.spec),
        )


def _put(
    session: Session, validated: ValidatedFlow, provenance: Provenance, if_match: str | None
) -> PutResult:
    flow, live = store.get_live(session, validated.namespace, validated.id, lock=True)
    check_if_match(if_match, flow_etag(live) if live else None)
    if flow is not None:
        _ensure_owner(session, flow, provenance.origin)
    result = write_definition(session, Definition.of(validated), provenance, flow, live)
    if result.changed:
        record_event(
            session,
            actor=provenance.actor or provenance.origin,
            action="flow.put",
            target=f"flow:{validated.namespace}/{validated.id}",
            summary={
                "revision": result.state.revision.revision,
                "origin": provenance.origin,
                "token_id": provenance.token_id,
            },
        )
    return result


def write_definition(
    session: Session,
    definition: Definition,
    provenance: Provenance,
    flow: FlowRow | None,
    live: FlowRevisionRow | None,
) -> PutResult:
    """Activate ``definition`` in the caller's transaction; identical source is a no-op.

    The API and the GitOps apply both write revisions through here.
    """
    if flow is not None and live is not None and live.source == definition.source:
        return PutResult(FlowState(flow, live), created=False, changed=False)
    ensure_namespace(session, definition.namespace)
    created = flow is None or flow.deleted
    if flow is None:
        flow = FlowRow(
            namespace=definition.namespace,
            flow_id=definition.flow_id,
            revision=0,
            origin=provenance.origin,
        )
    revision = FlowRevisionRow(
        flow_pk=flow.pk or 0,
        namespace=flow.namespace,
        flow_id=flow.flow_id,
        revision=flow.revision + 1,
        source=definition.source,
        spec=definition.spec,
        source_sha256=source_digest(definition.source),
        spec_sha256=definition.spec_sha256,
        origin=provenance.origin,
        git_commit_sha=provenance.git_commit_sha,
        git_author=provenance.git_author,
        git_message=provenance.git_message,
        plan_id=provenance.plan_id,
        created_by=provenance.actor,
    )
    store.insert_revision(session, flow, revision)
    return PutResult(FlowState(flow, revision), created=created, changed=True)


def write_tombstone(
    session: Session, flow: FlowRow, current: FlowRevisionRow, provenance: Provenance
) -> FlowRevisionRow:
    """Mark ``flow`` deleted with a tombstone revision, in the caller's transaction."""
    tombstone = FlowRevisionRow(
        **current.model_dump(
            exclude={
                "pk",
                "revision",
                "deleted",
                "created_at",
                "created_by",
                "origin",
                "plan_id",
                "git_commit_sha",
                "git_author",
                "git_message",
            }
        ),
        revision=current.revision + 1,
        deleted=True,
        origin=provenance.origin,
        plan_id=provenance.plan_id,
        git_commit_sha=provenance.git_commit_sha,
        git_author=provenance.git_author,
        git_message=provenance.git_message,
        created_by=provenance.actor,
    )
    store.insert_revision(session, flow, tombstone)
    return tombstone


def delete_flow(
    engine: Engine,
    namespace: str,
    flow_id: str,
    provenance: Provenance,
    *,
    if_match: str | None = None,
) -> FlowRevisionRow:
    """Write a tombstone revision; the flow's history stays readable."""
    with transaction(engine) as session:
        flow, current = store.get_live(session, namespace, flow_id, lock=True)
        if flow is None or current is None:
            raise NotFoundError(f"flow {namespace}/{flow_id} does not exist")
        check_if_match(if_match, flow_etag(current))
        _ensure_owner(session, flow, provenance.origin)
        tombstone = write_tombstone(session, flow, current, provenance)
        record_event(
            session,
            actor=provenance.actor or provenance.origin,
            action="flow.delete",
            target=f"flow:{namespace}/{flow_id}",
            summary={"revision": tombstone.revision},
        )
        return tombstone


# Flow and live revision in one statement, through the two unique indexes
# (namespace, flow_id) and (flow_pk, revision). The parsed spec is not loaded.
_LIVE_FLOW = (
    select(FlowRow, FlowRevisionRow)
    .join(FlowRevisionRow, store.LIVE_REVISION)
    .options(defer(FlowRevisionRow.spec))  # type: ignore[arg-type]
)


def get_flow(engine: Engine, namespace: str, flow_id: str) -> FlowState:
    """The live flow and its current revision; ``NotFoundError`` when missing or deleted.

    One indexed query; the revision's ``spec`` is not loaded (read it through
    ``get_revision`` when needed).
    """
    statement = _LIVE_FLOW.where(
        col(FlowRow.namespace) == namespace,
        col(FlowRow.flow_id) == flow_id,
        col(FlowRow.deleted).is_(False),
    )
    with Session(engine) as session:
        found = session.exec(statement).first()
    if found is None:
        raise NotFoundError(f"flow {namespace}/{flow_id} does not exist")
    flow, revision = found
    return FlowState(flow, revision)


@dataclass(frozen=True, slots=True)
class FlowRead:
    """A live flow as ``GET /flows/{namespace}/{id}`` answers it.

    ``revision`` is a plain row with the live revision's columns (not its
    spec); ``flow_created_at`` is when the flow was first stored.
    """

    revision: Any
    flow_created_at: datetime

    @property
    def etag(self) -> str:
        """Strong ETag: changes whenever the current revision does."""
        return flow_etag(self.revision)


_REVISIONS = FlowRevisionRow.__table__  # type: ignore[attr-defined]
_FLOWS = FlowRow.__table__  # type: ignore[attr-defined]
# The API's hottest read, as one Core statement built once with bound
# parameters: no ORM rows and no per-request cache key, 41 µs instead of
# 288 µs for the ORM query above (timed in process, 3,000 reads each).
_FLOW_READ = (
    sa_select(
        *(column for column in _REVISIONS.columns if column.name != "spec"),
        _FLOWS.c.created_at.label("flow_created_at"),
    )
    .join_from(_FLOWS, _REVISIONS, store.LIVE_REVISION)
    .where(
        _FLOWS.c.namespace == bindparam("namespace"),
        _FLOWS.c.flow_id == bindparam("flow_id"),
        _FLOWS.c.deleted.is_(False),
    )
)


def read_flow(engine: Engine, namespace: str, flow_id: str) -> FlowRead:
    """The live flow as the API serves it; ``NotFoundError`` when missing or deleted."""
    with engine.connect() as connection:
        row = connection.execute(_FLOW_READ, {"namespace": namespace, "flow_id": flow_id}).first()
    if row is None:
        raise NotFoundError(f"flow {namespace}/{flow_id} does not exist")
    return FlowRead(row, row.flow_created_at)


def list_revisions(engine: Engine, namespace: str, flow_id: str) -> Sequence[FlowRevisionRow]:
    """The full history, tombstones included; 404 only for a flow that never existed."""
    with Session(engine) as session:
        flow = store.get_flow_row(session, namespace, flow_id)
        if flow is None or flow.pk is None:
            raise NotFoundError(f"flow {namespace}/{flow_id} does not exist")
        return store.list_revisions(session, flow.pk)


def get_revision(engine: Engine, namespace: str, flow_id: str, revision: int) -> FlowRevisionRow:
    """One revision of a flow, deleted flows included."""
    with Session(engine) as session:
        flow = store.get_flow_row(session, namespace, flow_id)
        found = store.get_revision(session, flow.pk, revision) if flow and flow.pk else None
        if found is None:
            raise NotFoundError(f"flow {namespace}/{flow_id} has no revision {revision}")
        return found


def list_flows(
    engine: Engine, flt: store.FlowFilter, *, offset: int, limit: int
) -> tuple[list[FlowState], int]:
    """A page of flows matching ``flt``, and the total."""
    with Session(engine) as session:
        rows, total = store.list_active(session, flt, offset=offset, limit=limit)
        return [FlowState(flow, revision) for flow, revision in rows], total
