"""What PushFlows and SyncFlows share: connection settings, refusals and URLs safe to show.

Git settings travel in the environment (``GIT_CONFIG_COUNT``/``KEY_n``/
``VALUE_n``, git 2.31+), so they apply to every command, network ones
included, without ever being written on a command line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

# Kestra properties neither task honours, with the reason the message gives.
REFUSED: Mapping[str, str] = {
    "privateKey": "use https with username and password (a token) instead of SSH keys",
    "passphrase": "SSH keys are not supported; use https",
    "connectTimeout": "git has no connect timeout; bound the task with its timeout",
    "readTimeout": "git has no read timeout; bound the task with its timeout",
    "kestraUrl": "flows are read and synced inside this server, under the flow's "
    "namespace rights (allowedNamespaces), not through an API URL",
    "auth": "flows are read and synced inside this server, under the flow's "
    "namespace rights (allowedNamespaces), not with API credentials",
    "tenantId": "Flowplane has no tenants",
}
_SCP_LIKE = "@"


def config_env(settings: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Environment variables that give git each ``(key, value)`` as ``git -c`` would."""
    env = {"GIT_CONFIG_COUNT": str(len(settings))}
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def connection_settings(trusted_ca: str | None, no_proxy: bool) -> list[tuple[str, str]]:
    """``trustedCaPemPath`` and ``noProxy`` as git settings (as Clone applies them)."""
    settings: list[tuple[str, str]] = []
    if trusted_ca is not None:
        settings.append(("http.sslCAInfo", trusted_ca))
    if no_proxy:
        # An empty proxy overrides the worker's http_proxy/https_proxy variables.
        settings.append(("http.proxy", ""))
    return settings


def connection_env(settings: Sequence[tuple[str, str]], trusted_ca: str | None) -> dict[str, str]:
    """The environment for ``settings`` (from ``connection_settings`` and the task's own).

    git lets ``GIT_SSL_CAINFO`` win over ``http.sslCAInfo``: a worker that sets
    it in its environment must not silently override ``trustedCaPemPath``.
    """
    env = config_env(settings)
    if trusted_ca is not None:
        env["GIT_SSL_CAINFO"] = trusted_ca
    return env


def shown_url(url: str) -> str:
    """``url`` without any user-info, for logs and outputs."""
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return url


def url_secrets(url: str) -> list[str]:
    """The password of an URL's user-info (``https://user:token@host``), to scrub from errors."""
    parts = urlsplit(url)
    return [parts.password] if parts.scheme and parts.password else []


def commit_url(url: str, branch: str, sha: str) -> str | None:
    """A web link to the commit, built as Kestra builds ``commitURL``; None for a local remote.

    https (credentials dropped) and ssh remotes become ``https://host/path``;
    ``/commit/<sha>`` follows (``/commits/`` on Bitbucket, with the branch on Azure).
    """
    base = _web_base(url)
    if base is None:
        return None
    link = f"{base}/{'commits' if 'bitbucket.org' in base else 'commit'}/{sha}"
    if "azure.com" in link:
        link += f"?refName=refs%2Fheads%2F{branch}"
    return link


def _web_base(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme in {"http", "https", "ssh"}:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port and parts.scheme != "ssh" else ""
        scheme = parts.scheme if parts.scheme != "ssh" else "https"
        path = parts.path
    elif not parts.scheme and _SCP_LIKE in url.split(":", 1)[0] and ":" in url:
        host_part, path = url.split(":", 1)
        host, scheme, port = host_part.rpartition("@")[2], "https", ""
        path = "/" + path.lstrip("/")
    else:
        return None
    return f"{scheme}://{host}{port}{path.rstrip('/').removesuffix('.git')}"
