"""The only rules by which an execution's state may change.

Each rule is a small command-named record of the states it leaves from and the
states it may go to. ``check_transition`` is called by the one store function
that writes execution state; nothing else writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.domain.fields import State
from controlplane.errors import IllegalTransitionError

# RETRIED: a failed run whose retry (behavior CREATE_NEW_EXECUTION) is a new execution.
TERMINAL = frozenset(
    {State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED, State.RETRIED}
)


@dataclass(frozen=True)
class Rule:
    """Transitions allowed from ``from_states`` to ``to_states``."""

    name: str
    from_states: frozenset[State]
    to_states: frozenset[State]


def _rule(name: str, sources: set[State], targets: set[State]) -> Rule:
    return Rule(name, frozenset(sources), frozenset(targets))


RULES: tuple[Rule, ...] = (
    _rule("QueueCreated", {State.CREATED}, {State.QUEUED, State.CANCELLED, State.FAILED}),
    _rule("StartQueued", {State.QUEUED}, {State.RUNNING, State.CANCELLED, State.KILLED}),
    # CANCELLED: a Pause whose duration passed with `behavior: CANCEL`.
    _rule(
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
    _rule(
        "LeavePause",
        {State.PAUSED},
        {State.QUEUED, State.KILLING, State.KILLED, State.SUCCESS, State.WARNING, State.FAILED},
    ),
    _rule("RetryFailed", {State.RETRYING}, {State.QUEUED, State.RUNNING, State.KILLED}),
    _rule("FinishKilling", {State.KILLING}, {State.KILLED}),
    # A RUNNING run parked on a subflow or WaitFor interval holds no worker to stop.
    _rule("KillParked", {State.RUNNING}, {State.KILLED}),
    _rule("KillWaiting", {State.CREATED, State.QUEUED}, {State.KILLED}),
    # Kestra's restart: a run that failed, was killed or warned runs again from
    # its failed tasks, on the same revision.
    _rule("Restart", {State.FAILED, State.KILLED, State.WARNING}, {State.QUEUED}),
)


def allowed_targets(current: State) -> frozenset[State]:
    """Every state ``current`` may move to."""
    targets: set[State] = set()
    for rule in RULES:
        if current in rule.from_states:
            targets |= rule.to_states
    return frozenset(targets)


def check_transition(current: State, target: State) -> None:
    """Raise ``IllegalTransitionError`` unless a rule allows ``current → target``."""
    if target not in allowed_targets(current):
        if current in TERMINAL:
            reason = f"the execution already ended in {current}"
        else:
            reason = f"no rule allows {current} → {target}"
        raise IllegalTransitionError(f"cannot move from {current} to {target}: {reason}")
