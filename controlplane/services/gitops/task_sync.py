"""A flow's SyncFlows task: the sync of a registered Git source, through its plan.

A flow never writes flows itself. Its task names a repository, a branch and
(optionally) a directory; the Git source an admin registered for them is
synced exactly as the poller or a webhook would sync it, and the plan is
applied by the source's policy (``auto``) or waits for its reviewers
(``approval``). The flow is recorded as who asked (``flow:<namespace>/<id>``)
and is never a reviewer: the four-eyes rules of ``review.py`` are untouched.

Rights: every namespace the source serves and the plan touches must lie in
the task's ``targetNamespace`` (or under it, with ``includeChildNamespaces``)
and let the flow's namespace in (``allowedNamespaces``). The check runs on
the source before anything is fetched and on the plan before it is stored,
so a refused sync stores nothing. A dry run plans the branch head against
the live flows, as a sync would, and stores nothing at all.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.domain.argo.gitfiles import expand_argo_files
from controlplane.domain.plan import compute_plan, render_plan_text
from controlplane.errors import (
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    Problem,
)
from controlplane.services.gitops.lifecycle import (
    FAILED,
    NO_CHANGES,
    PENDING,
    Authorize,
    active_sets,
    is_local,
    source_origin,
    touched_namespaces,
)
from controlplane.services.gitops.secret_files import (
    SecretSet,
    decrypt_secret_files,
    secret_inputs,
)
from controlplane.services.gitops.sources import display_url, list_sources, split_credentials
from controlplane.services.gitops.sync import read_source, sync_source
from controlplane.services.namespaces import ensure_namespace_allowed
from controlplane.services.secrets import load_keyring
from controlplane.store.tables import GitSourceRow

# What a task reports of each flow change (the plan stores more: sources, specs).
_CHANGE_KEYS = ("namespace", "flow_id", "action", "path", "from_revision", "to_revision")


@dataclass(frozen=True)
class TaskSyncAsk:
    """A SyncFlows task's request (see ``plugins.api.GitSyncRequest``)."""

    url: str
    branch: str
    directory: str | None
    namespace: str
    include_children: bool
    delete: bool
    dry_run: bool


@dataclass(frozen=True)
class TaskSyncOutcome:
    """The plan made (``plan_id`` None on a dry run), its status and flow changes."""

    source_id: str
    plan_id: str | None
    status: str
    commit: str | None
    changes: list[dict[str, Any]]
    problems: list[str]
    text: str


def sync_for_flow(
    engine: Engine,
    cache_root: Path,
    ask: TaskSyncAsk,
    *,
    namespace: str,
    flow_id: str,
) -> TaskSyncOutcome:
    """Sync (or, on a dry run, plan) the Git source ``ask`` names, for ``namespace/flow_id``.

    ``cache_root`` is the server's Git cache (``<data_dir>/git``). Raises
    ``NotFoundError`` when no source matches, ``InvalidRequestError`` when
    ``delete`` disagrees with the source's ``prune``, and ``ForbiddenError``
    (nothing stored) when a namespace is out of the task's scope or rights.
    """
    source = find_source(engine, ask)
    _check_delete(source, ask.delete)
    authorize = _authorizer(engine, ask, caller=namespace)
    authorize(source.namespaces)  # before anything is fetched
    if ask.dry_run:
        return _dry_run(engine, source, cache_root, authorize)
    plan = sync_source(
        engine,
        source.id,
        cache_root,
        actor=f"flow:{namespace}/{flow_id}",
        authorize=authorize,
    )
    # A commit planned before (by the poller, a webhook) comes back unchecked.
    authorize(touched_namespaces(plan))
    return TaskSyncOutcome(
        source_id=source.id,
        plan_id=plan.id,
        status=plan.status,
        commit=plan.target_commit,
        changes=[_reported(change) for change in plan.changes if isinstance(change, dict)],
        problems=[Problem(**problem).render() for problem in plan.problems],
        text=plan.text,
    )


def find_source(engine: Engine, ask: TaskSyncAsk) -> GitSourceRow:
    """The one live Git source of ``ask``'s repository and branch (and directory, when given)."""
    wanted = _repository(ask.url)
    directory = ask.directory.strip("/") if ask.directory is not None else None
    found = [
        row
        for row in list_sources(engine)
        if not is_local(row)
        and _repository(row.url) == wanted
        and row.branch == ask.branch
        and (directory is None or row.flows_path.strip("/") == directory)
    ]
    where = f"{display_url(ask.url)} branch {ask.branch!r}"
    if directory is not None:
        where += f" directory {directory!r}"
    if not found:
        raise NotFoundError(
            f"no Git source syncs {where}: an admin registers one "
            "(PUT /api/v1/sources/{id}, docs/gitops.md) and SyncFlows then syncs it"
        )
    if len(found) > 1:
        names = ", ".join(sorted(row.id for row in found))
        raise InvalidRequestError(
            f"several Git sources sync {where} ({names}); set gitDirectory to choose one"
        )
    return found[0]


def _repository(url: str) -> str:
    """A URL as compared: without credentials, a trailing slash or ``.git``."""
    clean, _ = split_credentials(url.strip())
    return clean.rstrip("/").removesuffix(".git").rstrip("/")


def _check_delete(source: GitSourceRow, delete: bool) -> None:
    # Whether dropped flows are deleted is the source's policy; the task must agree with it.
    if delete and not source.prune:
        raise InvalidRequestError(
            f"delete is true but Git source {source.id} does not prune: flows dropped from "
            "Git stay live. An admin sets prune on the source, or set delete: false"
        )
    if not delete and source.prune:
        raise InvalidRequestError(
            f"delete is false but Git source {source.id} prunes: flows dropped from Git are "
            "deleted. Set delete: true to sync it"
        )


def _authorizer(engine: Engine, ask: TaskSyncAsk, *, caller: str) -> Authorize:
    """The check every namespace the sync touches must pass: the task's scope, then its rights."""

    def authorize(namespaces: Collection[str]) -> None:
        for target in sorted(namespaces):
            inside = target == ask.namespace or (
                ask.include_children and target.startswith(f"{ask.namespace}.")
            )
            if not inside:
                scope = (
                    f"{ask.namespace} and its children" if ask.include_children else ask.namespace
                )
                raise ForbiddenError(
                    f"the Git source also syncs namespace {target}, outside targetNamespace "
                    f"({scope})"
                )
            ensure_namespace_allowed(engine, caller, target, "sync flows into it")

    return authorize


def _dry_run(
    engine: Engine, source: GitSourceRow, cache_root: Path, authorize: Authorize
) -> TaskSyncOutcome:
    """The plan a sync of the branch head would make now, against the live flows; stored nowhere.

    The same inputs as ``sync._plan_row``: the flows the source owns, every
    other live flow with its owner, the secrets of the commit compared inside
    the server, and the source's prune and take-over policy.
    """
    snapshot = read_source(source, cache_root)
    keyring = load_keyring(cache_root.parent) if snapshot.secret_files else None
    secrets = (
        decrypt_secret_files(snapshot.secret_files, keyring, source.secrets_path)
        if snapshot.secret_files
        else SecretSet()
    )
    origin = source_origin(source)
    with Session(engine) as session:
        active, others = active_sets(session, origin)
        inputs = secret_inputs(session, keyring, origin, secrets.values, prune=source.prune)
    expansion = expand_argo_files(snapshot.files, flows_path=source.flows_path)
    plan = compute_plan(
        active,
        expansion.files,
        flows_path=source.flows_path,
        active_secrets=inputs.active,
        desired_secrets=inputs.desired,
        known_flows=others,
        known_secrets=inputs.known,
        secrets_path=source.secrets_path,
        prune=source.prune,
        foreign_owners=others,
        take_over=source.take_over,
    )
    changes = [
        {**{key: getattr(change, key) for key in _CHANGE_KEYS}, "action": str(change.action)}
        for change in plan.changes
    ]
    authorize(
        {str(change["namespace"]) for change in changes}
        | {change.namespace for change in plan.secret_changes}
    )
    problems = [
        *plan.problems,
        *expansion.problems,
        *secrets.problems,
        *(Problem("not valid UTF-8", file=path) for path in snapshot.undecodable),
        *snapshot.problems,
    ]
    status = FAILED if problems else PENDING if plan.has_changes else NO_CHANGES
    return TaskSyncOutcome(
        source_id=source.id,
        plan_id=None,
        status=status,
        commit=snapshot.commit.sha if snapshot.commit is not None else None,
        changes=changes,
        problems=[problem.render() for problem in problems],
        text=render_plan_text(plan),
    )


def _reported(change: dict[str, Any]) -> dict[str, Any]:
    return {key: change.get(key) for key in _CHANGE_KEYS}
