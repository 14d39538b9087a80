"""The audit log: an append-only hash chain of every mutation, anchored by signed checkpoints.

The chain alone shows that no event was edited, inserted or removed *before*
the last one: each hash covers the previous. It cannot show that the last
events were deleted (truncation), nor that the whole chain was recomputed
(rewrite). A checkpoint closes both: it signs the head's position, hash and
event count with the server's key (ed25519, from the ``cryptography``
package, derived from the server's age identity, so no new key file to keep).
Verification then needs the event a checkpoint names to be there, with that
hash: a truncated or rewritten chain no longer matches. An exported
checkpoint, kept elsewhere, catches even an attacker who also deletes the
checkpoints table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.store.db import as_utc, transaction
from controlplane.store.tables import AuditCheckpointRow, AuditEventRow, utcnow

GENESIS = "0" * 64
# Any constant: PostgreSQL advisory lock that serializes appends, so two
# concurrent transactions cannot both link to the same previous event.
_APPEND_LOCK = 0x464C4F57


def event_hash(
    prev_hash: str,
    *,
    at: str,
    actor: str,
    action: str,
    target: str,
    summary: Any,
    request_id: str | None = None,
) -> str:
    """sha256 over the previous hash and the event's canonical JSON."""
    fields: dict[str, Any] = {
        "prev": prev_hash,
        "at": at,
        "actor": actor,
        "action": action,
        "target": target,
        "summary": summary,
    }
    # Hashed only when present, so events written before request ids existed still verify.
    if request_id is not None:
        fields["request_id"] = request_id
    body = json.dumps(
        fields,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _at(row: AuditEventRow) -> str:
    return row.at.replace(tzinfo=None).isoformat(timespec="microseconds")


def record_event(
    session: Session, *, actor: str, action: str, target: str, summary: dict[str, Any]
) -> AuditEventRow:
    """Append one event in the caller's transaction (so it commits with the change)."""
    if session.get_bind().dialect.name == "postgresql":
        session.exec(text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_APPEND_LOCK))  # type: ignore[call-overload]
    # The previous hash alone: a whole row (its summary JSON) was most of this call.
    last = session.exec(
        select(col(AuditEventRow.hash)).order_by(col(AuditEventRow.pk).desc()).limit(1)
    ).first()
    prev = last if last is not None else GENESIS
    # The API binds the request id into structlog's context for each request.
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    row = AuditEventRow(
        at=utcnow(),
        actor=actor,
        action=action,
        target=target,
        request_id=request_id,
        summary=summary,
        prev_hash=prev,
        hash="",
    )
    row.hash = event_hash(
        prev,
        at=_at(row),
        actor=actor,
        action=action,
        target=target,
        summary=summary,
        request_id=request_id,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ChainReport:
    """The result of checking the chain (and its checkpoints, when a key was given)."""

    valid: bool
    events: int
    first_broken: int | None = None
    reason: str = ""
    checkpoints: int = 0
    anchored_at: int | None = None  # position of the newest checkpoint that matched
    problems: tuple[str, ...] = field(default_factory=tuple)
    # Events whose hash was recomputed: all of them for a full check, only
    # those after the newest valid checkpoint for an incremental one.
    checked: int = 0
    full: bool = True


ALGORITHM = "ed25519"
_KDF_INFO = b"flowplane audit checkpoint v1"


@dataclass(frozen=True)
class Signer:
    """The server's checkpoint key; ``key_id`` is the hex of its public key."""

    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        """The key that checks signatures."""
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        """The public key, hex: recorded on each checkpoint."""
        raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return raw.hex()


def signer_from_identity(identity: str) -> Signer:
    """The checkpoint key derived (HKDF-SHA256) from the server's age identity string.

    Whoever holds the identity file can sign and check; the database alone cannot.
    """
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO).derive(
        identity.strip().encode()
    )
    return Signer(Ed25519PrivateKey.from_private_bytes(seed))


def _statement(position: int, head_hash: str, events: int) -> bytes:
    body = {"position": position, "head_hash": head_hash, "events": events}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def write_checkpoint(session: Session, signer: Signer) -> AuditCheckpointRow:
    """Sign the chain's head now, in the caller's transaction."""
    last = session.exec(
        select(AuditEventRow).order_by(col(AuditEventRow.pk).desc()).limit(1)
    ).first()
    count = int(session.exec(select(func.count()).select_from(AuditEventRow)).one())
    position, head = (last.pk or 0, last.hash) if last else (0, GENESIS)
    signature = signer.private.sign(_statement(position, head, count)).hex()
    row = AuditCheckpointRow(
        position=position,
        head_hash=head,
        events=count,
        algorithm=ALGORITHM,
        key_id=signer.key_id,
        signature=signature,
    )
    session.add(row)
    session.flush()
    return row


def checkpoint_if_due(engine: Engine, signer: Signer, *, every: timedelta) -> bool:
    """Write a checkpoint when the chain grew since the last one and ``every`` has passed."""
    with transaction(engine) as session:
        latest = session.exec(
            select(AuditCheckpointRow).order_by(col(AuditCheckpointRow.pk).desc()).limit(1)
        ).first()
        last = session.exec(
            select(AuditEventRow).order_by(col(AuditEventRow.pk).desc()).limit(1)
        ).first()
        if last is None or (latest is not None and latest.position == last.pk):
            return False
        if latest is not None and utcnow() - as_utc(latest.at) < every:
            return False
        write_checkpoint(session, signer)
        return True


def checkpoint_dict(row: AuditCheckpointRow) -> dict[str, Any]:
    """The exported form of a checkpoint (keep it outside the database)."""
    return {
        "at": as_utc(row.at).isoformat(),
        "position": row.position,
        "head_hash": row.head_hash,
        "events": row.events,
        "algorithm": row.algorithm,
        "key_id": row.key_id,
        "signature": row.signature,
    }


def list_checkpoints(session: Session) -> list[dict[str, Any]]:
    """Every checkpoint, oldest first, in the exported form."""
    rows = session.exec(select(AuditCheckpointRow).order_by(col(AuditCheckpointRow.pk))).all()
    return [checkpoint_dict(r) for r in rows]


def _check_checkpoint(
    point: Mapping[str, Any],
    by_position: Mapping[int, AuditEventRow],
    signer: Signer,
    *,
    counted: bool = False,
) -> str | None:
    """Why a checkpoint does not hold for this chain, or None when it does."""
    position, head, events = int(point["position"]), str(point["head_hash"]), int(point["events"])
    if point.get("key_id") != signer.key_id:
        return f"checkpoint at event {position} was signed by another key"
    try:
        signature = bytes.fromhex(str(point["signature"]))
        signer.public.verify(signature, _statement(position, head, events))
    except (InvalidSignature, ValueError):
        return f"checkpoint at event {position} has a bad signature (forged or edited)"
    row = by_position.get(position)
    if position and row is None:
        return f"truncated: checkpoint names event {position}, which is gone"
    if row is not None and row.hash != head:
        return f"rewritten: event {position} no longer has the hash its checkpoint signed"
    if not counted and sum(1 for pk in by_position if pk <= position) != events:
        return f"events up to {position} were removed or added since its checkpoint"
    return None


def verify_chain(
    session: Session,
    signer: Signer | None = None,
    *,
    exported: Iterable[Mapping[str, Any]] = (),
) -> ChainReport:
    """Recompute every hash in order; name the first event that does not fit.

    With ``signer``, every stored checkpoint (and every ``exported`` one) must
    be signed by it and match the chain: that detects truncation and rewrites.
    """
    report = replace(_verify_links(session), events=_count(session))
    if signer is None or not report.valid:
        return report
    rows = session.exec(select(AuditEventRow)).all()
    by_position = {r.pk or 0: r for r in rows}
    points = [*list_checkpoints(session), *exported]
    problems = [p for p in (_check_checkpoint(c, by_position, signer) for c in points) if p]
    anchored = max((int(c["position"]) for c in points), default=None)
    if problems:
        return ChainReport(
            valid=False,
            events=report.events,
            reason=problems[0],
            checkpoints=len(points),
            problems=tuple(problems),
            checked=report.checked,
        )
    return ChainReport(
        valid=True,
        events=report.events,
        checkpoints=len(points),
        anchored_at=anchored,
        checked=report.checked,
    )


def _verify_links(session: Session, *, after: int = 0, prev: str = GENESIS) -> ChainReport:
    """Recompute hashes from the event after position ``after``, whose predecessor is ``prev``.

    Rows are read in pages of ``_LINK_PAGE``, so a long chain never sits in memory
    whole. ``events`` counts the rows checked.
    """
    checked = 0
    while True:
        rows: Sequence[AuditEventRow] = session.exec(
            select(AuditEventRow)
            .where(col(AuditEventRow.pk) > after)
            .order_by(col(AuditEventRow.pk))
            .limit(_LINK_PAGE)
        ).all()
        for row in rows:
            broken = _link_problem(row, prev)
            if broken:
                return ChainReport(
                    valid=False, events=checked + 1, first_broken=row.pk, reason=broken
                )
            checked += 1
            prev = row.hash
        if len(rows) < _LINK_PAGE:
            return ChainReport(valid=True, events=checked, checked=checked)
        after = rows[-1].pk or after
        session.expunge_all()  # keep memory flat over a long chain


_LINK_PAGE = 5000


def _link_problem(row: AuditEventRow, prev: str) -> str | None:
    if row.prev_hash != prev:
        return "prev_hash does not match the event before"
    expected = event_hash(
        prev,
        at=_at(row),
        actor=row.actor,
        action=row.action,
        target=row.target,
        summary=row.summary,
        request_id=row.request_id,
    )
    if row.hash != expected:
        return "content does not match its hash"
    return None


def _count(session: Session, *, upto: int | None = None) -> int:
    statement = select(func.count()).select_from(AuditEventRow)
    if upto is not None:
        statement = statement.where(col(AuditEventRow.pk) <= upto)
    return int(session.exec(statement).one())


def _anchor_problem(session: Session, point: AuditCheckpointRow, signer: Signer) -> str | None:
    """Why a stored checkpoint does not hold, read with indexed lookups only."""
    row = session.get(AuditEventRow, point.position) if point.position else None
    by_position = {point.position: row} if row is not None else {}
    problem = _check_checkpoint(checkpoint_dict(point), by_position, signer, counted=True)
    if problem is None and _count(session, upto=point.position) != point.events:
        return f"events up to {point.position} were removed or added since its checkpoint"
    return problem


def verify_from_checkpoint(session: Session, signer: Signer) -> ChainReport:
    """Verify the chain from its newest signed checkpoint forward (the cheap, routine check).

    The newest checkpoint must be signed by ``signer`` and still match the
    chain (its event present with the signed hash, the signed count of events
    up to it), which catches truncation and any rewrite that recomputed the
    hashes. Only the events after it are re-hashed. An event before it edited
    in place, its stored hash left alone, is found by ``verify_chain`` (the
    API's ``full=true``), which re-hashes everything. Without a checkpoint,
    this is the full check.
    """
    newest = session.exec(
        select(AuditCheckpointRow).order_by(col(AuditCheckpointRow.pk).desc()).limit(1)
    ).first()
    total = _count(session)
    if newest is None:
        report = _verify_links(session)
        return replace(report, events=total, full=False)
    problem = _anchor_problem(session, newest, signer)
    if problem is not None:
        return ChainReport(
            valid=False,
            events=total,
            reason=problem,
            checkpoints=1,
            problems=(problem,),
            full=False,
        )
    tail = _verify_links(session, after=newest.position, prev=newest.head_hash)
    return replace(
        tail,
        events=total,
        checkpoints=1,
        anchored_at=newest.position,
        full=False,
    )
