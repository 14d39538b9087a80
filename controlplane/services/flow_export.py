"""The live flows of a namespace with their exact sources, as a flow's PushFlows task reads them.

A flow reads only namespaces that let it in (``allowedNamespaces``): the one
it names and, when it asks for child namespaces, every child that has flows.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.services.namespaces import ensure_namespace_allowed
from controlplane.store import flows as flow_store
from controlplane.store.flows import FlowFilter

_ACTION = "read its flows"
# Every live flow of a namespace tree in one read; a namespace holds far fewer.
_ALL = 1_000_000


class LiveSource(NamedTuple):
    """One live flow: namespace, id, live revision and the source text it was written with."""

    namespace: str
    flow_id: str
    revision: int
    source: str


def live_flow_sources(
    engine: Engine, caller: str, namespace: str, *, include_children: bool
) -> list[LiveSource]:
    """The live flows of ``namespace`` (and under it), by namespace then id.

    Raises ``ForbiddenError`` when ``namespace``, or a child namespace with
    flows, does not let flows of ``caller`` read it.
    """
    ensure_namespace_allowed(engine, caller, namespace, _ACTION)
    wanted = (
        FlowFilter(namespace_prefix=namespace)
        if include_children
        else FlowFilter(namespace=namespace)
    )
    with Session(engine) as session:
        rows, _ = flow_store.list_active(session, wanted, offset=0, limit=_ALL)
        found = [LiveSource(r.namespace, r.flow_id, r.revision, r.source) for _, r in rows]
    # A child namespace is its own namespace: it must let the caller in too.
    for child in sorted({item.namespace for item in found} - {namespace}):
        ensure_namespace_allowed(engine, caller, child, _ACTION)
    return found
