"""The only rules by which a plan's status may change.

A plan is created ``pending`` (something to review or apply), ``no_changes``
or ``failed`` (invalid); from there, each rule below is a small command-named
record of the statuses it leaves from and those it may go to.
``check_plan_transition`` is called by the one service function that writes a
plan's status (``services.gitops.lifecycle.move``); nothing else writes it.

``approved`` is the only status an unfinished apply can leave behind (the
apply is one transaction, so a crash rolls it back): recovery at start moves
such a plan on, to ``applied`` or ``failed`` with the reason, never leaving it.
"""

from __future__ import annotations

from enum import StrEnum

from controlplane.domain.transitions import Rule, refuse_unless_allowed, rule, targets_of
from controlplane.errors import IllegalTransitionError


class PlanStatus(StrEnum):
    """Where a plan is in its life."""

    PENDING = "pending"
    APPROVED = "approved"
    APPLIED = "applied"
    REJECTED = "rejected"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    NO_CHANGES = "no_changes"


# Created in one of these; every other status is reached through a rule.
INITIAL = frozenset({PlanStatus.PENDING, PlanStatus.NO_CHANGES, PlanStatus.FAILED})
# Still waiting for a review or an apply: a newer plan supersedes these.
OPEN = frozenset({PlanStatus.PENDING, PlanStatus.APPROVED})
TERMINAL = frozenset(
    {
        PlanStatus.APPLIED,
        PlanStatus.REJECTED,
        PlanStatus.FAILED,
        PlanStatus.SUPERSEDED,
        PlanStatus.NO_CHANGES,
    }
)


P = PlanStatus
RULES: tuple[Rule[PlanStatus], ...] = (
    # Enough approvals; the apply follows at once (or at recovery after a crash).
    rule("ApprovePending", {P.PENDING}, {P.APPROVED}),
    rule("RejectPending", {P.PENDING}, {P.REJECTED}),
    # ``auto`` applies a pending plan directly; four-eyes goes through approved.
    rule("ApplyReady", {P.PENDING, P.APPROVED}, {P.APPLIED}),
    # A stale basis, an ownership conflict, a crashed apply that cannot be redone.
    rule("FailApply", {P.PENDING, P.APPROVED}, {P.FAILED}),
    # A newer commit, or the source was deleted.
    rule("SupersedeOpen", {P.PENDING, P.APPROVED}, {P.SUPERSEDED}),
)


def allowed_targets(current: PlanStatus) -> frozenset[PlanStatus]:
    """Every status ``current`` may move to."""
    return targets_of(RULES, current)


def check_plan_transition(current: str, target: str) -> None:
    """Raise ``IllegalTransitionError`` unless a rule allows ``current → target``."""
    try:
        source, goal = PlanStatus(current), PlanStatus(target)
    except ValueError:
        raise IllegalTransitionError(f"unknown plan status {current!r} or {target!r}") from None
    ended = f"the plan is already {source}" if source in TERMINAL else None
    refuse_unless_allowed(RULES, source, goal, ended=ended, subject="a plan ")
