"""Whose authority a task acts with: the principal that activated the revision it runs.

A task has no caller of its own, so a right that the API reserves for a role
(resuming a Pause needs a reviewer) is checked against whoever put the running
revision in place:

- ``api`` and ``terraform`` revisions: the token named by ``created_by``. It
  must still be live (not revoked, not expired), hold the reviewer role (or
  admin), and have a namespace scope covering the target namespace.
- revisions from Git or a watched directory (``git:<source>``, ``local:<dir>``):
  the approvers of the revision's plan. At least one of them must hold such a
  live token. A plan applied without review (``approval: auto``) has no
  approver, so its flows cannot resume anything.

Approvers and writers are matched to tokens by name, the identity recorded on
revisions and approvals. A user vouched for by a trusted proxy has no token
row, so a revision or approval of theirs cannot be verified and does not count.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.errors import ForbiddenError
from controlplane.services.access import ALL_NAMESPACES, ROLES, Principal, parse_role
from controlplane.store.db import as_utc
from controlplane.store.tables import (
    ApiTokenRow,
    ApprovalRow,
    ExecutionRow,
    FlowRevisionRow,
    utcnow,
)

_WRITER_ORIGINS = frozenset({"api", "terraform"})


def ensure_resume_authority(engine: Engine, execution: ExecutionRow, target_namespace: str) -> None:
    """Raise ``ForbiddenError`` unless ``execution``'s revision was activated by a reviewer.

    "Activated by a reviewer" means, per origin (see the module docstring): the
    writer's token for ``api``/``terraform``, an approver's token for plans.
    The token must hold reviewer (or admin) over ``target_namespace``.
    """
    with Session(engine) as session:
        revision = session.get(FlowRevisionRow, execution.revision_pk)
        if revision is None:
            raise ForbiddenError("resume needs a reviewer: the running revision is unknown")
        where = f"revision {revision.revision} of {revision.namespace}/{revision.flow_id}"
        if revision.origin in _WRITER_ORIGINS:
            names = [revision.created_by] if revision.created_by else []
            who = f"was written by {revision.created_by or 'nobody known'}"
        elif revision.plan_id:
            names = list(
                session.exec(
                    select(ApprovalRow.actor).where(
                        col(ApprovalRow.plan_id) == revision.plan_id,
                        col(ApprovalRow.decision) == "approve",
                    )
                ).all()
            )
            who = f"came from plan {revision.plan_id} approved by {names or 'nobody'}"
        else:
            names = []
            who = f"came from {revision.origin} without a reviewed plan"
        if not any(_is_reviewer(session, name, target_namespace) for name in names):
            raise ForbiddenError(
                f"resume needs a reviewer: {where} {who}, and no live token of "
                f"theirs holds reviewer over namespace {target_namespace}"
            )


def _is_reviewer(session: Session, token_name: str, namespace: str) -> bool:
    """Whether a live token named ``token_name`` holds reviewer or admin over ``namespace``."""
    rows = session.exec(
        select(ApiTokenRow).where(
            col(ApiTokenRow.name) == token_name, col(ApiTokenRow.revoked_at).is_(None)
        )
    ).all()
    now = utcnow()
    for row in rows:
        if row.expires_at is not None and as_utc(row.expires_at) <= now:
            continue
        if row.role not in ROLES:
            continue
        principal = Principal(
            name=row.name,
            role=parse_role(row.role),
            scopes=tuple(row.scopes) or ALL_NAMESPACES,
            token_id=row.id,
            via="token",
        )
        if principal.has_role("reviewer") and principal.can_see(namespace):
            return True
    return False
