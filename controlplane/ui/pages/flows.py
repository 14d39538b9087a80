"""Namespaces and flows: the list, a flow's source and history, and diffs between revisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from controlplane.domain.diff import unified_diff
from controlplane.domain.fields import Input
from controlplane.errors import InvalidInputError, NotFoundError
from controlplane.services import executions as execution_service
from controlplane.services import flows as flow_service
from controlplane.services.access import Principal
from controlplane.services.lineage import commit_link
from controlplane.services.revisions import stored_spec
from controlplane.store.tables import FlowRevisionRow
from controlplane.ui import queries
from controlplane.ui.graph import flow_graph, render_svg
from controlplane.ui.identity import Editor, Viewer, engine_of
from controlplane.ui.rendering import page, state_classes
from controlplane.ui.resume_form import ResumeForm, build_form, field_errors, form_values

router = APIRouter()
_GIT = "git:"  # the origin prefix of revisions a Git source wrote


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


def commit_links(request: Request, history: list[FlowRevisionRow]) -> dict[int, str]:
    """Web links to each Git revision's commit, by revision number (as lineage computes them)."""
    urls = queries.source_urls(engine_of(request))
    links = {}
    for revision in history:
        source_id = revision.origin.removeprefix(_GIT)
        if revision.git_commit_sha and revision.origin.startswith(_GIT) and source_id in urls:
            link = commit_link(urls[source_id], revision.git_commit_sha)
            if link:
                links[revision.revision] = link
    return links


def _inputs(revision: FlowRevisionRow) -> list[Input]:
    return [] if revision.deleted else list(stored_spec(revision.source).inputs or [])


def _flow_page(
    request: Request,
    principal: Principal,
    namespace: str,
    flow_id: str,
    revision: int | None = None,
    *,
    run_form: ResumeForm | None = None,
    status_code: int = 200,
) -> Response:
    principal.check_namespace(namespace)
    history = _history(request, namespace, flow_id)
    shown = _pick(history, revision)
    latest = history[-1]
    graph = None
    if not shown.deleted:
        graph = render_svg(
            flow_graph(stored_spec(shown.source)),
            title=f"Task graph of {namespace}/{flow_id} r{shown.revision}",
            state_class=state_classes(),
        )
    if run_form is None and not latest.deleted:
        run_form = build_form("", _inputs(latest))
    context = {
        "nav": "flows",
        "namespace": namespace,
        "flow_id": flow_id,
        "history": list(reversed(history)),
        "shown": shown,
        "latest": latest,
        "graph": graph,
        "run_form": run_form,
        "can_run": principal.has_role("editor") and not latest.deleted,
        "commit_links": commit_links(request, history),
        "executions": queries.executions(
            engine_of(request), principal, namespace=namespace, flow_id=flow_id, limit=10
        ),
    }
    return page(request, "flow.html", context, status_code=status_code)


@router.get("/flows/{namespace}/{flow_id}")
def flow_page(
    request: Request,
    principal: Viewer,
    namespace: str,
    flow_id: str,
    revision: int | None = None,
) -> Response:
    """A flow's task graph and source (the live revision, or the one asked for) and history."""
    return _flow_page(request, principal, namespace, flow_id, revision)


async def _form(request: Request) -> FormData:
    return await request.form()


@router.post("/flows/{namespace}/{flow_id}/run")
def run_flow(
    request: Request,
    principal: Editor,
    namespace: str,
    flow_id: str,
    form: Annotated[FormData, Depends(_form)],
) -> Response:
    """Start a run of the live revision with the form's inputs; bad ones re-render the form."""
    principal.check_namespace(namespace)
    latest = _history(request, namespace, flow_id)[-1]
    declared = _inputs(latest)
    values = form_values(declared, form)
    try:
        row = execution_service.create_execution(
            engine_of(request),
            namespace,
            flow_id,
            inputs=values,
            trigger={"type": "ui", "actor": principal.actor},
        )
    except InvalidInputError as exc:
        rebuilt = build_form(
            "",
            declared,
            given=values,
            errors=field_errors(exc.problems),
            error="Some inputs do not fit; nothing was started.",
        )
        return _flow_page(request, principal, namespace, flow_id, run_form=rebuilt, status_code=422)
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{base}/executions/{row.id}", status_code=303)


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
        "commit_links": commit_links(request, history),
    }
    return page(request, "flow_diff.html", context)
