"""Namespace secrets: age-encrypted at rest, decrypted only in the worker.

The server's age identity lives in ``<data_dir>/identity.age``, created on
first use with owner-only permissions. Anything that can encrypt to its
recipient (``age -r``, or the API) can hand the server a secret.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyrage
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.errors import NotFoundError
from controlplane.services.namespaces import ensure_namespace
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.tables import SecretRow, utcnow

IDENTITY_FILE = "identity.age"


@dataclass(frozen=True)
class Keyring:
    """The server's age identity and recipient."""

    identity: pyrage.x25519.Identity

    @property
    def recipient(self) -> str:
        """The public key others encrypt to (``age1…``)."""
        return str(self.identity.to_public())

    def encrypt(self, value: str) -> bytes:
        """Encrypt ``value`` to this server."""
        return bytes(pyrage.encrypt(value.encode(), [self.identity.to_public()]))

    def decrypt(self, ciphertext: bytes) -> str:
        """Decrypt a value encrypted to this server."""
        return bytes(pyrage.decrypt(ciphertext, [self.identity])).decode()


def load_keyring(data_dir: Path) -> Keyring:
    """The identity in ``data_dir``, created (mode 0600) on first use."""
    path = data_dir / IDENTITY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        identity = pyrage.x25519.Identity.generate()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"# Flowplane server identity\n{identity}\n")
    lines = [line for line in path.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-")]
    return Keyring(pyrage.x25519.Identity.from_str(lines[0]))


def put_secret(
    engine: Engine,
    keyring: Keyring,
    namespace: str,
    key: str,
    value: str,
    *,
    description: str | None = None,
    origin: str = "api",
    actor: str,
) -> tuple[SecretRow, bool]:
    """Create or replace a secret; the same value again keeps the version."""
    with transaction(engine) as session:
        row = session.get(SecretRow, (namespace, key), with_for_update=True)
        created = row is None
        unchanged = row is not None and keyring.decrypt(row.ciphertext) == value
        if row is not None and unchanged and row.description == description:
            return row, False
        ciphertext = row.ciphertext if row is not None and unchanged else keyring.encrypt(value)
        row = store_sealed(session, namespace, key, ciphertext, origin=origin, actor=actor)
        row.description = description
        return row, created


def get_secret_metadata(engine: Engine, namespace: str, key: str) -> SecretRow:
    """A secret's metadata (callers must never expose ``ciphertext``)."""
    with Session(engine) as session:
        row = session.get(SecretRow, (namespace, key))
        if row is None:
            raise NotFoundError(f"secret {key} does not exist in namespace {namespace}")
        return row


def list_secrets(engine: Engine, namespace: str) -> Sequence[SecretRow]:
    """A namespace's secrets, by key."""
    with Session(engine) as session:
        return session.exec(
            select(SecretRow)
            .where(col(SecretRow.namespace) == namespace)
            .order_by(col(SecretRow.key))
        ).all()


def delete_secret(engine: Engine, namespace: str, key: str, *, actor: str) -> None:
    """Delete a secret."""
    with transaction(engine) as session:
        row = session.get(SecretRow, (namespace, key), with_for_update=True)
        if row is None:
            raise NotFoundError(f"secret {key} does not exist in namespace {namespace}")
        session.delete(row)
        record_event(
            session,
            actor=actor,
            action="secret.delete",
            target=f"secret:{namespace}/{key}",
            summary={},
        )


def reveal(engine: Engine, keyring: Keyring, namespace: str, key: str) -> str | None:
    """The plain value, for the worker rendering ``secret('KEY')`` only."""
    with Session(engine) as session:
        row = session.get(SecretRow, (namespace, key))
        return keyring.decrypt(row.ciphertext) if row is not None else None


def store_sealed(
    session: Session,
    namespace: str,
    key: str,
    ciphertext: bytes,
    *,
    origin: str,
    actor: str,
) -> SecretRow:
    """Write a value already encrypted to this server, in the caller's transaction.

    GitOps apply writes secrets this way, in the transaction that writes the
    flow revisions, so both activate together or not at all.
    """
    row = session.get(SecretRow, (namespace, key), with_for_update=True)
    if row is None:
        ensure_namespace(session, namespace)
        row = SecretRow(namespace=namespace, key=key, ciphertext=b"", version=0)
    row.ciphertext = ciphertext
    row.origin = origin
    row.version += 1
    row.updated_at = utcnow()
    session.add(row)
    record_event(
        session,
        actor=actor,
        action="secret.put",
        target=f"secret:{namespace}/{key}",
        summary={"version": row.version, "origin": origin},
    )
    return row


def remove_owned(session: Session, namespace: str, key: str, *, origin: str, actor: str) -> bool:
    """Delete a secret ``origin`` still owns, in the caller's transaction; False if it does not."""
    row = session.get(SecretRow, (namespace, key), with_for_update=True)
    if row is None or row.origin != origin:
        return False
    session.delete(row)
    record_event(
        session,
        actor=actor,
        action="secret.delete",
        target=f"secret:{namespace}/{key}",
        summary={"origin": origin},
    )
    return True
