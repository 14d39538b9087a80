"""``flowplane run NS FLOW``: start a run, watch it live, exit with its state."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table
from rich.text import Text

from controlplane.cli_ops.client import ServerOption, call, follow_events
from controlplane.cli_ops.output import Format, OutputOption, emit, err, out, state_text
from controlplane.cli_ops.resources import print_execution, print_log

# The states a run never leaves (controlplane.domain.transitions.TERMINAL).
TERMINAL = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED"})
_POLL_SECONDS = 0.5


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    """``k=v`` pairs as a map; the server coerces each value to the input's declared type."""
    inputs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            err.print(f"--input {pair!r}: expected KEY=VALUE")
            raise typer.Exit(2)
        inputs[key] = value
    return inputs


def exit_code(state: str) -> int:
    """0 for SUCCESS, 1 for every other end (WARNING, FAILED, KILLED, …)."""
    return 0 if state == "SUCCESS" else 1


def run(
    namespace: Annotated[str, typer.Argument(help="The flow's namespace")],
    flow_id: Annotated[str, typer.Argument(help="The flow's id")],
    *,
    inputs: Annotated[
        list[str] | None, typer.Option("--input", "-i", help="KEY=VALUE (repeat)")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="KEY=VALUE label (repeat)")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the end; exit 0 only on SUCCESS")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Stream the log while waiting (implies --wait)")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option(help="Give up waiting after this many seconds (exit 2)")
    ] = None,
    server: ServerOption,
    output: OutputOption = Format.table,
) -> None:
    """Start a run of the flow's active revision.

    Without ``--wait`` it prints the execution and exits 0. With ``--wait`` it
    shows each task's state live and exits with the run's: 0 for SUCCESS, 1
    otherwise (2 when ``--timeout`` ran out or the server refused).
    """
    body = {"inputs": parse_inputs(inputs or []), "labels": parse_inputs(label or [])}
    execution = call(server, "POST", f"/api/v1/executions/{namespace}/{flow_id}", json=body)
    if not (wait or follow):
        emit(execution, output, lambda e: out.print(f"started {e['id']} ({e['state']})"))
        return
    if output is Format.table:
        out.print(
            f"started {execution['id']}: {namespace}/{flow_id} rev {execution['flow_revision']}"
        )
    if follow:
        for event, data in follow_events(
            server, f"/api/v1/executions/{execution['id']}/logs/follow"
        ):
            if event == "log" and output is Format.table:
                print_log(data)
        final = call(server, "GET", f"/api/v1/executions/{execution['id']}")
    else:
        final = _watch(server, execution["id"], timeout, live=output is Format.table)
    emit(final, output, print_execution)
    raise typer.Exit(exit_code(final["state"]))


def _watch(server: str, execution_id: str, timeout: float | None, *, live: bool) -> Any:
    """Poll the run until it ends, redrawing its task table when ``live``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    current = call(server, "GET", f"/api/v1/executions/{execution_id}")
    with Live(_progress(current), console=out, transient=True, auto_refresh=False) as screen:
        while current["state"] not in TERMINAL:
            if deadline is not None and time.monotonic() > deadline:
                err.print(f"{execution_id} is still {current['state']} after {timeout:g}s")
                raise typer.Exit(2)
            time.sleep(_POLL_SECONDS)
            current = call(server, "GET", f"/api/v1/executions/{execution_id}")
            if live:
                screen.update(_progress(current), refresh=True)
    return current


def _progress(execution: dict[str, Any]) -> Table:
    grid = Table(box=None, show_header=False, pad_edge=False)
    grid.add_row(Text(execution["id"], style="bold"), state_text(execution["state"]))
    for task in execution.get("task_runs") or []:
        grid.add_row(Text(f"  {task['task_id']}"), state_text(task["state"]))
    return grid
