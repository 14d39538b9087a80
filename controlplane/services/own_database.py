"""Refusing a flow's database connection to Flowplane's own database.

Database tasks (JDBC) connect from the worker or the server's polling loop,
so a flow naming Flowplane's own database would reach it from a host the
database may trust. ``ensure_not_server_database`` compares the address a
task is about to connect to with the engine's URL; a match fails the task.

The comparison is by name and port: every local name (``localhost``,
loopback addresses, this machine's host name, a Unix socket) counts as the
same host. A database reached by another of the machine's addresses is not
recognised, which is why docs/security.md asks that Flowplane's database
accept no password-less login from the worker's host.
"""

from __future__ import annotations

import ipaddress
import socket

from sqlalchemy import Engine

from controlplane.plugins.api import TaskFailedError

DEFAULT_PORT = 5432
_LOCAL = "<this machine>"


def ensure_not_server_database(engine: Engine, host: str, port: int, dbname: str) -> None:
    """Raise ``TaskFailedError`` when ``host:port/dbname`` is the database of ``engine``.

    A SQLite engine has no network address, so nothing matches it.
    """
    url = engine.url
    if not url.get_backend_name().startswith("postgresql"):
        return
    own_db = url.database or url.username or ""
    socket_host = url.query.get("host") or ""
    if isinstance(socket_host, tuple):  # ?host= given more than once
        socket_host = socket_host[0] if socket_host else ""
    own_host = _normal_host(url.host or socket_host)
    own_port = url.port or DEFAULT_PORT
    if (
        _normal_host(host) == own_host
        and (port or DEFAULT_PORT) == own_port
        and dbname.strip() == own_db
    ):
        raise TaskFailedError(
            f"database {dbname!r} at {host}:{port or DEFAULT_PORT} is Flowplane's own database; "
            "a flow may not connect to it"
        )


def _normal_host(host: str) -> str:
    """One name per host: every way to say "this machine" becomes the same value."""
    name = host.strip().strip("[]").lower()
    if not name or name.startswith(("/", "@")) or name == "localhost":
        return _LOCAL  # no host or a Unix socket: the local server
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        local_names = {socket.gethostname().lower(), socket.getfqdn().lower()}
        return _LOCAL if name in local_names or name.endswith(".localhost") else name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return _LOCAL
    return str(address)
