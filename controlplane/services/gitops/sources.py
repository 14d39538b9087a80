"""Git sources: the repositories Flowplane reconciles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.errors import NotFoundError
from controlplane.services.preconditions import check_if_match
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.tables import GitSourceRow, utcnow


@dataclass(frozen=True)
class SourceInput:
    """The writable attributes of a Git source."""

    url: str
    branch: str = "main"
    flows_path: str = "flows/"
    secrets_path: str = "secrets/"
    poll_interval_seconds: int = 60
    webhook_secret: str | None = None
    approval: Literal["auto", "approval"] = "auto"
    required_approvals: int = 1
    prune: bool = False
    self_heal: bool = False


def source_etag(row: GitSourceRow) -> str:
    """Strong ETag: the source's version counter."""
    return f'"v{row.version}"'


def put_source(
    engine: Engine, source_id: str, data: SourceInput, *, if_match: str | None = None
) -> tuple[GitSourceRow, bool]:
    """Create or replace a source; an identical PUT keeps the version."""
    with transaction(engine) as session:
        row = session.get(GitSourceRow, source_id, with_for_update=True)
        check_if_match(if_match, source_etag(row) if row else None)
        created = row is None
        if row is None:
            row = GitSourceRow(id=source_id, url=data.url, version=0)
        wanted = vars(data)
        if created or any(getattr(row, key) != value for key, value in wanted.items()):
            for key, value in wanted.items():
                setattr(row, key, value)
            row.version += 1
            row.updated_at = utcnow()
            session.add(row)
            fields = sorted(k for k in wanted if k != "webhook_secret")
            record_event(
                session,
                actor="api",
                action="source.put",
                target=f"source:{source_id}",
                summary={"version": row.version, "url": data.url, "fields": fields},
            )
        return row, created


def get_source(engine: Engine, source_id: str) -> GitSourceRow:
    """One source, or ``NotFoundError``."""
    with Session(engine) as session:
        row = session.get(GitSourceRow, source_id)
        if row is None:
            raise NotFoundError(f"Git source {source_id} does not exist")
        return row


def list_sources(engine: Engine) -> Sequence[GitSourceRow]:
    """Every source, by id."""
    with Session(engine) as session:
        return session.exec(select(GitSourceRow).order_by(col(GitSourceRow.id))).all()
