"""Reaching PostgreSQL from a JDBC URL: Kestra's connection properties, through psycopg.

Flows written for Kestra give ``url: jdbc:postgresql://host:port/db`` plus
``username``/``password``; psycopg speaks libpq's parameters. ``parse_url``
maps one to the other (libpq ``postgresql://`` URLs are accepted too), and
``connect`` opens the connection with the rendered credentials.

The password is passed as a connection parameter, never in a URL or a log
line, and ``scrub`` removes it from any error text before the error leaves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import ValidationInfo, field_validator

from controlplane.domain.fields import StrictModel
from controlplane.plugins.api import TaskFailedError

if TYPE_CHECKING:
    import psycopg

MASK = "******"
# A dead host fails the task in seconds rather than hanging it.
DEFAULT_CONNECT_TIMEOUT = 10
APPLICATION_NAME = "flowplane"

SslMode = Literal["DISABLE", "ALLOW", "PREFER", "REQUIRE", "VERIFY_CA", "VERIFY_FULL"]

# pgJDBC URL parameters and the libpq parameter each one is.
_JDBC_PARAMETERS = {
    "user": "user",
    "password": "password",
    "ssl": "ssl",
    "sslmode": "sslmode",
    "sslrootcert": "sslrootcert",
    "sslcert": "sslcert",
    "sslkey": "sslkey",
    "sslpassword": "sslpassword",
    "applicationname": "application_name",
    "application_name": "application_name",
    "connecttimeout": "connect_timeout",
    "connect_timeout": "connect_timeout",
    "logintimeout": "connect_timeout",
    "currentschema": "search_path",
    "options": "options",
    "targetservertype": "target_session_attrs",
    "target_session_attrs": "target_session_attrs",
    "dbname": "dbname",
    "host": "host",
    "port": "port",
}
# pgJDBC's targetServerType values, as libpq's target_session_attrs.
_TARGETS = {
    "any": "any",
    "primary": "read-write",
    "master": "read-write",
    "secondary": "read-only",
    "slave": "read-only",
    "preferSecondary": "prefer-standby",
    "preferslave": "prefer-standby",
}


def parse_url(url: str) -> dict[str, str]:
    """Libpq parameters from ``jdbc:postgresql://h:p/db?k=v`` (or ``postgresql://``).

    ``jdbc:postgresql:db`` (local server) and comma-separated hosts are
    accepted as pgJDBC accepts them. An unknown URL parameter fails, naming it.
    """
    text = url.strip()
    text = text.removeprefix("jdbc:")
    if text.startswith("postgres://"):
        text = "postgresql://" + text.removeprefix("postgres://")
    if not text.startswith("postgresql:"):
        raise TaskFailedError(
            "url must be a PostgreSQL JDBC URL such as jdbc:postgresql://host:5432/database"
        )
    if text.startswith("postgresql://"):
        params, query = _network(text)
    else:
        # jdbc:postgresql:database (or jdbc:postgresql:/) means the local server.
        rest, _, query = text.removeprefix("postgresql:").partition("?")
        params = {"host": "localhost"}
        if rest.strip("/"):
            params["dbname"] = unquote(rest.strip("/"))
    for key, value in parse_qsl(query, keep_blank_values=True):
        _add_parameter(params, key, value)
    return params


def _network(text: str) -> tuple[dict[str, str], str]:
    """The parameters of a ``postgresql://user:password@host:port,host2/db`` URL, and its query."""
    params: dict[str, str] = {}
    parts = urlsplit(text)
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    if userinfo:
        user, _, password = userinfo.partition(":")
        params["user"] = unquote(user)
        if password:
            params["password"] = unquote(password)
    hosts, ports = _hosts(hostinfo)
    if hosts:
        params["host"] = ",".join(hosts)
    if any(ports):
        params["port"] = ",".join(port or "5432" for port in ports)
    if parts.path.strip("/"):
        params["dbname"] = unquote(parts.path.strip("/"))
    return params, parts.query


def _hosts(hostinfo: str) -> tuple[list[str], list[str]]:
    hosts: list[str] = []
    ports: list[str] = []
    for item in filter(None, hostinfo.split(",")):
        if item.startswith("["):  # [::1]:5432
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            host, _, port = item.partition(":")
        hosts.append(unquote(host))
        ports.append(port)
    return hosts, ports


def _add_parameter(params: dict[str, str], key: str, value: str) -> None:
    name = _JDBC_PARAMETERS.get(key.lower()) or _JDBC_PARAMETERS.get(key)
    if name is None:
        raise TaskFailedError(
            f"url parameter {key!r} is not supported; known: "
            + ", ".join(sorted({k for k in _JDBC_PARAMETERS if k.islower()}))
        )
    if name == "ssl":
        # pgJDBC's ssl=true verifies the server fully unless sslmode says otherwise.
        if value.lower() in {"true", ""}:
            params.setdefault("sslmode", "verify-full")
        return
    if name == "search_path":
        params["options"] = (params.get("options", "") + f" -c search_path={value}").strip()
        return
    if name == "target_session_attrs":
        value = _TARGETS.get(value, _TARGETS.get(value.lower(), value))
    if name == "sslmode":
        value = value.lower().replace("_", "-")
    params[name] = value


class PostgresConnection(StrictModel):
    """Kestra's PostgreSQL connection properties (``PostgresConnectionInterface``)."""

    url: str
    username: str | None = None
    password: str | None = None
    timeZoneId: str | None = None  # noqa: N815 - Kestra's field name
    ssl: bool | None = None
    sslMode: SslMode | None = None  # noqa: N815
    sslRootCert: str | None = None  # noqa: N815
    sslCert: str | None = None  # noqa: N815
    sslKey: str | None = None  # noqa: N815
    sslKeyPassword: str | None = None  # noqa: N815

    @field_validator("sslMode", mode="before")
    @classmethod
    def _ssl_mode(cls, value: Any) -> Any:
        # Kestra writes VERIFY_CA; libpq and people also write verify-ca.
        return value.upper().replace("-", "_") if isinstance(value, str) else value

    @field_validator("sslRootCert", "sslCert", "sslKey", "sslKeyPassword", mode="before")
    @classmethod
    def _no_pem(cls, value: Any, info: ValidationInfo) -> Any:
        # PEM contents would have to be written to disk for libpq; until that is
        # proven against a TLS server, the files are named in the url instead.
        if value is not None:
            raise ValueError(
                f"{info.field_name} is not supported: put the certificate files on the worker "
                "and name them in the url (sslrootcert=, sslcert=, sslkey=, sslpassword=)"
            )
        return value

    @contextmanager
    def connect(
        self,
        render: Callable[[Any], Any],
        guard: Callable[[str, int, str], None],
        *,
        autocommit: bool = True,
    ) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """An open connection with this spec's rendered properties; closed on exit.

        ``guard(host, port, dbname)`` is called for every host the connection
        may reach, before connecting (the context's ``ensure_not_server_database``).
        A failure to connect is a ``TaskFailedError`` whose text never holds
        the password.
        """
        import psycopg  # noqa: PLC0415 - loaded when a JDBC task runs, not with the registry

        password = _text(render(self.password)) if self.password is not None else None
        params = self._params(render)
        secrets = [s for s in (password, params.get("password"), params.get("sslpassword")) if s]
        if password is not None:
            params["password"] = password
        for host, port in _targets(params):
            guard(host, port, params.get("dbname") or params["user"])
        params = isolated(params)
        try:
            connection = psycopg.connect(autocommit=autocommit, **params)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise TaskFailedError(
                f"cannot connect to PostgreSQL: {scrub(str(exc), secrets)}"
            ) from None
        try:
            if self.timeZoneId is not None:
                zone = _text(render(self.timeZoneId))
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
                if not autocommit:
                    connection.commit()
            yield connection
        finally:
            connection.close()

    def _params(self, render: Callable[[Any], Any]) -> dict[str, str]:
        params = parse_url(_text(render(self.url)))
        if self.username is not None:
            params["user"] = _text(render(self.username))
        if self.ssl:
            params.setdefault("sslmode", "verify-full")
        if self.sslMode is not None:
            params["sslmode"] = self.sslMode.lower().replace("_", "-")
        params.setdefault("connect_timeout", str(DEFAULT_CONNECT_TIMEOUT))
        params.setdefault("application_name", APPLICATION_NAME)
        if not params.get("user"):
            # libpq would log in as the worker's OS user.
            raise TaskFailedError("username is required (or user= in the url)")
        return params


def _targets(params: dict[str, str]) -> list[tuple[str, int]]:
    """Each (host, port) the connection may reach; a Unix socket or no host is refused.

    A socket would log in with peer authentication as the worker's OS user.
    """
    hosts = params.get("host", "").split(",")
    ports = params.get("port", "").split(",")
    targets: list[tuple[str, int]] = []
    for index, host in enumerate(hosts):
        name = host.strip()
        if not name or name.startswith(("/", "@")):
            raise TaskFailedError(
                "url must name a network host: a Unix socket (or no host) would log in "
                "as the worker's operating-system user"
            )
        port = (ports[index] if index < len(ports) else ports[-1]).strip() or "5432"
        if not port.isdigit():
            raise TaskFailedError(f"port {port!r} is not a number")
        targets.append((name, int(port)))
    return targets


# libpq's defaults that read a file of the worker (home directory or the
# environment's path): each gets a path that does not exist, unless the flow
# named one. An empty value would not do: libpq reads "" as "the default file".
_NO_FILE = "/nonexistent/flowplane-jdbc-no-file"
_FILE_DEFAULTS = ("passfile", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslcrldir")
# Values for parameters libpq would otherwise take from the environment and
# for which an empty value is refused; GSSAPI is off so the worker's Kerberos
# tickets are never offered.
_EXPLICIT = {
    "sslcertmode": "allow",
    "min_protocol_version": "3.0",
    "max_protocol_version": "3.0",
    "gssencmode": "disable",
    "require_auth": "!gss,!sspi",
}


def isolated(params: dict[str, str]) -> dict[str, str]:
    """``params`` with every parameter libpq would read from the worker set explicitly.

    libpq fills a parameter not given from the process environment
    (``PGUSER``, ``PGPASSWORD``, ``PGHOSTADDR``, ``PGSSLCERT``...) and from
    the home directory (``~/.pgpass``, ``~/.postgresql/postgresql.key``): the
    server's own identity. Given explicitly (empty, the compiled default or a
    missing file), none of those is read. ``PGSERVICE`` cannot be overridden
    that way, so a worker whose environment sets it refuses to connect.
    """
    import psycopg  # noqa: PLC0415

    if os.environ.get("PGSERVICE"):
        raise TaskFailedError(
            "the worker's environment sets PGSERVICE, which would choose the connection "
            "for every flow; unset it on the worker to run JDBC tasks"
        )
    result = dict(params)
    for option in psycopg.pq.Conninfo.get_defaults():
        keyword = option.keyword.decode()
        if keyword in result or option.envvar is None or keyword == "service":
            continue
        if keyword in _FILE_DEFAULTS:
            result[keyword] = _NO_FILE
        elif keyword in _EXPLICIT:
            result[keyword] = _EXPLICIT[keyword]
        else:
            result[keyword] = (option.compiled or b"").decode()
    return result


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by the mask."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)
