"""Plan-time checks: what the server would refuse, refused before anything is sent.

Each validator takes a known, non-null attribute value and returns None when
the server would accept it, or ``(summary, detail)`` when it would not. A
``Field`` lists its validators; ``TerraformObject.validate`` runs them from
Terraform's ``ValidateResourceConfig`` and reports each failure on the
attribute's own path, so ``terraform validate`` and ``terraform plan`` point at
the line in the configuration, with no server call and no apply.

The rules mirror the API's (``controlplane/api/routes``); when one changes
there, the server still refuses at apply, so a stale rule here is late, not wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from controlplane.domain.fields import FLOW_ID_PATTERN, NAMESPACE_PATTERN

if TYPE_CHECKING:
    from controlplane.terraform_provider.framework import Diagnostics, State

Problem = tuple[str, str]
Validator = Callable[[object], Problem | None]

SECRET_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"  # noqa: S105 - a pattern, not a secret
SOURCE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
# A key of the namespace KV store, as the kv route and the kv tasks accept it.
KV_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# As controlplane.services.namespace_files (the provider does not import services).
_MAX_FILE_PATH = 500
# ``git@host:path``, the scp-like form git accepts for SSH.
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:.+$")


def matches(what: str, pattern: str, max_length: int, rule: str) -> Validator:
    """A string matching ``pattern`` and at most ``max_length`` characters."""

    def check(value: object) -> Problem | None:
        if not isinstance(value, str):
            return None
        if len(value) > max_length:
            return (
                f"{what} is too long",
                f"It is {len(value)} characters long; the limit is {max_length}.",
            )
        if not re.fullmatch(pattern, value):
            return f"{what} is not valid", f"Got {value!r}. {rule}"
        return None

    return check


def in_range(what: str, low: int, high: int) -> Validator:
    """A whole number from ``low`` to ``high``."""

    def check(value: object) -> Problem | None:
        if not isinstance(value, int | float):
            return None
        if value != int(value) or not low <= value <= high:
            return f"{what} must be a whole number from {low} to {high}", f"Got {value:g}."
        return None

    return check


def one_of(what: str, choices: Sequence[str]) -> Validator:
    """One of a few words."""

    def check(value: object) -> Problem | None:
        if isinstance(value, str) and value not in choices:
            listed = ", ".join(f"`{c}`" for c in choices)
            return f"{what} must be one of {listed}", f"Got {value!r}."
        return None

    return check


def git_url(value: object) -> Problem | None:
    """A repository URL Flowplane can fetch: https, http, ssh, git, file, or git@host:path."""
    if not isinstance(value, str):
        return None
    if _SCP_LIKE.match(value):
        return None
    parsed = urlparse(value)
    if parsed.scheme in {"https", "http", "ssh", "git"} and parsed.netloc:
        return None
    if parsed.scheme == "file" and parsed.path:
        return None
    return (
        "url is not a Git URL Flowplane can fetch",
        f"Got {value!r}. Use https://, http://, ssh://, git://, file:// or git@host:path"
        + (f"; {parsed.scheme}:// is not supported." if parsed.scheme else "."),
    )


NAMESPACE_NAME = matches(
    "namespace",
    NAMESPACE_PATTERN,
    150,
    "Use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, "
    "as in 'platform.ops'.",
)
FLOW_ID = matches(
    "flow_id",
    FLOW_ID_PATTERN,
    100,
    "Use letters, digits, '.', '_' and '-', starting with a letter or digit.",
)
SECRET_KEY = matches(
    "key",
    SECRET_KEY_PATTERN,
    200,
    "Use letters, digits, '_', '.' and '-', starting with a letter or '_', as in 'DB_PASSWORD'.",
)
SOURCE_ID = matches(
    "id",
    SOURCE_ID_PATTERN,
    100,
    "Use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit.",
)
KV_KEY = matches(
    "key",
    KV_KEY_PATTERN,
    200,
    "Use letters, digits, '_', '.' and '-', starting with a letter or digit.",
)


def file_path(value: object) -> Problem | None:
    """A namespace file path: relative, inside the namespace, no NUL, as the API requires."""
    if not isinstance(value, str):
        return None
    segments = value.split("/")
    if len(value) > _MAX_FILE_PATH:
        detail = f"It is {len(value)} characters long; the limit is {_MAX_FILE_PATH}."
        return "path is too long", detail
    if "\x00" in value or "\\" in value or value.startswith("/"):
        detail = (
            f"Got {value!r}. Give a relative path with '/' between folders and no NUL, "
            "as in 'scripts/etl.py'."
        )
        return "path is not valid", detail
    if any(segment in {"", ".", ".."} for segment in segments):
        detail = (
            f"Got {value!r}. Empty, '.' and '..' segments are refused: the path stays "
            "inside the namespace."
        )
        return "path is not valid", detail
    return None


def named(what: str, validator: Validator) -> Validator:
    """``validator`` with its summary naming ``what`` (the attribute) instead."""

    def check(value: object) -> Problem | None:
        problem = validator(value)
        if problem is None:
            return None
        summary, detail = problem
        return f"{what}{summary[summary.index(' ') :]}", detail

    return check


# Cross-field checks, run by a resource's ``validate`` on the whole configuration.


def both_set(
    diags: Diagnostics, config: State, pair: tuple[str, str], detail: str, on: str | None = None
) -> bool:
    """Report both of ``pair`` set (on the attribute ``on``, the first by default); whether so."""
    first, second = pair
    if config.get(first) is None or config.get(second) is None:
        return False
    diags.add_error(f"Set only one of {first} and {second}", detail, path=[on or first])
    return True


def check_write_only_version(diags: Diagnostics, config: State, attribute: str) -> None:
    """``<attribute>_wo`` needs ``<attribute>_wo_version``: only its change makes a write."""
    version = f"{attribute}_wo_version"
    if config.get(f"{attribute}_wo") is not None and config.get(version) is None:
        diags.add_error(
            f"{attribute}_wo needs {version}",
            f"Terraform cannot see a write-only value change; bump {version} "
            "(e.g. 1, then 2) to write a new one.",
            path=[version],
        )
