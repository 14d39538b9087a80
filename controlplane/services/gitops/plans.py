"""Sync a source into a stored plan; approve, reject and apply plans; roll back.

A plan stores the exact sources and normalized specs it will activate, and
the new secret values sealed to the server, so apply writes what reviewers
saw without reading Git again. A plan is one of four kinds:

- ``sync``: a new commit of the branch (one per commit, however many webhooks);
- ``heal``: with ``self_heal``, the corrections that bring the flows back to
  the last applied commit after they drifted (``drift.py`` says how);
- ``rollback``: the tree of an older commit of the branch, asked for by someone;
- ``local``: the contents of a watched directory (``flowplane server --watch``);
  it has no commit, so ``target_commit`` holds the sha256 of the files read.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.domain.plan import Action, ActiveFlow, compute_plan, render_plan_text
from controlplane.errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    Problem,
    StoreError,
)
from controlplane.metrics import PLAN_DURATION, SYNC_DURATION
from controlplane.services.flows import Definition, Provenance, write_definition, write_tombstone
from controlplane.services.gitops.repository import Snapshot, read_directory, read_snapshot
from controlplane.services.gitops.secret_files import (
    SecretSet,
    decrypt_secret_files,
    secret_inputs,
    secret_rows_for_plan,
)
from controlplane.services.gitops.sources import get_source
from controlplane.services.secrets import Keyring, load_keyring, remove_owned, store_sealed
from controlplane.store import flows as flow_store
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.flows import FlowFilter
from controlplane.store.tables import ApprovalRow, FlowRevisionRow, GitSourceRow, PlanRow, utcnow

PENDING, APPROVED, APPLIED, REJECTED, FAILED, SUPERSEDED, NO_CHANGES = (
    "pending",
    "approved",
    "applied",
    "rejected",
    "failed",
    "superseded",
    "no_changes",
)
SYNC, HEAL, ROLLBACK, LOCAL = "sync", "heal", "rollback", "local"
LOCAL_SCHEME = "local:"
_OPEN = (PENDING, APPROVED)
# Managed origins own their flows: nothing else may write them while live.
_MANAGED = ("git:", LOCAL_SCHEME)


def origin_of(source_id: str) -> str:
    """The origin recorded on revisions a Git source writes."""
    return f"git:{source_id}"


def source_origin(source: GitSourceRow) -> str:
    """The origin of a source's revisions: ``git:<id>``, or ``local:<dir>`` when watched."""
    return source.url if is_local(source) else origin_of(source.id)


def is_local(source: GitSourceRow) -> bool:
    """True for a watched directory (``url`` is ``local:<dir>``) rather than a Git remote."""
    return source.url.startswith(LOCAL_SCHEME)


def touched_namespaces(plan: PlanRow) -> set[str]:
    """Every namespace a plan changes, through its flows or its secrets (for scope checks)."""
    return {
        str(change["namespace"])
        for change in [*plan.changes, *plan.secret_changes]
        if isinstance(change, dict) and change.get("namespace")
    }


def sync_source(
    engine: Engine, source_id: str, cache_root: Path, *, keyring: Keyring | None = None
) -> PlanRow:
    """Read the source's branch (or directory), plan it against what it owns, store the plan.

    A commit already planned returns that plan (repeated webhooks make one plan),
    unless the source self-heals and its flows drifted from that commit: then a
    ``heal`` plan corrects them. A newer plan supersedes older open ones. With
    the ``auto`` policy a valid plan is applied at once. ``keyring`` defaults to
    the server identity in ``cache_root``'s parent, the data directory.
    """
    started = time.perf_counter()
    try:
        return _sync(engine, source_id, cache_root, keyring)
    finally:
        SYNC_DURATION.labels(source=source_id).observe(time.perf_counter() - started)


def _sync(engine: Engine, source_id: str, cache_root: Path, keyring: Keyring | None) -> PlanRow:
    source = get_source(engine, source_id)
    snapshot = read_source(source, cache_root)
    keyring = _keyring(snapshot, cache_root, keyring)
    if snapshot.commit is None:
        return _store_and_apply(engine, source, _plan_row(engine, source, snapshot, LOCAL, keyring))
    sha = snapshot.commit.sha
    with Session(engine) as session:
        existing = _plan_for_key(session, source_id, sha)
        healing = _open_plan(session, source_id, sha, HEAL)
    if existing is None:
        row = _plan_row(engine, source, snapshot, SYNC, keyring)
        try:
            return _store_and_apply(engine, source, row)
        except StoreError:
            # A webhook and the poller planned the same commit at once: keep theirs.
            with Session(engine) as session:
                existing = _plan_for_key(session, source_id, sha)
            if existing is None:
                raise
            return existing
    settled = existing.status in {APPLIED, NO_CHANGES} and source.last_commit == sha
    if not (source.self_heal and settled):
        return existing
    if healing is not None:
        return healing
    row = _plan_row(engine, source, snapshot, HEAL, keyring)
    # Only a valid plan with corrections is worth storing; the rest is noise every poll.
    return _store_and_apply(engine, source, row) if row.status == PENDING else existing


def rollback_source(
    engine: Engine,
    source_id: str,
    commit_sha: str,
    cache_root: Path,
    *,
    actor: str,
    keyring: Keyring | None = None,
) -> PlanRow:
    """Plan the tree of an older commit of the branch, through the source's approval policy.

    The plan (``kind: rollback``) and the revisions it writes keep the commit
    they came from; the revisions are marked ``rollback``. Whoever asks cannot
    approve it. It stays active until the next new commit is synced.
    """
    source = get_source(engine, source_id)
    if is_local(source):
        raise InvalidRequestError(f"source {source_id} is a local directory; it has no commits")
    snapshot = read_snapshot(
        source.url,
        source.branch,
        cache_root / source_id,
        source.flows_path,
        source.secrets_path,
        at=commit_sha,
    )
    keyring = _keyring(snapshot, cache_root, keyring)
    row = _plan_row(engine, source, snapshot, ROLLBACK, keyring, requested_by=actor)
    return _store_and_apply(engine, source, row, actor=actor)


def read_source(source: GitSourceRow, cache_root: Path) -> Snapshot:
    """The files of a source now: its branch's head, or its watched directory."""
    if is_local(source):
        directory = Path(source.url.removeprefix(LOCAL_SCHEME))
        return read_directory(directory, source.flows_path, source.secrets_path)
    return read_snapshot(
        source.url, source.branch, cache_root / source.id, source.flows_path, source.secrets_path
    )


def _keyring(snapshot: Snapshot, cache_root: Path, keyring: Keyring | None) -> Keyring | None:
    # The identity is only needed to read secret files; the Git cache is <data_dir>/git.
    if keyring is None and snapshot.secret_files:
        return load_keyring(cache_root.parent)
    return keyring


def _store_and_apply(
    engine: Engine, source: GitSourceRow, row: PlanRow, *, actor: str = "auto"
) -> PlanRow:
    _store_plan(engine, source.id, row)
    if row.status == PENDING and source.approval == "auto":
        return apply_plan(engine, row.id, actor=actor)
    return row


def _store_plan(engine: Engine, source_id: str, row: PlanRow) -> None:
    """Insert ``row`` and supersede the source's older open plans, in one transaction."""
    with transaction(engine) as session:
        for older in session.exec(
            select(PlanRow).where(
                col(PlanRow.source_id) == source_id, col(PlanRow.status).in_(_OPEN)
            )
        ):
            older.status = SUPERSEDED
            older.decided_at = utcnow()
            older.secret_payload = {}
            session.add(older)
        session.add(row)
        if row.status == NO_CHANGES and row.kind in {SYNC, ROLLBACK}:
            # Nothing to apply, yet the live flows are now this commit's.
            source = session.get(GitSourceRow, source_id)
            if source is not None:
                source.last_commit = row.target_commit
                session.add(source)
        record_event(
            session,
            actor=row.requested_by or row.author or "git",
            action="plan.create",
            target=f"plan:{row.id}",
            summary={
                "source": source_id,
                "commit": row.target_commit,
                "status": row.status,
                "kind": row.kind,
            },
        )


def _plan_for_key(session: Session, source_id: str, sha: str) -> PlanRow | None:
    return session.exec(
        select(PlanRow).where(col(PlanRow.source_id) == source_id, col(PlanRow.dedup_key) == sha)
    ).first()


def _open_plan(session: Session, source_id: str, sha: str, kind: str) -> PlanRow | None:
    return session.exec(
        select(PlanRow).where(
            col(PlanRow.source_id) == source_id,
            col(PlanRow.target_commit) == sha,
            col(PlanRow.kind) == kind,
            col(PlanRow.status).in_(_OPEN),
        )
    ).first()


def active_sets(session: Session, origin: str) -> tuple[list[ActiveFlow], set[tuple[str, str]]]:
    """The live flows ``origin`` owns, and the keys of every other live flow."""
    rows, _ = flow_store.list_active(session, FlowFilter(), offset=0, limit=1_000_000)
    owned = [
        ActiveFlow(r.namespace, r.flow_id, r.revision, r.source, r.spec, r.spec_sha256)
        for f, r in rows
        if f.origin == origin
    ]
    others = {(f.namespace, f.flow_id) for f, _ in rows if f.origin != origin}
    return owned, others


def _plan_row(
    engine: Engine,
    source: GitSourceRow,
    snapshot: Snapshot,
    kind: str,
    keyring: Keyring | None,
    *,
    requested_by: str | None = None,
) -> PlanRow:
    origin = source_origin(source)
    secrets = (
        decrypt_secret_files(snapshot.secret_files, keyring, source.secrets_path)
        if snapshot.secret_files
        else SecretSet()
    )
    with Session(engine) as session:
        active, known = active_sets(session, origin)
        inputs = secret_inputs(session, keyring, origin, secrets.values, prune=source.prune)
    started = time.perf_counter()
    plan = compute_plan(
        active,
        snapshot.files,
        flows_path=source.flows_path,
        active_secrets=inputs.active,
        desired_secrets=inputs.desired,
        known_flows=known,
        known_secrets=inputs.known,
        secrets_path=source.secrets_path,
    )
    PLAN_DURATION.observe(time.perf_counter() - started)
    # Problems compute_plan cannot see: secret files and undecodable flow files.
    extra = [
        *secrets.problems,
        *(Problem("not valid UTF-8", file=path) for path in snapshot.undecodable),
        *snapshot.problems,
    ]
    problems = [*plan.problems, *extra]
    if problems:
        status = FAILED
    elif plan.has_changes:
        status = PENDING
    else:
        status = NO_CHANGES
    secret_changes, payload = secret_rows_for_plan(
        keyring if status == PENDING else None, secrets.values, plan.secret_changes
    )
    commit = snapshot.commit
    text = render_plan_text(plan)
    if extra:
        text = "".join(f"{p.render()}\n" for p in extra) + text
    if kind == ROLLBACK and commit is not None:
        text = f"Rollback to commit {commit.sha[:12]}, requested by {requested_by}.\n{text}"
    elif kind == HEAL:
        text = f"Self-heal: the live flows drifted from commit {source.last_commit}.\n{text}"
    return PlanRow(
        id=str(uuid.uuid4()),
        source_id=source.id,
        base_commit=source.last_commit,
        target_commit=commit.sha if commit is not None else snapshot.content_sha256,
        author=commit.author if commit is not None else None,
        author_email=commit.author_email if commit is not None else None,
        committer=commit.committer if commit is not None else None,
        message=commit.message if commit is not None else f"contents of {origin}",
        status=status,
        summary=dict(plan.summary),
        changes=[_change_dict(change) for change in plan.changes],
        problems=[p.to_dict() for p in problems],
        text=text,
        kind=kind,
        dedup_key=commit.sha if commit is not None and kind == SYNC else None,
        requested_by=requested_by,
        secret_changes=secret_changes,
        secret_payload=payload,
    )


def _change_dict(change: Any) -> dict[str, Any]:
    data = asdict(change)
    data["action"] = str(change.action)
    data["fields"] = [
        {"path": f.path, "kind": str(f.kind), "before": f.before, "after": f.after}
        for f in change.fields
    ]
    return data


def decide_plan(
    engine: Engine, plan_id: str, *, actor: str, approve: bool, comment: str | None
) -> PlanRow:
    """Record a reviewer's decision; enough approvals apply the plan.

    Four-eyes: the commit's author cannot approve their own plan, nor can
    whoever asked for a rollback.
    """
    with transaction(engine) as session:
        plan = session.get(PlanRow, plan_id, with_for_update=True)
        if plan is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
        if plan.status != PENDING:
            raise ConflictError(f"plan {plan_id} is {plan.status}; only a pending plan is reviewed")
        if approve and actor == plan.requested_by:
            raise ForbiddenError(f"{actor} asked for this rollback and cannot approve it")
        if approve and actor in {plan.author, plan.author_email}:
            raise ForbiddenError(
                f"{actor} wrote commit {plan.target_commit[:12]} and cannot approve it"
            )
        if session.exec(
            select(ApprovalRow).where(
                col(ApprovalRow.plan_id) == plan_id, col(ApprovalRow.actor) == actor
            )
        ).first():
            raise ConflictError(f"{actor} already decided on plan {plan_id}")
        session.add(
            ApprovalRow(
                plan_id=plan_id,
                actor=actor,
                decision="approve" if approve else "reject",
                comment=comment,
            )
        )
        session.flush()
        record_event(
            session,
            actor=actor,
            action="plan.approve" if approve else "plan.reject",
            target=f"plan:{plan_id}",
            summary={"comment": comment},
        )
        source = session.get(GitSourceRow, plan.source_id)
        approvals = session.exec(
            select(ApprovalRow).where(
                col(ApprovalRow.plan_id) == plan_id, col(ApprovalRow.decision) == "approve"
            )
        ).all()
        if not approve:
            plan.status = REJECTED
            plan.decided_at = utcnow()
            plan.secret_payload = {}
        elif source is not None and len(approvals) >= source.required_approvals:
            plan.status = APPROVED
        session.add(plan)
        ready = plan.status == APPROVED
    return apply_plan(engine, plan_id, actor=actor) if ready else plan


def apply_plan(engine: Engine, plan_id: str, *, actor: str) -> PlanRow:
    """Activate every flow and secret change of the plan in one transaction, or none of them."""
    with Session(engine) as session:
        found = session.get(PlanRow, plan_id)
        if found is None:
            raise NotFoundError(f"plan {plan_id} does not exist")
        if found.status not in _OPEN:
            raise ConflictError(f"plan {plan_id} is {found.status} and cannot be applied")
    try:
        with transaction(engine) as session:
            plan = session.get(PlanRow, plan_id, with_for_update=True)
            assert plan is not None  # noqa: S101 - plans are never deleted
            source = session.get(GitSourceRow, plan.source_id)
            assert source is not None  # noqa: S101 - foreign key
            provenance = Provenance(
                origin=source_origin(source),
                actor=actor,
                git_commit_sha=None if plan.kind == LOCAL else plan.target_commit,
                git_author=plan.author,
                git_message=plan.message,
                plan_id=plan.id,
            )
            for change in plan.changes:
                written = _apply_change(session, change, provenance, prune=source.prune)
                if written is not None and plan.kind == ROLLBACK:
                    # Provenance has no rollback field; mark the row before commit.
                    written.rollback = True
                    session.add(written)
            _apply_secrets(session, plan, provenance.origin, actor=actor, prune=source.prune)
            plan.status = APPLIED
            record_event(
                session,
                actor=actor,
                action="plan.apply",
                target=f"plan:{plan.id}",
                summary={"commit": plan.target_commit, "changes": plan.summary, "kind": plan.kind},
            )
            plan.decided_at = utcnow()
            plan.secret_payload = {}  # the values now live in the secrets table alone
            source.last_commit = plan.target_commit
            session.add_all([plan, source])
            return plan
    except ConflictError:
        with transaction(engine) as session:
            failed = session.get(PlanRow, plan_id)
            if failed is not None and failed.status in _OPEN:
                failed.status = FAILED
                failed.secret_payload = {}
                session.add(failed)
        raise


def _apply_secrets(
    session: Session, plan: PlanRow, origin: str, *, actor: str, prune: bool
) -> None:
    for item in plan.secret_changes:
        namespace, key, action = item["namespace"], item["key"], item["action"]
        if action in {"add", "change"}:
            sealed = plan.secret_payload.get(namespace, {}).get(key)
            if sealed is None:
                raise ConflictError(f"plan {plan.id} lost the value of secret {namespace}/{key}")
            store_sealed(
                session, namespace, key, base64.b64decode(sealed), origin=origin, actor=actor
            )
        elif action == "remove" and prune:
            remove_owned(session, namespace, key, origin=origin, actor=actor)


def _apply_change(
    session: Session, change: dict[str, Any], provenance: Provenance, *, prune: bool
) -> FlowRevisionRow | None:
    """Write one flow change; the revision written, or None when nothing was."""
    action = Action(change["action"])
    if action == Action.UNCHANGED:
        return None
    flow, live = flow_store.get_live(session, change["namespace"], change["flow_id"], lock=True)
    managed = flow is not None and flow.origin.startswith(_MANAGED) and not flow.deleted
    if managed and flow is not None and flow.origin != provenance.origin:
        raise ConflictError(f"flow {flow.namespace}/{flow.flow_id} is managed by {flow.origin}")
    if action == Action.REMOVE:
        if prune and flow is not None and live is not None:
            return write_tombstone(session, flow, live, provenance)
        return None
    definition = Definition(
        change["namespace"],
        change["flow_id"],
        change["source"],
        change["spec"],
        change["spec_sha256"],
    )
    result = write_definition(session, definition, provenance, flow, live)
    return result.state.revision if result.changed else None
