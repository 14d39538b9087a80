"""The only rules by which an execution's state may change.

Each rule is a small command-named record of the states it leaves from and the
states it may go to. ``check_transition`` is called by the one store function
that writes execution state; nothing else writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from controlplane.domain.fields import State
from controlplane.errors import IllegalTransitionError

# RETRIED: a failed run whose retry (behavior CREATE_NEW_EXECUTION) is a new execution.
S = TypeVar("S", bound=StrEnum)

TERMINAL = frozenset(
    {State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED, State.RETRIED}
)


@dataclass(frozen=True)
class Rule(Generic[S]):
    """Transitions allowed from ``from_states`` to ``to_states``.

    One shape for every state machine of the project: executions here, plans
    in ``domain/plan_states.py``.
    """

    name: str
    from_states: frozenset[S]
    to_states: frozenset[S]


def rule(name: str, sources: set[S], targets: set[S]) -> Rule[S]:
    """A rule from ``sources`` to ``targets``."""
    return Rule(name, frozenset(sources), frozenset(targets))


def targets_of(rules: tuple[Rule[S], ...], current: S) -> frozenset[S]:
    """Every state ``current`` may move to under ``rules``."""
    targets: set[S] = set()
    for each in rules:
        if current in each.from_states:
            targets |= each.to_states
    return frozenset(targets)


def refuse_unless_allowed(
    rules: tuple[Rule[S], ...], current: S, target: S, *, ended: str | None, subject: str
) -> None:
    """Raise ``IllegalTransitionError`` unless a rule allows ``current → target``.

    ``ended`` explains a refusal from a terminal state ("the plan is already
    applied"); ``subject`` names what moves, for the message.
    """
    if target not in targets_of(rules, current):
        reason = ended or f"no rule allows {current} → {target}"
        raise IllegalTransitionError(f"cannot move {subject}from {current} to {target}: {reason}")


RULES: tuple[Rule[State], ...] = (
    rule("QueueCreated", {State.CREATED}, {State.QUEUED, State.CANCELLED, State.FAILED}),
    rule("StartQueued", {State.QUEUED}, {State.RUNNING, State.CANCELLED, State.KILLED}),
    # CANCELLED: a Pause whose duration passed with `behavior: CANCEL`.
    rule(
        "EndRunning",
        {State.RUNNING},
        {
            State.SUCCESS,
            State.WARNING,
            State.FAILED,
            State.PAUSED,
            State.RETRYING,
            State.RETRIED,
            State.KILLING,
            State.CANCELLED,
        },
    ),
    # A paused run is resumed (back to the queue), killed, or ended by its Pause timeout.
    rule(
        "LeavePause",
        {State.PAUSED},
        {State.QUEUED, State.KILLING, State.KILLED, State.SUCCESS, State.WARNING, State.FAILED},
    ),
    rule("RetryFailed", {State.RETRYING}, {State.QUEUED, State.RUNNING, State.KILLED}),
    rule("FinishKilling", {State.KILLING}, {State.KILLED}),
    # A RUNNING run parked on a subflow or WaitFor interval holds no worker to stop.
    rule("KillParked", {State.RUNNING}, {State.KILLED}),
    rule("KillWaiting", {State.CREATED, State.QUEUED}, {State.KILLED}),
    # Kestra's restart: a run that failed, was killed or warned runs again from
    # its failed tasks, on the same revision.
    rule("Restart", {State.FAILED, State.KILLED, State.WARNING}, {State.QUEUED}),
)


def allowed_targets(current: State) -> frozenset[State]:
    """Every state ``current`` may move to."""
    return targets_of(RULES, current)


def check_transition(current: State, target: State) -> None:
    """Raise ``IllegalTransitionError`` unless a rule allows ``current → target``."""
    ended = f"the execution already ended in {current}" if current in TERMINAL else None
    refuse_unless_allowed(RULES, current, target, ended=ended, subject="")
