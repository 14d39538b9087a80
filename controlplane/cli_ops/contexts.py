"""Saved servers ("contexts"), as ``kubectl`` and ``argocd`` keep them.

The file is ``<config dir>/flowplane/contexts.yaml`` (``platformdirs`` when it
is installed, else ``$XDG_CONFIG_HOME`` or ``~/.config``), or the path in
``$FLOWPLANE_CONFIG``. It holds tokens, so it is written with mode 0600.

Which server a command talks to, first match wins: ``--server``,
``$FLOWPLANE_URL`` (or the older ``$FLOWPLANE_ENDPOINT``), the current context,
then ``http://127.0.0.1:$FLOWPLANE_PORT`` (8080 when unset). The token is
``$FLOWPLANE_TOKEN``, else the token saved for that very server: a context's
token is never sent to another server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PORT = 8080


@dataclass
class Context:
    """One saved server and the token to use there."""

    name: str
    server: str
    token: str | None = None


@dataclass
class ContextFile:
    """The saved contexts and which one is current."""

    current: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)

    def current_context(self) -> Context | None:
        """The current context, or None before any login."""
        return self.contexts.get(self.current) if self.current else None

    def for_server(self, server: str) -> Context | None:
        """The context saved for ``server`` (the current one first), if any."""
        wanted = normalize_server(server)
        current = self.current_context()
        if current is not None and normalize_server(current.server) == wanted:
            return current
        return next(
            (c for c in self.contexts.values() if normalize_server(c.server) == wanted), None
        )


def config_path() -> Path:
    """Where the contexts live (see the module docstring)."""
    explicit = os.environ.get("FLOWPLANE_CONFIG")
    if explicit:
        return Path(explicit)
    try:
        from platformdirs import user_config_dir  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
    except ImportError:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(base) / "flowplane" / "contexts.yaml"
    return Path(user_config_dir("flowplane")) / "contexts.yaml"


def normalize_server(server: str) -> str:
    """A server URL without a trailing slash, with a scheme."""
    server = server.strip().rstrip("/")
    return server if "://" in server else f"http://{server}"


def load_contexts(path: Path | None = None) -> ContextFile:
    """The saved contexts; an absent file is an empty set."""
    path = path or config_path()
    if not path.exists():
        return ContextFile()
    raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    contexts = {
        str(name): Context(name=str(name), server=str(body["server"]), token=body.get("token"))
        for name, body in (raw.get("contexts") or {}).items()
    }
    return ContextFile(current=raw.get("current"), contexts=contexts)


def save_contexts(contexts: ContextFile, path: Path | None = None) -> Path:
    """Write the contexts with mode 0600 (the file holds tokens); returns the path."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = {
        "current": contexts.current,
        "contexts": {
            c.name: {"server": c.server, **({"token": c.token} if c.token else {})}
            for c in contexts.contexts.values()
        },
    }
    # Created 0600 from the start, so the token is never readable by others, not even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        yaml.safe_dump(body, handle, sort_keys=False)
    path.chmod(0o600)
    return path


def default_server() -> str:
    """The server to use when ``--server`` and ``$FLOWPLANE_URL`` are not given."""
    current = load_contexts().current_context()
    if current is not None:
        return current.server
    port = os.environ.get("FLOWPLANE_PORT") or str(DEFAULT_PORT)
    return f"http://127.0.0.1:{port}"


def token_for(server: str | None = None) -> str | None:
    """``$FLOWPLANE_TOKEN``, else the token saved for ``server`` (default: the current one)."""
    token = os.environ.get("FLOWPLANE_TOKEN")
    if token:
        return token
    contexts = load_contexts()
    context = contexts.for_server(server) if server else contexts.current_context()
    return context.token if context else None
