"""The operator commands' view of the server: which URL, and one call helper.

Plain calls go through ``controlplane.cli._call`` (one error policy for every
command: the API's message on stderr and exit 2); log streams read the
server-sent events of ``/logs/follow`` here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import typer

from controlplane.cli_ops.contexts import default_server, normalize_server, token_for
from controlplane.cli_ops.output import err

ServerOption = Annotated[
    str,
    typer.Option(
        help="Flowplane URL (else $FLOWPLANE_URL, the current context, or "
        "http://127.0.0.1:$FLOWPLANE_PORT)",
        envvar=["FLOWPLANE_URL", "FLOWPLANE_ENDPOINT"],
        default_factory=default_server,
        show_default="current context",
    ),
]


def call(server: str, method: str, url: str, **kwargs: Any) -> Any:
    """One API call with the saved or ``$FLOWPLANE_TOKEN`` token; errors exit 2."""
    # cli.py imports this package at its top, so its helper is looked up at call time.
    from controlplane.cli import _call  # noqa: PLC0415

    return _call(normalize_server(server), method, url, **kwargs)


def headers_for(server: str) -> dict[str, str]:
    """The ``Authorization`` header for ``server``, when a token is known for it."""
    token = token_for(normalize_server(server))
    return {"Authorization": f"Bearer {token}"} if token else {}


def follow_events(server: str, url: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs from a server-sent event stream, until the server ends it."""
    server = normalize_server(server)
    timeout = httpx.Timeout(30, read=None)  # a quiet run sends nothing for a while
    try:
        with (
            httpx.Client(base_url=server, timeout=timeout, headers=headers_for(server)) as client,
            client.stream("GET", url) as response,
        ):
            if response.is_error:
                response.read()
                err.print(f"GET {url}: {response.status_code} {_message(response)}")
                raise typer.Exit(2)
            event, data = "message", ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line.partition(":")[2].strip()
                elif line.startswith("data:"):
                    data += line.partition(":")[2].strip()
                elif not line and data:
                    yield event, json.loads(data)
                    event, data = "message", ""
    except httpx.HTTPError as exc:
        err.print(f"cannot reach {server}: {exc}")
        raise typer.Exit(2) from None


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text
