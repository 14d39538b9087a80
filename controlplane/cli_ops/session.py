"""``flowplane login`` and ``flowplane context``: saved servers and tokens."""

from __future__ import annotations

import os
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.text import Text

from controlplane.cli_ops.client import call
from controlplane.cli_ops.contexts import Context, config_path, load_contexts, normalize_server
from controlplane.cli_ops.contexts import save_contexts as write_contexts
from controlplane.cli_ops.output import Format, OutputOption, emit, err, out, table


def login(
    url: Annotated[str, typer.Argument(help="The server, e.g. https://flowplane.example.com")],
    token: Annotated[
        str | None,
        typer.Option(help="An API token (else $FLOWPLANE_TOKEN, else a prompt)"),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The context's name (default: host:port)")] = (
        None
    ),
) -> None:
    """Check a token against a server, save both as a context and make it current.

    The file is written with mode 0600; ``flowplane context`` lists and switches.
    """
    server = normalize_server(url)
    token = token or os.environ.get("FLOWPLANE_TOKEN") or typer.prompt("Token", hide_input=True)
    me = call(server, "GET", "/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
    if me.get("product") != "flowplane":
        err.print(f"{server} is not a Flowplane server")
        raise typer.Exit(2)
    name = name or urlsplit(server).netloc
    contexts = load_contexts()
    contexts.contexts[name] = Context(name=name, server=server, token=token)
    contexts.current = name
    path = write_contexts(contexts)
    caller = me["caller"]
    out.print(
        f"logged in to {server} (flowplane {me['version']}) as {caller['name']} "
        f"({caller['role']}); context {name!r} saved in {path}"
    )


def context(
    name: Annotated[str | None, typer.Argument(help="Switch to this context")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Forget the named context")] = False,
    output: OutputOption = Format.table,
) -> None:
    """List the saved contexts (``*`` marks the current one), or switch to NAME."""
    contexts = load_contexts()
    if name is not None:
        if name not in contexts.contexts:
            known = ", ".join(sorted(contexts.contexts)) or "none; run `flowplane login URL`"
            err.print(f"no context {name!r} (known: {known})")
            raise typer.Exit(2)
        if delete:
            del contexts.contexts[name]
            contexts.current = None if contexts.current == name else contexts.current
            write_contexts(contexts)
            out.print(f"deleted context {name!r}")
            return
        contexts.current = name
        write_contexts(contexts)
        out.print(f"switched to {name!r} ({contexts.contexts[name].server})")
        return
    # Tokens are secrets: listings never show them, in any format.
    rows = [
        {"current": "*" if c.name == contexts.current else "", "name": c.name, "server": c.server}
        for c in contexts.contexts.values()
    ]

    def human(body: list[dict[str, str]]) -> None:
        if not body:
            out.print(Text(f"no contexts in {config_path()}; run `flowplane login URL`"))
            return
        table(body, ("current", "name", "server"))

    emit(rows, output, human)
