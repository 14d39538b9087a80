"""Sync: read a source (a commit, or a watched directory) and store the plan it makes.

A plan stores the exact sources and normalized specs it will activate, the new
secret values sealed to the server, the live revisions it was computed
against (its ``basis``, so a stale apply is refused), and the authors and
committers of every commit it brings (for four-eyes). A plan is one of four
kinds:

- ``sync``: a new commit of the branch (one per commit, however many webhooks);
- ``heal``: with ``self_heal``, the corrections that bring the flows back to
  the last applied commit after they drifted (``drift.py`` says how);
- ``rollback``: the tree of an older commit of the branch, asked for by someone;
- ``local``: the contents of a watched directory (``flowplane server --watch``);
  it has no commit, so ``target_commit`` holds the sha256 of the files read.

Nothing is written before ``authorize`` (the caller's scope check) has seen
every namespace the plan touches: a refused sync or rollback stores nothing.

At scale a plan reads only what changed: the live flows are loaded first, and
a file of the commit whose Git blob id is that of a live source (or of a live
revision's Argo source) is not read; a byte-identical flow file then reuses
the live revision's normalized spec when the same validator computed it
(``domain.plan``), so a server just started does not validate 10,000 unchanged
files. Both shortcuts are keyed on content, never on history: a force-push, a
new ``flows_path`` or a first sync simply finds fewer matches.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.domain.argo.gitfiles import expand_argo_files
from controlplane.domain.plan import (
    WRITING_ACTIONS,
    Action,
    ActiveFlow,
    FlowChange,
    compute_plan,
    render_plan_text,
    validator_fingerprint,
)
from controlplane.errors import InvalidRequestError, Problem, SourceUnavailableError, StoreError
from controlplane.metrics import PLAN_DURATION, SYNC_DURATION
from controlplane.services.gitops.apply import apply_plan
from controlplane.services.gitops.argo import (
    LiveOriginal,
    annotate_changes,
    argo_text,
    live_originals,
)
from controlplane.services.gitops.history import commit_identities
from controlplane.services.gitops.lifecycle import (
    APPLIED,
    FAILED,
    HEAL,
    LOCAL,
    LOCAL_SCHEME,
    NO_CHANGES,
    OPEN_STATUSES,
    PENDING,
    ROLLBACK,
    SYNC,
    Authorize,
    active_sets,
    is_local,
    source_origin,
    store_plan,
    touched_namespaces,
)
from controlplane.services.gitops.repository import Snapshot, read_directory, read_snapshot
from controlplane.services.gitops.secret_files import (
    SecretSet,
    decrypt_secret_files,
    secret_inputs,
    secret_rows_for_plan,
)
from controlplane.services.gitops.sources import fetch_url, get_source, scrub_credentials
from controlplane.services.secrets import Keyring, load_keyring
from controlplane.store import flows as flow_store
from controlplane.store.tables import GitSourceRow, PlanRow


def sync_source(
    engine: Engine,
    source_id: str,
    cache_root: Path,
    *,
    keyring: Keyring | None = None,
    actor: str = "git",
    authorize: Authorize | None = None,
) -> PlanRow:
    """Read the source's branch (or directory), plan it against what it owns, store the plan.

    A commit already planned returns that plan (repeated webhooks make one plan),
    unless its apply failed (stale, crashed): then it is planned again. With
    ``self_heal``, flows that drifted from the applied commit get a ``heal``
    plan. A newer plan supersedes older open ones. With the ``auto`` policy a
    valid plan is applied at once. ``keyring`` defaults to the server identity
    in ``cache_root``'s parent, the data directory. ``actor`` is who asked (the
    poller is ``git``); ``authorize`` sees every touched namespace first.
    """
    started = time.perf_counter()
    try:
        return _sync(
            engine, source_id, cache_root, keyring=keyring, actor=actor, authorize=authorize
        )
    finally:
        SYNC_DURATION.labels(source=source_id).observe(time.perf_counter() - started)


def _sync(
    engine: Engine,
    source_id: str,
    cache_root: Path,
    *,
    keyring: Keyring | None,
    actor: str,
    authorize: Authorize | None,
) -> PlanRow:
    source = get_source(engine, source_id)
    live = _load_live(engine, source)
    snapshot = read_source(source, cache_root, keyring, known_sources=live.sources())
    keyring = _keyring(snapshot, cache_root, keyring)
    plan_for = partial(
        _plan_row,
        engine,
        source,
        snapshot,
        keyring=keyring,
        cache_root=cache_root,
        actor=actor,
        live=live,
    )
    if snapshot.commit is None:
        return _store_and_apply(engine, source, plan_for(LOCAL), authorize)
    sha = snapshot.commit.sha
    with Session(engine) as session:
        existing = _plan_for_key(session, source_id, sha)
    if existing is None or _failed_apply(existing):
        replaces = existing.id if existing is not None else None
        try:
            return _store_and_apply(engine, source, plan_for(SYNC), authorize, replaces=replaces)
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
    return _heal(engine, source, existing, partial(plan_for, HEAL), authorize)


def _heal(
    engine: Engine,
    source: GitSourceRow,
    existing: PlanRow,
    plan_for: Callable[[], PlanRow],
    authorize: Authorize | None,
) -> PlanRow:
    """A heal plan of the applied commit when the flows drifted; one at a time."""
    with Session(engine) as session:
        healing = _open_plan(session, source.id, existing.target_commit, HEAL)
    if healing is not None:
        return healing
    row = plan_for()
    # Only a valid plan with corrections is worth storing; the rest is noise every poll.
    if row.status != PENDING:
        return existing
    return _store_and_apply(engine, source, row, authorize)


def _failed_apply(plan: PlanRow) -> bool:
    """A plan whose apply failed (not one whose commit is invalid): its commit may be replanned."""
    return plan.status == FAILED and bool(plan.status_reason) and not plan.problems


def rollback_source(
    engine: Engine,
    source_id: str,
    commit_sha: str,
    cache_root: Path,
    *,
    actor: str,
    keyring: Keyring | None = None,
    authorize: Authorize | None = None,
) -> PlanRow:
    """Plan the tree of an older commit of the branch, through the source's approval policy.

    The plan (``kind: rollback``) and the revisions it writes keep the commit
    they came from; the revisions are marked ``rollback``. Whoever asks cannot
    approve it. It stays active until the next new commit is synced.
    """
    source = get_source(engine, source_id)
    if is_local(source):
        raise InvalidRequestError(f"source {source_id} is a local directory; it has no commits")
    live = _load_live(engine, source)
    snapshot = _read_git(source, cache_root, keyring, at=commit_sha, known=live.sources())
    keyring = _keyring(snapshot, cache_root, keyring)
    row = _plan_row(
        engine,
        source,
        snapshot,
        ROLLBACK,
        keyring=keyring,
        cache_root=cache_root,
        requested_by=actor,
        actor=actor,
        live=live,
    )
    return _store_and_apply(engine, source, row, authorize, actor=actor)


def read_source(
    source: GitSourceRow,
    cache_root: Path,
    keyring: Keyring | None = None,
    *,
    known_sources: Iterable[str] = (),
) -> Snapshot:
    """The files of a source now: its branch's head, or its watched directory.

    A Git file whose blob is one of ``known_sources`` takes that text unread.
    """
    if is_local(source):
        directory = Path(source.url.removeprefix(LOCAL_SCHEME))
        return read_directory(directory, source.flows_path, source.secrets_path)
    return _read_git(source, cache_root, keyring, known=known_sources)


def read_source_at(
    source: GitSourceRow,
    cache_root: Path,
    commit: str,
    keyring: Keyring | None = None,
    *,
    known_sources: Iterable[str] = (),
) -> Snapshot:
    """The files of a Git source at ``commit`` (drift reads the last applied one)."""
    return _read_git(source, cache_root, keyring, at=commit, known=known_sources)


@dataclass(frozen=True)
class _Live:
    """What a plan is computed against, read once before the commit is."""

    active: list[ActiveFlow]
    others: dict[tuple[str, str], str]
    originals: dict[tuple[str, str], LiveOriginal]

    def sources(self) -> Iterator[str]:
        """Every live text a file of the commit may be byte-identical to."""
        yield from (flow.source for flow in self.active)
        yield from (original.source for original in self.originals.values())


def _load_live(engine: Engine, source: GitSourceRow) -> _Live:
    with Session(engine) as session:
        active, others = active_sets(session, source_origin(source))
        return _Live(active, others, live_originals(session))


def _read_git(
    source: GitSourceRow,
    cache_root: Path,
    keyring: Keyring | None,
    *,
    at: str | None = None,
    known: Iterable[str] = (),
) -> Snapshot:
    """Read Git with the source's sealed credentials put back into the URL for the fetch only.

    Errors name the stored URL: the credentials never reach a message, a log or the audit.
    """
    if source.url_credentials_ciphertext is not None and keyring is None:
        keyring = load_keyring(cache_root.parent)
    url = fetch_url(source, keyring)
    try:
        return read_snapshot(
            url,
            source.branch,
            cache_root / source.id,
            source.flows_path,
            source.secrets_path,
            at=at,
            known_sources=known,
        )
    except SourceUnavailableError as exc:
        raise SourceUnavailableError(scrub_credentials(str(exc), source, url)) from None


def _keyring(snapshot: Snapshot, cache_root: Path, keyring: Keyring | None) -> Keyring | None:
    # The identity is only needed to read secret files; the Git cache is <data_dir>/git.
    if keyring is None and snapshot.secret_files:
        return load_keyring(cache_root.parent)
    return keyring


def _store_and_apply(
    engine: Engine,
    source: GitSourceRow,
    row: PlanRow,
    authorize: Authorize | None,
    *,
    actor: str = "auto",
    replaces: str | None = None,
) -> PlanRow:
    if authorize is not None:
        # Before the first write: a refused caller leaves no plan behind.
        authorize(touched_namespaces(row) | set(source.namespaces))
    store_plan(engine, source.id, row, replaces=replaces)
    if row.status == PENDING and source.approval == "auto":
        return apply_plan(engine, row.id, actor=actor)
    return row


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
            col(PlanRow.status).in_(OPEN_STATUSES),
        )
    ).first()


def _plan_row(
    engine: Engine,
    source: GitSourceRow,
    snapshot: Snapshot,
    kind: str,
    *,
    keyring: Keyring | None,
    cache_root: Path,
    actor: str,
    live: _Live | None = None,
    requested_by: str | None = None,
) -> PlanRow:
    origin = source_origin(source)
    secrets = (
        decrypt_secret_files(snapshot.secret_files, keyring, source.secrets_path)
        if snapshot.secret_files
        else SecretSet()
    )
    if live is None:
        live = _load_live(engine, source)
    with Session(engine) as session:
        inputs = secret_inputs(session, keyring, origin, secrets.values, prune=source.prune)
    started = time.perf_counter()
    fingerprint = validator_fingerprint()
    # Argo Workflows files are converted first; the plan sees the flows they become.
    expansion = expand_argo_files(snapshot.files, flows_path=source.flows_path)
    plan = compute_plan(
        live.active,
        expansion.files,
        flows_path=source.flows_path,
        active_secrets=inputs.active,
        desired_secrets=inputs.desired,
        known_flows=live.others,
        known_secrets=inputs.known,
        secrets_path=source.secrets_path,
        prune=source.prune,
        foreign_owners=live.others,
        # Healing restores the applied commit, taking back flows it owned: said as take_over.
        take_over=source.take_over or kind == HEAL,
    )
    PLAN_DURATION.observe(time.perf_counter() - started)
    # Problems compute_plan cannot see: secret files and undecodable flow files.
    extra = [
        *expansion.problems,
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
    identities: list[dict[str, Any]] = []
    if commit is not None:
        base = commit.sha if kind == HEAL else source.last_commit
        found = commit_identities(cache_root / source.id, base, commit.sha)
        identities = [item.to_dict() for item in found]
    with Session(engine) as session:
        basis = _basis(session, plan.changes)
    changes = annotate_changes(
        [_change_dict(change, fingerprint) for change in plan.changes],
        expansion.originals,
        live.originals,
    )
    text += argo_text(changes)
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
        changes=changes,
        problems=[p.to_dict() for p in problems],
        text=text,
        kind=kind,
        dedup_key=commit.sha if commit is not None and kind == SYNC else None,
        requested_by=requested_by,
        created_by=actor,
        secret_changes=secret_changes,
        secret_payload=payload,
        commit_identities=identities,
        basis=basis,
    )


def _basis(session: Session, changes: Any) -> dict[str, Any]:
    """The live revision and owner of every flow the plan writes, as seen now."""
    basis: dict[str, Any] = {}
    for change in changes:
        if change.action not in WRITING_ACTIONS:
            continue
        flow, live = flow_store.get_live(session, change.namespace, change.flow_id)
        key = f"{change.namespace}/{change.flow_id}"
        basis[key] = [live.revision, flow.origin] if flow and live else None
    return basis


def _change_dict(change: FlowChange, fingerprint: str) -> dict[str, Any]:
    # Shallow: ``asdict`` would deep-copy every spec, 10,000 of them in a large plan.
    data = {item.name: getattr(change, item.name) for item in fields(change)}
    data["action"] = str(change.action)
    data["fields"] = [
        {"path": f.path, "kind": str(f.kind), "before": f.before, "after": f.after}
        for f in change.fields
    ]
    if change.action == Action.UNCHANGED:
        # Apply leaves an unchanged flow alone: its source and spec are the live
        # revision's already. Storing them made a 10,000-flow plan carry every spec.
        data["source"] = data["spec"] = None
    elif change.spec is not None:
        # Apply stores it on the revision: the validator that computed ``spec``.
        data["spec_fingerprint"] = fingerprint
    return data


__all__ = [
    "Action",
    "read_source",
    "read_source_at",
    "rollback_source",
    "sync_source",
]
