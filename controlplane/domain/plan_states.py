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

from dataclasses import dataclass
from enum import StrEnum

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


@dataclass(frozen=True)
class PlanRule:
    """Transitions allowed from ``from_states`` to ``to_states``."""

    name: str
    from_states: frozenset[PlanStatus]
    to_states: frozenset[PlanStatus]


def _rule(name: str, sources: set[PlanStatus], targets: set[PlanStatus]) -> PlanRule:
    return PlanRule(name, frozenset(sources), frozenset(targets))


P = PlanStatus
RULES: tuple[PlanRule, ...] = (
    # Enough approvals; the apply follows at once (or at recovery after a crash).
    _rule("ApprovePending", {P.PENDING}, {P.APPROVED}),
    _rule("RejectPending", {P.PENDING}, {P.REJECTED}),
    # ``auto`` applies a pending plan directly; four-eyes goes through approved.
    _rule("ApplyReady", {P.PENDING, P.APPROVED}, {P.APPLIED}),
    # A stale basis, an ownership conflict, a crashed apply that cannot be redone.
    _rule("FailApply", {P.PENDING, P.APPROVED}, {P.FAILED}),
    # A newer commit, or the source was deleted.
    _rule("SupersedeOpen", {P.PENDING, P.APPROVED}, {P.SUPERSEDED}),
)


def allowed_targets(current: PlanStatus) -> frozenset[PlanStatus]:
    """Every status ``current`` may move to."""
    targets: set[PlanStatus] = set()
    for rule in RULES:
        if current in rule.from_states:
            targets |= rule.to_states
    return frozenset(targets)


def check_plan_transition(current: str, target: str) -> None:
    """Raise ``IllegalTransitionError`` unless a rule allows ``current → target``."""
    try:
        source, goal = PlanStatus(current), PlanStatus(target)
    except ValueError:
        raise IllegalTransitionError(f"unknown plan status {current!r} or {target!r}") from None
    if goal not in allowed_targets(source):
        if source in TERMINAL:
            reason = f"the plan is already {source}"
        else:
            reason = f"no rule allows {source} → {goal}"
        raise IllegalTransitionError(f"cannot move a plan from {source} to {goal}: {reason}")
