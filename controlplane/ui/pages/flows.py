"""Namespaces and flows: the list, a flow's source and history, and diffs between revisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from controlplane.domain.diff import unified_diff
from controlplane.errors import NotFoundError
from controlplane.services import flows as flow_service
from controlplane.store.tables import FlowRevisionRow
from controlplane.ui import queries
from controlplane.ui.identity import Viewer, engine_of
from controlplane.ui.rendering import page

router = APIRouter()


@router.get("/flows")
def flow_list(
    request: Request, principal: Viewer, q: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    """Every visible namespace with its flows; ``q`` filters by flow id or namespace."""
    grouped = queries.flows_by_namespace(engine_of(request), principal)
    if q:
        grouped = {
            namespace: [(f, r) for f, r in flows if q in f.flow_id or q in namespace]
            for namespace, flows in grouped.items()
            if q in namespace or any(q in f.flow_id for f, _ in flows)
        }
    return page(request, "flows.html", {"nav": "flows", "grouped": grouped, "q": q})


def _history(request: Request, namespace: str, flow_id: str) -> list[FlowRevisionRow]:
    return list(flow_service.list_revisions(engine_of(request), namespace, flow_id))


def _pick(history: list[FlowRevisionRow], number: int | None) -> FlowRevisionRow:
    if number is None:
        return history[-1]
    for revision in history:
        if revision.revision == number:
            return revision
    raise NotFoundError(f"revision {number} does not exist")


@router.get("/flows/{namespace}/{flow_id}")
def flow_page(
    request: Request,
    principal: Viewer,
    namespace: str,
    flow_id: str,
    revision: int | None = None,
) -> Response:
    """A flow's source (the live revision, or the one asked for) and its history."""
    principal.check_namespace(namespace)
    history = _history(request, namespace, flow_id)
    shown = _pick(history, revision)
    context = {
        "nav": "flows",
        "namespace": namespace,
        "flow_id": flow_id,
        "history": list(reversed(history)),
        "shown": shown,
        "latest": history[-1],
        "executions": queries.executions(
            engine_of(request), principal, namespace=namespace, flow_id=flow_id, limit=10
        ),
    }
    return page(request, "flow.html", context)


@router.get("/flows/{namespace}/{flow_id}/diff")
def flow_diff(
    request: Request,
    principal: Viewer,
    *,
    namespace: str,
    flow_id: str,
    from_: Annotated[int, Query(alias="from", ge=1)],
    to: Annotated[int, Query(ge=1)],
) -> Response:
    """A unified diff between any two revisions of the flow."""
    principal.check_namespace(namespace)
    history = _history(request, namespace, flow_id)
    before, after = _pick(history, from_), _pick(history, to)
    diff = unified_diff(
        "" if before.deleted else before.source,
        "" if after.deleted else after.source,
        before_label=f"{namespace}/{flow_id} revision {before.revision}",
        after_label=f"{namespace}/{flow_id} revision {after.revision}",
    )
    context = {
        "nav": "flows",
        "namespace": namespace,
        "flow_id": flow_id,
        "before": before,
        "after": after,
        "diff": diff,
        "history": list(reversed(history)),
    }
    return page(request, "flow_diff.html", context)
