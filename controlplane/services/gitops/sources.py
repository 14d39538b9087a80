"""Git sources: the repositories Flowplane reconciles.

The webhook secret is write-only and kept age-encrypted to the server's
identity; only signature checks decrypt it. Credentials in an https URL
(``https://oauth2:TOKEN@host/repo.git``) are taken out of it and sealed the
same way: the stored and shown URL has none, and only a fetch puts them back.

``put_source`` replaces the whole source: a field left out takes its default
(the answer says which did). ``patch_source`` changes only the fields sent.
Both record every changed field in the audit log, secrets as "changed".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.errors import InvalidRequestError, NotFoundError
from controlplane.services.gitops.lifecycle import OPEN_STATUSES, SUPERSEDED, move
from controlplane.services.preconditions import check_if_match
from controlplane.services.secrets import Keyring
from controlplane.store.audit import record_event
from controlplane.store.db import transaction
from controlplane.store.tables import GitSourceRow, PlanRow, utcnow


@dataclass(frozen=True)
class SourceInput:
    """The writable attributes of a Git source."""

    url: str
    branch: str = "main"
    flows_path: str = "flows/"
    secrets_path: str = "secrets/"
    poll_interval_seconds: int = 60
    webhook_secret: str | None = None
    approval: Literal["auto", "approval"] = "auto"
    required_approvals: int = 1
    prune: bool = False
    self_heal: bool = False
    take_over: bool = False


SECRET_FIELDS = ("webhook_secret", "url_credentials")
_HTTP = ("http", "https")


def split_credentials(url: str) -> tuple[str, str | None]:
    """The URL without its user-info, and the user-info (``user:token``) when it holds credentials.

    Any user-info of an http(s) URL is a credential (GitHub takes a token as the
    user name); for other schemes only a password is (``ssh://git@`` is not one).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidRequestError("url is not a valid URL") from None
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    if parts.scheme.lower() not in _HTTP and ":" not in userinfo:
        return url, None
    return urlunsplit(parts._replace(netloc=host)), userinfo


def fetch_url(row: GitSourceRow, keyring: Keyring | None) -> str:
    """The URL to fetch from: the stored one with its sealed credentials put back."""
    if row.url_credentials_ciphertext is None or keyring is None:
        return row.url
    userinfo = keyring.decrypt(row.url_credentials_ciphertext)
    parts = urlsplit(row.url)
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def display_url(url: str) -> str:
    """A URL safe to show: any credentials in it (a row from before 0015) replaced by ``***``."""
    clean, userinfo = split_credentials(url)
    if userinfo is None:
        return url
    parts = urlsplit(clean)
    return urlunsplit(parts._replace(netloc=f"***@{parts.netloc}"))


def scrub_credentials(text: str, row: GitSourceRow, fetched: str) -> str:
    """``text`` (an error message) with the fetch URL and any credential in it hidden."""
    text = text.replace(fetched, display_url(row.url))
    _, userinfo = split_credentials(fetched)
    for part in _credential_parts(userinfo):
        text = text.replace(part, "***")
    return text


def _credential_parts(userinfo: str | None) -> list[str]:
    if not userinfo:
        return []
    user, _, password = userinfo.partition(":")
    parts = {userinfo, unquote(userinfo), quote(userinfo, safe=":")}
    for piece in (password, user) if password else (user,):
        if len(piece) >= 4:  # noqa: PLR2004 - a short user name like "git" is no secret
            parts |= {piece, unquote(piece), quote(piece, safe="")}
    return sorted(parts, key=len, reverse=True)


def source_input_of(row: GitSourceRow, keyring: Keyring) -> SourceInput:
    """The source as it is now, as an input (PATCH starts from it)."""
    values = {f.name: getattr(row, f.name) for f in fields(SourceInput) if f.name != "url"}
    values["webhook_secret"] = webhook_secret_of(row, keyring)
    return SourceInput(url=fetch_url(row, keyring), **values)


def source_etag(row: GitSourceRow) -> str:
    """Strong ETag: the source's version counter."""
    return f'"v{row.version}"'


def put_source(
    engine: Engine,
    source_id: str,
    data: SourceInput,
    *,
    actor: str,
    keyring: Keyring,
    if_match: str | None = None,
    sent: Collection[str] | None = None,
) -> tuple[GitSourceRow, bool]:
    """Create or replace the whole source; an identical PUT keeps the version.

    Fields not in ``sent`` (the ones the caller wrote) took their defaults;
    the audit entry lists them as ``defaulted``. The webhook secret and URL
    credentials are stored encrypted with ``keyring``; the same again is no change.
    """
    with transaction(engine) as session:
        row = session.get(GitSourceRow, source_id, with_for_update=True)
        check_if_match(if_match, source_etag(row) if row else None)
        defaulted = sorted({f.name for f in fields(SourceInput)} - set(sent)) if sent else []
        return _write(
            session,
            source_id,
            row,
            data,
            actor=actor,
            keyring=keyring,
            action="source.put",
            defaulted=defaulted,
        )


def patch_source(
    engine: Engine,
    source_id: str,
    changes: Mapping[str, Any],
    *,
    actor: str,
    keyring: Keyring,
    if_match: str | None = None,
) -> GitSourceRow:
    """Change only the fields in ``changes``; every other field keeps its value.

    A ``url`` carries its own credentials (or none); without ``url`` the sealed
    credentials stay. ``webhook_secret: null`` removes the secret.
    """
    unknown = set(changes) - {f.name for f in fields(SourceInput)}
    if unknown:
        raise InvalidRequestError(f"unknown source fields: {sorted(unknown)}")
    with transaction(engine) as session:
        row = session.get(GitSourceRow, source_id, with_for_update=True)
        if row is None or row.deleted_at is not None:
            raise NotFoundError(f"Git source {source_id} does not exist")
        check_if_match(if_match, source_etag(row))
        data = replace(source_input_of(row, keyring), **dict(changes))
        written, _ = _write(
            session,
            source_id,
            row,
            data,
            actor=actor,
            keyring=keyring,
            action="source.patch",
            defaulted=[],
        )
        return written


def _write(
    session: Session,
    source_id: str,
    row: GitSourceRow | None,
    data: SourceInput,
    *,
    actor: str,
    keyring: Keyring,
    action: str,
    defaulted: list[str],
) -> tuple[GitSourceRow, bool]:
    url, credentials = split_credentials(data.url)
    created = row is None or row.deleted_at is not None
    if row is None:
        row = GitSourceRow(id=source_id, url=url, version=0)
    row.deleted_at = None  # a PUT of a deleted source's id brings it back
    wanted = {k: v for k, v in vars(data).items() if k != "webhook_secret"}
    wanted["url"] = url
    changed: dict[str, Any] = {
        key: {"before": _shown(key, getattr(row, key)), "after": _shown(key, value)}
        for key, value in wanted.items()
        if created or getattr(row, key) != value
    }
    if webhook_secret_of(row, keyring) != data.webhook_secret:
        changed["webhook_secret"] = "changed"  # noqa: S105 - a marker, never the value
    if _credentials_of(row, keyring) != credentials:
        changed["url_credentials"] = "changed"
    if not changed:
        return row, created
    for key, value in wanted.items():
        setattr(row, key, value)
    _seal(row, keyring, data.webhook_secret)
    row.url_credentials_ciphertext = keyring.encrypt(credentials) if credentials else None
    row.version += 1
    row.updated_at = utcnow()
    session.add(row)
    summary: dict[str, Any] = {
        "version": row.version,
        "url": url,
        "fields": sorted(changed),
        "changes": changed,
        "replaced": action == "source.put",
    }
    if defaulted:
        summary["defaulted"] = defaulted
    record_event(session, actor=actor, action=action, target=f"source:{source_id}", summary=summary)
    return row, created


def _shown(key: str, value: Any) -> Any:
    return display_url(value) if key == "url" and isinstance(value, str) else value


def _credentials_of(row: GitSourceRow, keyring: Keyring) -> str | None:
    if row.url_credentials_ciphertext is not None:
        return keyring.decrypt(row.url_credentials_ciphertext)
    return split_credentials(row.url)[1] if row.url else None


def get_source(engine: Engine, source_id: str) -> GitSourceRow:
    """One source, or ``NotFoundError``."""
    with Session(engine) as session:
        row = session.get(GitSourceRow, source_id)
        if row is None or row.deleted_at is not None:
            raise NotFoundError(f"Git source {source_id} does not exist")
        return row


def list_sources(engine: Engine) -> Sequence[GitSourceRow]:
    """Every live source, by id."""
    with Session(engine) as session:
        return session.exec(
            select(GitSourceRow)
            .where(col(GitSourceRow.deleted_at).is_(None))
            .order_by(col(GitSourceRow.id))
        ).all()


def delete_source(
    engine: Engine, source_id: str, *, actor: str, if_match: str | None = None
) -> None:
    """Stop syncing a source; its flows stay active and are released to other writers.

    The row is kept (marked deleted) because plans and revisions point at it
    for lineage. Plans still pending are superseded, so nothing it planned can
    be applied afterwards.
    """
    with transaction(engine) as session:
        row = session.get(GitSourceRow, source_id, with_for_update=True)
        if row is None or row.deleted_at is not None:
            raise NotFoundError(f"Git source {source_id} does not exist")
        check_if_match(if_match, source_etag(row))
        row.deleted_at = utcnow()
        row.webhook_secret = None
        row.webhook_secret_ciphertext = None
        row.url_credentials_ciphertext = None
        session.add(row)
        pending = session.exec(
            select(PlanRow).where(
                col(PlanRow.source_id) == source_id, col(PlanRow.status).in_(OPEN_STATUSES)
            )
        ).all()
        for plan in pending:
            move(plan, SUPERSEDED, reason=f"Git source {source_id} was deleted")
            session.add(plan)
        record_event(
            session,
            actor=actor,
            action="source.delete",
            target=f"source:{source_id}",
            summary={"superseded_plans": [p.id for p in pending]},
        )


def has_webhook_secret(row: GitSourceRow) -> bool:
    """True when the source checks push signatures."""
    return bool(row.webhook_secret_ciphertext or row.webhook_secret)


def webhook_secret_of(row: GitSourceRow, keyring: Keyring) -> str | None:
    """The plain webhook secret, for checking a signature; None when there is none."""
    if row.webhook_secret_ciphertext:
        return keyring.decrypt(row.webhook_secret_ciphertext)
    return row.webhook_secret  # written before secrets were encrypted


def _seal(row: GitSourceRow, keyring: Keyring, secret: str | None) -> None:
    row.webhook_secret_ciphertext = keyring.encrypt(secret) if secret else None
    row.webhook_secret = None


def seal_webhook_secrets(engine: Engine, keyring: Keyring) -> int:
    """Encrypt the plaintext webhook secrets stored before migration 0011; how many were."""
    with transaction(engine) as session:
        rows = session.exec(
            select(GitSourceRow).where(col(GitSourceRow.webhook_secret).is_not(None))
        ).all()
        for row in rows:
            _seal(row, keyring, row.webhook_secret)
            session.add(row)
        return len(rows)
