"""Namespace secrets kept in Git: ``<secrets_path>/<namespace>.age`` files.

Each file is a YAML map of key to string value, age-encrypted to the server's
recipient (``flowplane secrets encrypt``). Values are decrypted inside the
server only to compare them with the stored ones and to re-encrypt each value
for storage; a plan records per key the action alone. Problem messages name
the file and, at most, a key and a line: never a value, never a snippet.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyrage
import yaml
from sqlmodel import Session, col, select

from controlplane.domain.fields import NAMESPACE_PATTERN
from controlplane.domain.parse import load_yaml
from controlplane.domain.plan import SecretAction, SecretVersions
from controlplane.errors import InvalidFlowError, InvalidRequestError, Problem
from controlplane.services.gitops.repository import SecretFile
from controlplane.services.secrets import Keyring
from controlplane.store.tables import SecretRow

KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NAMESPACE = re.compile(NAMESPACE_PATTERN)
_MAX_KEY = 200
# Opaque, in-memory version tokens: equal means "same value". Never stored.
_SAME, _NEW = "stored", "desired"


@dataclass
class SecretSet:
    """The decrypted secrets of a commit, per namespace, and the problems found reading them."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def parse_secret_map(text: str) -> dict[str, str]:
    """A YAML map of secret key to string value; ``InvalidRequestError`` names what is wrong.

    Messages carry keys and lines only, so they are safe to store and show.
    """
    try:
        data = load_yaml(text)
    except InvalidFlowError as exc:
        # Only the line: a parser message may quote the (secret) text.
        line = exc.problems[0].line if exc.problems else None
        where = f" (line {line})" if line is not None else ""
        raise InvalidRequestError(f"not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidRequestError("must be a YAML map of secret key to string value")
    values: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not KEY_PATTERN.match(key) or len(key) > _MAX_KEY:
            raise InvalidRequestError(
                f"key {str(key)[:_MAX_KEY]!r} is not a valid secret key "
                "(letters, digits, _ . -; not starting with a digit)"
            )
        if not isinstance(value, str):
            raise InvalidRequestError(
                f"the value of {key!r} is a {type(value).__name__}, not a string; quote it"
            )
        values[key] = value
    return values


def encrypt_secret_map(values: Mapping[str, str], recipient: str) -> bytes:
    """The ``.age`` file for ``values``, encrypted to an ``age1…`` recipient."""
    try:
        target = pyrage.x25519.Recipient.from_str(recipient.strip())
    except pyrage.RecipientError as exc:
        raise InvalidRequestError(f"not an age recipient: {exc}") from None
    text = yaml.safe_dump(dict(values), sort_keys=True, allow_unicode=True)
    return bytes(pyrage.encrypt(text.encode(), [target]))


def decrypt_secret_files(
    files: Iterable[SecretFile], keyring: Keyring | None, secrets_path: str
) -> SecretSet:
    """Decrypt and check every ``<namespace>.age`` file; a bad file is a problem naming it."""
    found = SecretSet()
    prefix = secrets_path.strip("/")
    prefix = f"{prefix}/" if prefix else ""
    for file in sorted(files, key=lambda f: f.path):
        name = file.path.removeprefix(prefix)
        namespace = name.removesuffix(".age")
        if "/" in name or not _NAMESPACE.match(namespace):
            found.problems.append(
                Problem(
                    f"secret files belong at {prefix}<namespace>.age; "
                    f"{name!r} does not name a namespace",
                    file=file.path,
                )
            )
            continue
        if keyring is None:
            found.problems.append(Problem("no server identity to decrypt with", file=file.path))
            continue
        try:
            plain = bytes(pyrage.decrypt(file.data, [keyring.identity])).decode("utf-8")
        except (pyrage.DecryptError, UnicodeDecodeError):
            found.problems.append(
                Problem(
                    "cannot decrypt: encrypt it to this server's recipient "
                    "(flowplane secrets encrypt)",
                    file=file.path,
                )
            )
            continue
        try:
            found.values[namespace] = parse_secret_map(plain)
        except InvalidRequestError as exc:
            found.problems.append(Problem(f"decrypted content {exc}", file=file.path))
    return found


@dataclass(frozen=True)
class SecretInputs:
    """What ``compute_plan`` needs about secrets, with no value and no hash in it."""

    active: SecretVersions
    desired: SecretVersions
    known: Mapping[str, frozenset[str]]


def secret_inputs(
    session: Session,
    keyring: Keyring | None,
    origin: str,
    desired: Mapping[str, Mapping[str, str]],
    *,
    prune: bool,
) -> SecretInputs:
    """Compare the desired secrets with the stored ones, inside the server.

    Active: every secret ``origin`` owns, plus stored keys the commit names
    (taking them over). Each gets an opaque token, the same on both sides
    exactly when the values are equal. Known: every key a flow may reference
    once the plan is applied.
    """
    names = {(ns, key) for ns, keys in desired.items() for key in keys}
    rows = session.exec(
        select(SecretRow).where(
            (col(SecretRow.origin) == origin) | col(SecretRow.namespace).in_(list(desired))
        )
    ).all()
    active: dict[str, dict[str, str]] = {}
    wanted: dict[str, dict[str, str]] = {
        ns: dict.fromkeys(keys, _NEW) for ns, keys in desired.items()
    }
    for row in rows:
        if (row.namespace, row.key) in names:
            active.setdefault(row.namespace, {})[row.key] = _SAME
            if (
                keyring is not None
                and keyring.decrypt(row.ciphertext) == desired[row.namespace][row.key]
            ):
                wanted[row.namespace][row.key] = _SAME
        elif row.origin == origin:
            active.setdefault(row.namespace, {})[row.key] = _SAME
    known: dict[str, set[str]] = {}
    for ns, key, row_origin in session.exec(
        select(SecretRow.namespace, SecretRow.key, SecretRow.origin)
    ):
        # A key this source stops defining is deleted on apply when it prunes.
        if not (prune and row_origin == origin and (ns, key) not in names):
            known.setdefault(ns, set()).add(key)
    for ns, keys in desired.items():
        known.setdefault(ns, set()).update(keys)
    return SecretInputs(active, wanted, {ns: frozenset(keys) for ns, keys in known.items()})


def secret_rows_for_plan(
    keyring: Keyring | None,
    desired: Mapping[str, Mapping[str, str]],
    changes: Iterable[Any],
) -> tuple[list[dict[str, str]], dict[str, dict[str, str]]]:
    """The plan's secret changes (every desired key, unchanged ones too) and its payload.

    The payload holds, for added and changed keys only, the value age-encrypted
    to the server, so apply writes exactly what was planned without Git or
    the identity.
    """
    actions = {(c.namespace, c.key): str(c.action) for c in changes}
    listed = [
        {"namespace": ns, "key": key, "action": actions.get((ns, key), "unchanged")}
        for ns in sorted(desired)
        for key in sorted(desired[ns])
    ]
    listed += [
        {"namespace": ns, "key": key, "action": action}
        for (ns, key), action in sorted(actions.items())
        if action == SecretAction.REMOVE
    ]
    listed.sort(key=lambda item: (item["namespace"], item["key"]))
    payload: dict[str, dict[str, str]] = {}
    for (ns, key), action in actions.items():
        if action in {SecretAction.ADD, SecretAction.CHANGE} and keyring is not None:
            sealed = keyring.encrypt(desired[ns][key])
            payload.setdefault(ns, {})[key] = base64.b64encode(sealed).decode("ascii")
    return listed, payload
