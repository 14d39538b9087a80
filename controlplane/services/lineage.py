"""Lineage: from a run to its revision, commit, plan and approvers, in one answer."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.errors import NotFoundError
from controlplane.store.db import as_utc
from controlplane.store.tables import (
    ApprovalRow,
    AuditEventRow,
    ExecutionRow,
    FlowRevisionRow,
    GitSourceRow,
    PlanRow,
)

_HOSTED = re.compile(r"^(?:https://|git@)(?P<host>[^/:]+)[/:](?P<path>.+?)(?:\.git)?$")


def commit_link(url: str, sha: str) -> str | None:
    """A web link to the commit for GitHub/GitLab/Gitea-style remotes, else None."""
    match = _HOSTED.match(url)
    if not match:
        return None
    separator = "/-/commit/" if "gitlab" in match["host"] else "/commit/"
    return f"https://{match['host']}/{match['path']}{separator}{sha}"


def execution_lineage(engine: Engine, execution_id: str) -> dict[str, Any]:
    """Run → revision → commit → plan → approvals, as stored (never recomputed)."""
    with Session(engine) as session:
        execution = session.get(ExecutionRow, execution_id)
        if execution is None:
            raise NotFoundError(f"execution {execution_id} does not exist")
        revision = session.get(FlowRevisionRow, execution.revision_pk)
        assert revision is not None  # noqa: S101 - foreign key
        plan = session.get(PlanRow, revision.plan_id) if revision.plan_id else None
        source = session.get(GitSourceRow, plan.source_id) if plan else None
        approvals = (
            session.exec(select(ApprovalRow).where(col(ApprovalRow.plan_id) == plan.id)).all()
            if plan
            else []
        )
        events = _tying_events(session, execution, revision, plan)
    writer = next((e for e in events if e.action == "flow.put" and e.summary.get("token_id")), None)
    commit = None
    if revision.git_commit_sha:
        commit = {
            "sha": revision.git_commit_sha,
            "author": revision.git_author,
            "message": revision.git_message,
            "url": commit_link(source.url, revision.git_commit_sha) if source else None,
        }
    return {
        "execution": {
            "id": execution.id,
            "state": execution.state,
            "created_at": as_utc(execution.created_at).isoformat(),
            "trigger": execution.trigger,
        },
        "revision": {
            "namespace": revision.namespace,
            "flow_id": revision.flow_id,
            "revision": revision.revision,
            "sha256": revision.source_sha256,
            "origin": revision.origin,
            "written_by": revision.created_by,
            "written_by_token": writer.summary["token_id"] if writer else None,
            "source": revision.source,
            # A flow converted from Argo Workflows keeps the Argo file it came from.
            "original": None
            if revision.original_source is None
            else {
                "format": revision.original_format,
                "path": revision.original_path,
                "source": revision.original_source,
            },
        },
        "git_commit": commit,
        "plan": None
        if plan is None
        else {
            "id": plan.id,
            "source_id": plan.source_id,
            "status": plan.status,
            "base_commit": plan.base_commit,
            "target_commit": plan.target_commit,
            "summary": plan.summary,
        },
        "approvals": [
            {
                "actor": a.actor,
                "decision": a.decision,
                "comment": a.comment,
                "decided_at": as_utc(a.decided_at).isoformat(),
            }
            for a in approvals
        ],
        "audit_events": [
            {
                "position": e.pk,
                "at": as_utc(e.at).isoformat(),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "request_id": e.request_id,
                "hash": e.hash,
            }
            for e in events
        ],
    }


def _tying_events(
    session: Session, execution: ExecutionRow, revision: FlowRevisionRow, plan: PlanRow | None
) -> list[AuditEventRow]:
    """The audit events on this run, its plan, and the write of its exact revision."""
    flow_target = f"flow:{revision.namespace}/{revision.flow_id}"
    targets = [f"execution:{execution.id}", flow_target]
    if plan is not None:
        targets.append(f"plan:{plan.id}")
    rows = session.exec(
        select(AuditEventRow)
        .where(col(AuditEventRow.target).in_(targets))
        .order_by(col(AuditEventRow.pk))
    ).all()
    # A flow's events cover every revision; keep the one that wrote this revision.
    return [
        row
        for row in rows
        if row.target != flow_target or row.summary.get("revision") == revision.revision
    ]
