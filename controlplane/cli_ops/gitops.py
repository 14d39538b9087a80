"""``flowplane plans list|show`` and ``flowplane sources …``: review before approving."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from controlplane.cli_ops.client import ServerOption, call
from controlplane.cli_ops.output import Format, OutputOption, details, diff_text, emit, out, table

sources_app = typer.Typer(help="Git sources: sync, drift and rollback.", no_args_is_help=True)

_PLAN_COLUMNS = ("id", "source_id", "kind", "status", "summary", "target_commit", "created_at")
_SOURCE_COLUMNS = ("id", "url", "branch", "approval", "prune", "self_heal", "last_commit")


def plans_list(
    source: Annotated[str | None, typer.Option(help="Only this source's plans")] = None,
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """Plans, newest first: what each would change and where its review stands."""
    params = {"source_id": source} if source else {}
    rows = call(server, "GET", "/api/v1/plans", params=params)
    emit(rows, output, lambda body: table([_plan_row(p) for p in body], _PLAN_COLUMNS))


def plans_show(
    plan_id: Annotated[str, typer.Argument(help="The plan id")],
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """One plan with its coloured diff: read it before ``flowplane plans approve``."""
    emit(call(server, "GET", f"/api/v1/plans/{plan_id}"), output, print_plan)


def print_plan(plan: dict[str, Any]) -> None:
    """A plan's header, its problems and its diff, for people."""
    details(plan, ("id", "source_id", "kind", "status", "status_reason", "target_commit"))
    if plan.get("author"):
        details(plan, ("author", "message"))
    progress = plan.get("progress")
    if progress:
        out.print(f"approvals: {progress['approvals']} of {progress['required']}")
    for problem in plan.get("problems") or []:
        where = problem.get("file") or ""
        out.print(Text(f"problem: {where} {problem.get('message', problem)}", style="red"))
    out.rule()
    out.print(diff_text(plan.get("text") or ""), end="")
    # The field-level summary above, then each flow's unified diff: what approval activates.
    for change in plan.get("changes") or []:
        if change.get("text_diff"):
            out.print(diff_text(change["text_diff"]), end="")


def _plan_row(plan: dict[str, Any]) -> dict[str, Any]:
    commit = plan.get("target_commit")
    return {**plan, "target_commit": commit[:12] if commit else None}


@sources_app.command("list")
def sources_list(
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """The Git sources and the commit each last applied."""
    rows = call(server, "GET", "/api/v1/sources")
    emit(rows, output, lambda body: table([_source_row(s) for s in body], _SOURCE_COLUMNS))


@sources_app.command("show")
def sources_show(
    source_id: Annotated[str, typer.Argument(help="The source id")],
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """One Git source's settings."""
    source = call(server, "GET", f"/api/v1/sources/{source_id}")
    emit(source, output, lambda body: details(body, list(body)))


@sources_app.command("sync")
def sources_sync(
    source_id: Annotated[str, typer.Argument(help="The source id")],
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """Fetch the source now and print the plan; exits 1 when the plan failed."""
    plan = call(server, "POST", f"/api/v1/sources/{source_id}/sync")
    emit(plan, output, print_plan)
    if plan["status"] == "failed":
        raise typer.Exit(1)


@sources_app.command("drift")
def sources_drift(
    source_id: Annotated[str, typer.Argument(help="The source id")],
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """What differs between the source's last applied commit and the live flows.

    Exits 3 when there is drift, so a script can tell the two apart.
    """
    drift = call(server, "GET", f"/api/v1/sources/{source_id}/drift")

    def human(body: dict[str, Any]) -> None:
        if not body["drifted"]:
            out.print(f"{source_id}: in sync with {str(body.get('commit'))[:12]}")
            return
        table(body["items"], ("kind", "namespace", "flow_id", "live_revision", "detail"))

    emit(drift, output, human)
    if drift["drifted"]:
        raise typer.Exit(3)


@sources_app.command("rollback")
def sources_rollback(
    source_id: Annotated[str, typer.Argument(help="The source id")],
    commit: Annotated[str, typer.Argument(help="An earlier commit of the source to go back to")],
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """Plan a return to an earlier commit (reviewed like any plan)."""
    plan = call(server, "POST", f"/api/v1/sources/{source_id}/rollback", json={"commit": commit})
    emit(plan, output, print_plan)
    if plan["status"] == "failed":
        raise typer.Exit(1)


def _source_row(source: dict[str, Any]) -> dict[str, Any]:
    commit = source.get("last_commit")
    return {**source, "last_commit": commit[:12] if isinstance(commit, str) else commit}
