"""Switching a flow's trigger on or off at run time (Kestra's ``trigger.Toggle``).

The switch is kept in ``trigger_states`` (``controlplane.store.trigger_states``),
beside the flow's source rather than in it: a Git revision keeps saying what
the author wrote, and the switch survives new revisions as Kestra's trigger
state does. A trigger whose source says ``disabled: true`` stays disabled
whatever the switch says. Every change is an audit event.

Who may switch a trigger of another namespace is the caller's business
(``ensure_namespace_allowed``); this module checks that the trigger exists.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.errors import NotFoundError
from controlplane.services.revisions import stored_spec
from controlplane.store import flows as flow_store
from controlplane.store import trigger_states as store
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.trigger_states import TriggerKey

__all__ = ["TriggerKey", "disabled_triggers", "set_trigger_enabled"]


def set_trigger_enabled(
    engine: Engine, namespace: str, flow_id: str, trigger_id: str, *, enabled: bool, actor: str
) -> bool:
    """Switch the live flow's trigger on or off; return whether the source disables it anyway.

    Raises ``NotFoundError`` when the flow does not exist or has no such trigger.
    """
    key = (namespace, flow_id, trigger_id)
    with transaction(engine) as session:
        _flow, revision = flow_store.get_live(session, namespace, flow_id)
        if revision is None:
            raise NotFoundError(f"flow {namespace}/{flow_id} does not exist")
        trigger = next(
            (t for t in stored_spec(revision.source).triggers or [] if t.id == trigger_id), None
        )
        if trigger is None:
            raise NotFoundError(f"flow {namespace}/{flow_id} has no trigger {trigger_id!r}")
        if store.put_state(session, key, disabled=not enabled, actor=actor):
            record_event(
                session,
                actor=actor,
                action="trigger.enable" if enabled else "trigger.disable",
                target=f"trigger:{namespace}/{flow_id}/{trigger_id}",
                summary={"enabled": enabled},
            )
        return trigger.disabled


def disabled_triggers(engine: Engine) -> set[TriggerKey]:
    """Every trigger switched off at run time, as (namespace, flow id, trigger id)."""
    with Session(engine) as session:
        return store.disabled_keys(session)
