"""Git sources: the repositories Flowplane reconciles.

The webhook secret is write-only and kept age-encrypted to the server's
identity; only signature checks decrypt it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.errors import NotFoundError
from controlplane.services.preconditions import check_if_match
from controlplane.services.secrets import Keyring
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.tables import GitSourceRow, PlanRow, utcnow


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
    engine: Engine,
    source_id: str,
    data: SourceInput,
    *,
    actor: str,
    keyring: Keyring,
    if_match: str | None = None,
) -> tuple[GitSourceRow, bool]:
    """Create or replace a source; an identical PUT keeps the version.

    The webhook secret is stored encrypted with ``keyring``; sending the same
    secret again is no change.
    """
    with transaction(engine) as session:
        row = session.get(GitSourceRow, source_id, with_for_update=True)
        check_if_match(if_match, source_etag(row) if row else None)
        created = row is None or row.deleted_at is not None
        if row is None:
            row = GitSourceRow(id=source_id, url=data.url, version=0)
        row.deleted_at = None  # a PUT of a deleted source's id brings it back
        wanted = {k: v for k, v in vars(data).items() if k != "webhook_secret"}
        secret_changed = webhook_secret_of(row, keyring) != data.webhook_secret
        if created or secret_changed or any(getattr(row, k) != v for k, v in wanted.items()):
            for key, value in wanted.items():
                setattr(row, key, value)
            _seal(row, keyring, data.webhook_secret)
            row.version += 1
            row.updated_at = utcnow()
            session.add(row)
            fields = sorted(wanted)
            record_event(
                session,
                actor=actor,
                action="source.put",
                target=f"source:{source_id}",
                summary={"version": row.version, "url": data.url, "fields": fields},
            )
        return row, created


def get_source(engine: Engine, source_id: str) -> GitSourceRow:
    """One source, or ``NotFoundError``."""
    with Session(engine) as session:
        row = session.get(GitSourceRow, source_id)
        if row is None or row.deleted_at is not None:
            raise NotFoundError(f"Git source {source_id} does not exist")
        return row


def list_sources(engine: Engine) -> Sequence[GitSourceRow]:
    """Every live source, by id."""
    with Session(engine) as session:
        return session.exec(
            select(GitSourceRow)
            .where(col(GitSourceRow.deleted_at).is_(None))
            .order_by(col(GitSourceRow.id))
        ).all()


def delete_source(
    engine: Engine, source_id: str, *, actor: str, if_match: str | None = None
) -> None:
    """Stop syncing a source; its flows stay active and are released to other writers.

    The row is kept (marked deleted) because plans and revisions point at it
    for lineage. Plans still pending are superseded, so nothing it planned can
    be applied afterwards.
    """
    with transaction(engine) as session:
        row = session.get(GitSourceRow, source_id, with_for_update=True)
        if row is None or row.deleted_at is not None:
            raise NotFoundError(f"Git source {source_id} does not exist")
        check_if_match(if_match, source_etag(row))
        row.deleted_at = utcnow()
        row.webhook_secret = None
        row.webhook_secret_ciphertext = None
        session.add(row)
        pending = session.exec(
            select(PlanRow).where(
                col(PlanRow.source_id) == source_id, col(PlanRow.status) == "pending"
            )
        ).all()
        for plan in pending:
            plan.status = "superseded"
            plan.secret_payload = {}
            session.add(plan)
        record_event(
            session,
            actor=actor,
            action="source.delete",
            target=f"source:{source_id}",
            summary={"superseded_plans": [p.id for p in pending]},
        )


def has_webhook_secret(row: GitSourceRow) -> bool:
    """True when the source checks push signatures."""
    return bool(row.webhook_secret_ciphertext or row.webhook_secret)


def webhook_secret_of(row: GitSourceRow, keyring: Keyring) -> str | None:
    """The plain webhook secret, for checking a signature; None when there is none."""
    if row.webhook_secret_ciphertext:
        return keyring.decrypt(row.webhook_secret_ciphertext)
    return row.webhook_secret  # written before secrets were encrypted


def _seal(row: GitSourceRow, keyring: Keyring, secret: str | None) -> None:
    row.webhook_secret_ciphertext = keyring.encrypt(secret) if secret else None
    row.webhook_secret = None


def seal_webhook_secrets(engine: Engine, keyring: Keyring) -> int:
    """Encrypt the plaintext webhook secrets stored before migration 0011; how many were."""
    with transaction(engine) as session:
        rows = session.exec(
            select(GitSourceRow).where(col(GitSourceRow.webhook_secret).is_not(None))
        ).all()
        for row in rows:
            _seal(row, keyring, row.webhook_secret)
            session.add(row)
        return len(rows)
