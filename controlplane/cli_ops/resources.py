"""``flowplane flows|executions|namespaces|tokens``: list and show what the server holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.text import Text

from controlplane.cli_ops.client import ServerOption, call, follow_events
from controlplane.cli_ops.output import (
    Format,
    OutputOption,
    details,
    emit,
    err,
    out,
    state_text,
    table,
)

flows_app = typer.Typer(help="Flows: the active revision of each.", no_args_is_help=True)
executions_app = typer.Typer(help="Executions: runs and their logs.", no_args_is_help=True)
namespaces_app = typer.Typer(help="Namespaces.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (admin).", no_args_is_help=True)

Limit = Annotated[int, typer.Option(help="At most this many rows", min=1, max=1000)]


@flows_app.command("list")
def flows_list(
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Exactly")] = None,
    prefix: Annotated[str | None, typer.Option(help="Namespace prefix, e.g. team-a")] = None,
    limit: Limit = 100,
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """The active flows, one row each."""
    params = {"namespace": namespace, "namespace_prefix": prefix, "limit": limit}
    page = call(server, "GET", "/api/v1/flows", params=_present(params))
    columns = ("namespace", "id", "revision", "origin", "updated_at")
    emit(page, output, lambda body: table(body["items"], columns))


@flows_app.command("apply")
def flows_apply(
    files: Annotated[list[Path], typer.Argument(help="Flow YAML files", exists=True)],
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """Store each file as its flow's new revision (origin ``api``), byte for byte.

    A file whose content is unchanged is a no-op; an invalid one is refused with
    every problem named by line, and the command exits 2.
    """
    stored = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        head = yaml.safe_load(text)
        if not isinstance(head, dict) or "id" not in head or "namespace" not in head:
            err.print(f"{path}: a flow needs `id` and `namespace`")
            raise typer.Exit(2)
        url = f"/api/v1/flows/{head['namespace']}/{head['id']}"
        headers = {"Content-Type": "application/x-yaml"}
        stored.append(call(server, "PUT", url, content=text.encode(), headers=headers))
    columns = ("namespace", "id", "revision", "origin")
    emit(stored, output, lambda body: table(body, columns))


@flows_app.command("show")
def flows_show(
    namespace: Annotated[str, typer.Argument(help="The flow's namespace")],
    flow_id: Annotated[str, typer.Argument(help="The flow's id")],
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """One flow: its revision, origin and source YAML."""
    flow = call(server, "GET", f"/api/v1/flows/{namespace}/{flow_id}")

    def human(body: dict[str, Any]) -> None:
        details(body, ("namespace", "id", "revision", "origin", "plan_id", "sha256", "updated_at"))
        commit = body.get("git_commit") or {}
        if commit:
            out.print(f"git: {commit.get('sha', '')[:12]} {commit.get('message', '')}".rstrip())
        out.rule()
        out.print(body["content"], markup=False, highlight=False, end="", soft_wrap=True)

    emit(flow, output, human)


@executions_app.command("list")
def executions_list(
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    flow_id: Annotated[str | None, typer.Option("--flow", help="The flow's id")] = None,
    state: Annotated[str | None, typer.Option(help="e.g. FAILED")] = None,
    limit: Limit = 50,
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """Recent executions, newest first."""
    params = {"namespace": namespace, "flow_id": flow_id, "state": state, "limit": limit}
    rows = call(server, "GET", "/api/v1/executions", params=_present(params))
    columns = ("id", "namespace", "flow_id", "flow_revision", "state", "created_at")
    emit(rows, output, lambda body: table(body, columns))


@executions_app.command("show")
def executions_show(
    execution_id: Annotated[str, typer.Argument(help="The execution id")],
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """One execution: its lineage, state and task runs."""
    emit(call(server, "GET", f"/api/v1/executions/{execution_id}"), output, print_execution)


def print_execution(body: dict[str, Any]) -> None:
    """An execution and its task runs, for people."""
    details(
        body,
        ("id", "namespace", "flow_id", "flow_revision", "git_commit_sha", "plan_id", "origin"),
    )
    out.print(Text("state: ", style="bold") + state_text(body["state"]))
    if body.get("inputs"):
        details(body, ("inputs",))
    if body.get("outputs"):
        details(body, ("outputs",))
    for run in body.get("task_runs") or []:
        line = Text(f"  {run['task_id']:<24} ") + state_text(run["state"])
        if run.get("attempt", 1) > 1:
            line += Text(f"  attempt {run['attempt']}")
        out.print(line)


@executions_app.command("logs")
def executions_logs(
    execution_id: Annotated[str, typer.Argument(help="The execution id")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming until the run ends")
    ] = False,
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """The run's log lines; with ``--follow``, stream them until the run ends."""
    if not follow:
        lines = call(server, "GET", f"/api/v1/executions/{execution_id}/logs")
        emit(lines, output, print_logs)
        return
    for event, data in follow_events(server, f"/api/v1/executions/{execution_id}/logs/follow"):
        if event == "log":
            emit(data, output, print_log)
        elif event == "end" and output is Format.table:
            out.print(Text("ended: ") + state_text(str(data.get("state"))))


def print_logs(lines: list[dict[str, Any]]) -> None:
    """Log lines, one per row."""
    for line in lines:
        print_log(line)


def print_log(line: dict[str, Any]) -> None:
    """One log line: time, level, task, message."""
    stamp = str(line.get("timestamp", ""))[11:19]
    level = str(line.get("level", ""))
    style = {"ERROR": "red", "WARN": "yellow", "WARNING": "yellow"}.get(level, "dim")
    text = Text(f"{stamp} ") + Text(f"{level:<5} ", style=style)
    text += Text(f"[{line.get('task_id') or '-'}] ", style="cyan") + Text(line["message"])
    out.print(text, soft_wrap=True)


@executions_app.command("resume")
def executions_resume(
    execution_id: Annotated[str, typer.Argument(help="The paused execution")],
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="KEY=VALUE for onResume (repeat)")
    ] = None,
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """Resume a run waiting at a Pause task (once), as the token's owner."""
    from controlplane.cli_ops.run import parse_inputs  # noqa: PLC0415 - run imports this module

    body = {"inputs": parse_inputs(inputs or [])}
    resumed = call(server, "POST", f"/api/v1/executions/{execution_id}/resume", json=body)
    emit(resumed, output, print_execution)


@namespaces_app.command("list")
def namespaces_list(
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """The namespaces the caller may see."""
    page = call(server, "GET", "/api/v1/namespaces")
    columns = ("name", "description", "allowed_namespaces", "updated_at")
    emit(page, output, lambda body: table(body["items"], columns))


@tokens_app.command("list")
def tokens_list(
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """The API tokens (never their secret values)."""
    rows = call(server, "GET", "/api/v1/tokens")
    columns = ("id", "name", "role", "namespaces", "expires_at", "created_by")
    emit(rows, output, lambda body: table(body, columns))


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="Who or what holds it, e.g. ci-team-a")],
    role: Annotated[str, typer.Option(help="viewer, editor, reviewer or admin")] = "viewer",
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Namespace glob it may see and change (repeat)"),
    ] = None,
    identity: Annotated[
        list[str] | None, typer.Option(help="Verified e-mail of its holder (repeat)")
    ] = None,
    expires_at: Annotated[str | None, typer.Option(help="RFC 3339 time with offset")] = None,
    *,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """Create a token; its secret is printed once, now."""
    body = {
        "name": name,
        "role": role,
        "namespaces": namespace or ["*"],
        "identities": identity or [],
        "expires_at": expires_at,
    }
    created = call(server, "POST", "/api/v1/tokens", json=body)

    def human(token: dict[str, Any]) -> None:
        details(token, ("id", "name", "role", "namespaces"))
        out.print(Text("token: ", style="bold") + Text(token["token"]))
        out.print("store it now: the server keeps only its hash", style="dim")

    emit(created, output, human)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The token id (not its secret)")],
    *,
    server: ServerOption,
) -> None:
    """Revoke a token: it stops working at once."""
    call(server, "DELETE", f"/api/v1/tokens/{token_id}")
    out.print(f"revoked {token_id}")


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}
