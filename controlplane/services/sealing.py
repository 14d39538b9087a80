"""SECRET-typed execution inputs and resume values, sealed at rest to the server's age key.

The API process and the scheduler create executions but need only the public
recipient to seal; the worker, which holds the identity file, opens the values
when it builds a task's context. A sealed value is stored as
``{"sealed": "<base64 age ciphertext>"}``; SECRET values are strings, so a
mapping in their place is never ambiguous.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from typing import Any

import pyrage
from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.errors import StoreError
from controlplane.services.secrets import Keyring
from controlplane.store.db import transaction
from controlplane.store.tables import ServerKeyRow, utcnow

SEALED = "sealed"
_KEY_NAME = "age"


def register_recipient(engine: Engine, keyring: Keyring) -> None:
    """Publish the server's recipient in the database (on every start; it rarely changes)."""
    with transaction(engine) as session:
        row = session.get(ServerKeyRow, _KEY_NAME)
        if row is not None and row.recipient == keyring.recipient:
            return
        row = row or ServerKeyRow(name=_KEY_NAME, recipient=keyring.recipient)
        row.recipient = keyring.recipient
        row.updated_at = utcnow()
        session.add(row)


def seal(session: Session, values: Mapping[str, Any], names: Collection[str]) -> dict[str, Any]:
    """``values`` with each one named in ``names`` sealed; the others as they are."""
    wanted = [k for k in names if values.get(k) not in (None, "")]
    if not wanted:
        return dict(values)
    row = session.get(ServerKeyRow, _KEY_NAME)
    if row is None:
        raise StoreError(
            "no server key is registered, so SECRET values cannot be stored; "
            "start `flowplane server` once on this database"
        )
    recipient = pyrage.x25519.Recipient.from_str(row.recipient)
    sealed = dict(values)
    for key in wanted:
        ciphertext = pyrage.encrypt(str(values[key]).encode(), [recipient])
        sealed[key] = {SEALED: base64.b64encode(bytes(ciphertext)).decode()}
    return sealed


def seal_with(value: str, recipient: str) -> dict[str, str]:
    """``value`` sealed to ``recipient`` (the worker seals secret-carrying outputs with it)."""
    ciphertext = pyrage.encrypt(value.encode(), [pyrage.x25519.Recipient.from_str(recipient)])
    return {SEALED: base64.b64encode(bytes(ciphertext)).decode()}


def is_sealed(value: object) -> bool:
    """Whether ``value`` is a sealed value."""
    return isinstance(value, Mapping) and set(value) == {SEALED}


def contains_sealed(value: Any) -> bool:
    """Whether ``value`` holds anything shaped like a sealed value.

    Only the server seals. A sealed shape arriving from outside (an input, a
    task's outputs) could be a ciphertext copied from elsewhere, e.g. another
    namespace's secrets file, that the worker would open for its sender; such
    values are refused at the door.
    """
    if is_sealed(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_sealed(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_sealed(v) for v in value)
    return False


def unseal(value: Any, keyring: Keyring) -> Any:
    """``value`` with every sealed value inside it opened (dicts and lists are walked)."""
    if is_sealed(value):
        return keyring.decrypt(base64.b64decode(value[SEALED]))
    if isinstance(value, Mapping):
        return {k: unseal(v, keyring) for k, v in value.items()}
    if isinstance(value, list):
        return [unseal(v, keyring) for v in value]
    return value
