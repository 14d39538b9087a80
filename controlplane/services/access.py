"""Who is calling, and what they may do: API tokens, roles, namespace scopes, trusted proxies.

A token's secret is shown once at creation; the store keeps only its sha256.
Tokens are high-entropy random strings, so a plain hash (no salt, no
stretching) is enough to make a stolen database useless for signing in.

A token never makes a token wider than itself: the new role is at most the
creator's, and every new namespace pattern lies inside one of the creator's.
A token may carry verified identities (e-mail addresses an admin vouches
for); four-eyes review compares them, with the name, to commit authors.

``TokenCache`` answers a known token from memory, so the API's hot path makes
no database round trip to authenticate. A revocation reaches every cache at
once: in this process through a counter, in other processes sharing a SQLite
file through a marker file next to it (one ``stat`` per request), and on other
databases through a revoked-token count read with one cheap query.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import itertools
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast, get_args

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from controlplane.errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    UnauthorizedError,
)
from controlplane.logging import get_logger
from controlplane.settings import Settings
from controlplane.store.audit import record_event
from controlplane.store.db import as_utc, transaction
from controlplane.store.tables import ApiTokenRow, utcnow

Role = Literal["viewer", "editor", "reviewer", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_RANK = {role: rank for rank, role in enumerate(ROLES)}
TOKEN_PREFIX = "fpt_"  # noqa: S105 - a public prefix that makes leaked tokens greppable
ADMIN_TOKEN_NAME = "admin"  # noqa: S105 - a name, not a secret
ALL_NAMESPACES = ("*",)
# The header a forward-auth proxy (Authelia, oauth2-proxy) puts the user's e-mail in.
PROXY_EMAIL_HEADER = "Remote-Email"

log = get_logger(__name__)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a token, or a user vouched for by a trusted proxy."""

    name: str
    role: Role
    scopes: tuple[str, ...]
    token_id: str | None
    via: str  # "token" | "proxy"
    # Verified e-mail addresses (set by an admin on the token, or the proxy's header).
    identities: tuple[str, ...] = ()

    @property
    def actor(self) -> str:
        """The name recorded as actor on revisions, approvals and audit events."""
        return self.name

    def has_role(self, role: Role) -> bool:
        """Roles are ranked viewer < editor < reviewer < admin; a higher one includes the lower."""
        return _RANK[self.role] >= _RANK[role]

    def can_see(self, namespace: str) -> bool:
        """Whether ``namespace`` matches one of the glob scopes (``team-a.*``, ``*``)."""
        return any(fnmatch.fnmatchcase(namespace, scope) for scope in self.scopes)

    def check_namespace(self, namespace: str) -> None:
        """Raise ``ForbiddenError`` (403) unless ``namespace`` is inside the scopes."""
        if not self.can_see(namespace):
            raise ForbiddenError(
                f"{self.name!r} is scoped to {list(self.scopes)}; "
                f"namespace {namespace!r} is outside it"
            )

    def can_see_any(self, namespaces: Collection[str]) -> bool:
        """Whether one namespace is in scope; data naming none needs an unscoped principal."""
        if not namespaces:
            return self.unscoped
        return any(self.can_see(namespace) for namespace in namespaces)

    def check_all(self, namespaces: Collection[str], what: str) -> None:
        """403 unless every namespace is in scope (an empty set needs an unscoped principal)."""
        if not namespaces and not self.unscoped:
            raise ForbiddenError(f"{what} names no namespace; it needs a token scoped to '*'")
        for namespace in sorted(namespaces):
            self.check_namespace(namespace)

    def covers(self, role: str, scopes: Collection[str]) -> bool:
        """Whether a token of ``role`` and ``scopes`` is no wider than this principal."""
        if role not in _RANK or _RANK[cast("Role", role)] > _RANK[self.role]:
            return False
        return all(any(pattern_within(p, mine) for mine in self.scopes) for p in scopes)

    def can_see_all(self, namespaces: Collection[str]) -> bool:
        """Whether every namespace is in scope; data naming none needs an unscoped principal."""
        if not namespaces:
            return self.unscoped
        return all(self.can_see(namespace) for namespace in namespaces)

    @property
    def unscoped(self) -> bool:
        """True when the principal sees every namespace (needed for cross-namespace data)."""
        return "*" in self.scopes


def pattern_within(pattern: str, scope: str) -> bool:
    """Whether every namespace ``pattern`` matches is also matched by ``scope``.

    Decided conservatively: ``*`` covers everything; otherwise the patterns
    are equal, or ``scope`` is ``prefix*`` with no other wildcard and
    ``pattern`` starts with that prefix. Anything else is not covered.
    """
    if scope in {"*", pattern}:
        return True
    prefix = scope[:-1]
    if not scope.endswith("*") or any(c in prefix for c in "*?["):
        return False
    return pattern.startswith(prefix)


def normalize_email(value: str) -> str:
    """An identity as stored and compared: trimmed and case-folded."""
    return value.strip().casefold()


def parse_role(value: str) -> Role:
    """``value`` as a Role, or a 400 naming the allowed roles."""
    if value not in ROLES:
        raise InvalidRequestError(f"role must be one of {list(ROLES)}, not {value!r}")
    return cast("Role", value)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _principal(row: ApiTokenRow) -> Principal:
    return Principal(
        name=row.name,
        role=parse_role(row.role),
        scopes=tuple(row.scopes) or ALL_NAMESPACES,
        token_id=row.id,
        via="token",
        identities=tuple(row.identities or ()),
    )


def _check_live(row: ApiTokenRow | None) -> ApiTokenRow:
    if row is None or row.revoked_at is not None:
        raise UnauthorizedError("unknown or revoked token")
    if row.expires_at is not None and as_utc(row.expires_at) <= utcnow():
        raise UnauthorizedError(f"token {row.name!r} expired at {as_utc(row.expires_at)}")
    return row


def _load_live(engine: Engine, digest: str) -> tuple[Principal, datetime | None]:
    with Session(engine) as session:
        row = _check_live(
            session.exec(
                select(ApiTokenRow).where(col(ApiTokenRow.secret_sha256) == digest)
            ).first()
        )
        return _principal(row), as_utc(row.expires_at) if row.expires_at else None


def authenticate_token(engine: Engine, raw_token: str) -> Principal:
    """The principal a bearer token stands for; 401 for unknown, revoked or expired tokens."""
    return _load_live(engine, _digest(raw_token))[0]


# Bumped by every revocation in this process: each cache compares it on every hit.
_local_revocations = itertools.count(1)
_local_epoch = 0


def _revocation_marker(engine: Engine) -> Path | None:
    """The file whose change tells other processes on a SQLite file that a token was revoked."""
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database).with_name(Path(database).name + "-revocations")


def _note_revocation(engine: Engine) -> None:
    """Make every token cache drop its entries on its next lookup (called after commit)."""
    global _local_epoch  # noqa: PLW0603 - one counter per process, by design
    _local_epoch = next(_local_revocations)
    marker = _revocation_marker(engine)
    if marker is None:
        return  # other databases: caches read the revoked count instead
    # A new inode each time, so (inode, mtime) changes even within one clock tick.
    scratch = marker.with_name(f"{marker.name}.{os.getpid()}.{threading.get_ident()}")
    scratch.write_text(str(time.time_ns()))
    scratch.replace(marker)


class TokenCache:
    """Principals of recently seen tokens, keyed by the token's sha256.

    A hit costs no database round trip on SQLite files: it checks the
    in-process revocation counter, the marker file's ``stat`` and the cached
    expiry. ``ttl`` bounds how long an entry is trusted without a read, which
    also bounds what a process crash between a revocation's commit and its
    marker could leave behind. Unknown tokens are never cached.

    When an entry's ``ttl`` has passed, one caller reads the token again while
    the others keep the entry until that read ends (never past ``2 * ttl``):
    otherwise every request in flight at the expiry read the same row at once,
    each in its own thread, and held up the server for hundreds of ms.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        ttl: float = 5.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._marker = _revocation_marker(engine)
        self._entries: dict[str, tuple[Principal, datetime | None, float]] = {}
        # Digests one caller is reading again; the others answer from the entry meanwhile.
        self._refreshing: set[str] = set()
        self._epoch: object = None
        self._lock = threading.Lock()

    @property
    def cheap(self) -> bool:
        """True when a lookup never touches the database on a hit (a SQLite file)."""
        return self._marker is not None

    def _current_epoch(self) -> object:
        if self._marker is None:
            with Session(self.engine) as session:
                revoked = session.exec(
                    select(func.count()).where(col(ApiTokenRow.revoked_at).is_not(None))
                ).one()
            return (_local_epoch, revoked)
        try:
            stat = self._marker.stat()
        except FileNotFoundError:
            return (_local_epoch, None)
        return (_local_epoch, stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def cached(self, raw_token: str) -> Principal | None:
        """The principal from memory, or None when this caller must call ``authenticate``."""
        epoch = self._current_epoch()
        digest = _digest(raw_token)
        with self._lock:
            if epoch != self._epoch:
                self._entries.clear()
                self._refreshing.clear()
                self._epoch = epoch
            entry = self._entries.get(digest)
            if entry is None:
                return None
            principal, expires_at, stored = entry
            age = self._clock() - stored
            if age > self.ttl:
                if digest not in self._refreshing:
                    self._refreshing.add(digest)  # this caller reads it again
                    return None
                if age > 2 * self.ttl:
                    return None
        if expires_at is not None and expires_at <= utcnow():
            raise UnauthorizedError(f"token {principal.name!r} expired at {expires_at}")
        return principal

    def authenticate(self, raw_token: str, *, looked_up: bool = False) -> Principal:
        """The principal a bearer token stands for, from memory when possible; 401 otherwise.

        ``looked_up``: the caller already called ``cached`` and got None.
        """
        if not looked_up:
            found = self.cached(raw_token)
            if found is not None:
                return found
        epoch = self._current_epoch()  # read before the row, so a later revocation wins
        digest = _digest(raw_token)
        try:
            principal, expires_at = _load_live(self.engine, digest)
        except UnauthorizedError:
            with self._lock:
                self._entries.pop(digest, None)
            raise
        finally:
            with self._lock:
                self._refreshing.discard(digest)
        with self._lock:
            if epoch == self._epoch:
                if len(self._entries) >= self.size:
                    self._entries.clear()
                self._entries[digest] = (principal, expires_at, self._clock())
        return principal


def principal_for_token_id(engine: Engine, token_id: str) -> Principal:
    """The principal of a token known by id (a UI session keeps the id, never the secret)."""
    with Session(engine) as session:
        return _principal(_check_live(session.get(ApiTokenRow, token_id)))


def _trusted(settings: Settings, client_host: str) -> bool:
    try:
        address = ipaddress.ip_address(client_host)
    except ValueError:
        return False
    for entry in settings.trusted_proxies:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            log.warning("trusted_proxies entry is not an address or CIDR", entry=entry)
    return False


def principal_from_proxy(
    settings: Settings, client_host: str, headers: Mapping[str, str]
) -> Principal | None:
    """The user a trusted forward-auth proxy vouches for, or None when that does not apply.

    The headers count only when the connection comes from a configured proxy
    address: anyone else could set them. The highest role any of the user's
    groups maps to wins; a user in no mapped group gets no access (401).
    """
    if not settings.trusted_proxies or not _trusted(settings, client_host):
        return None
    user = headers.get(settings.proxy_user_header.lower(), "").strip()
    if not user:
        return None
    groups = [g.strip() for g in headers.get(settings.proxy_groups_header.lower(), "").split(",")]
    roles = [
        parse_role(settings.proxy_group_roles[g]) for g in groups if g in settings.proxy_group_roles
    ]
    if not roles:
        raise UnauthorizedError(f"proxy user {user!r} is in no group mapped to a role")
    best = max(roles, key=_RANK.__getitem__)
    # The proxy's e-mail header, when sent, is the identity: it is what Git records.
    header = str(getattr(settings, "proxy_email_header", PROXY_EMAIL_HEADER))
    email = headers.get(header.lower(), "").strip()
    identity = normalize_email(email) if email else user
    return Principal(
        name=identity,
        role=best,
        scopes=ALL_NAMESPACES,
        token_id=None,
        via="proxy",
        identities=(identity,) if email else (),
    )


def _validate_scopes(scopes: Sequence[str]) -> list[str]:
    cleaned = [s.strip() for s in scopes]
    if not cleaned:
        raise InvalidRequestError("namespaces must hold at least one pattern (use ['*'] for all)")
    for scope in cleaned:
        if not scope or any(c.isspace() for c in scope):
            raise InvalidRequestError(f"namespace pattern {scope!r} is empty or holds whitespace")
    return cleaned


def _validate_identities(identities: Sequence[str]) -> list[str]:
    cleaned = sorted({normalize_email(i) for i in identities})
    for identity in cleaned:
        local, at, domain = identity.partition("@")
        if not (local and at and domain) or any(c.isspace() for c in identity):
            raise InvalidRequestError(f"identity {identity!r} is not an e-mail address")
    return cleaned


def _token_summary(row: ApiTokenRow) -> dict[str, object]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "namespaces": row.scopes,
        "identities": row.identities,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
    }


def create_token(
    engine: Engine,
    *,
    name: str,
    role: Role,
    scopes: Sequence[str] = ALL_NAMESPACES,
    expires_at: datetime | None = None,
    actor: str,
    creator: Principal | None = None,
    identities: Sequence[str] = (),
) -> tuple[ApiTokenRow, str]:
    """Create a token; returns the row and the secret, which is never retrievable again.

    ``creator`` (the caller) must cover the new token's role and scopes: 403
    before anything is written otherwise. ``identities`` are verified e-mails.
    """
    if expires_at is not None and as_utc(expires_at) <= utcnow():
        raise InvalidRequestError("expires_at is in the past")
    role = parse_role(role)
    cleaned = _validate_scopes(scopes)
    if creator is not None and not creator.covers(role, cleaned):
        raise ForbiddenError(
            f"{creator.name!r} is {creator.role} scoped to {list(creator.scopes)}; "
            f"it cannot make a {role} token for {cleaned}, which is wider"
        )
    verified = _validate_identities(identities)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction(engine) as session:
        _refuse_duplicate_name(session, name)
        row = _insert_token(
            session,
            name=name,
            role=role,
            scopes=cleaned,
            digest=_digest(secret),
            # Stored in UTC: SQLite keeps no offset, and reads assume UTC.
            expires_at=as_utc(expires_at).astimezone(UTC) if expires_at else None,
            actor=actor,
            identities=verified,
        )
    return row, secret


def _insert_token(
    session: Session,
    *,
    name: str,
    role: Role,
    scopes: Sequence[str],
    digest: str,
    expires_at: datetime | None,
    actor: str,
    identities: Sequence[str] = (),
) -> ApiTokenRow:
    """Add a token row and its audit event in the caller's transaction."""
    row = ApiTokenRow(
        id="tok_" + uuid.uuid4().hex[:20],
        name=name,
        role=role,
        scopes=list(scopes),
        secret_sha256=digest,
        expires_at=expires_at,
        created_by=actor,
        identities=list(identities),
    )
    session.add(row)
    record_event(
        session,
        actor=actor,
        action="token.create",
        target=f"token:{row.id}",
        summary=_token_summary(row),
    )
    return row


def _refuse_duplicate_name(session: Session, name: str) -> None:
    live = session.exec(
        select(ApiTokenRow).where(
            col(ApiTokenRow.name) == name, col(ApiTokenRow.revoked_at).is_(None)
        )
    ).first()
    if live is not None:
        raise ConflictError(f"a live token named {name!r} already exists ({live.id})")


def list_tokens(engine: Engine, viewer: Principal | None = None) -> Sequence[ApiTokenRow]:
    """Live tokens, oldest first; a ``viewer`` sees only tokens no wider than itself."""
    with Session(engine) as session:
        rows = session.exec(
            select(ApiTokenRow)
            .where(col(ApiTokenRow.revoked_at).is_(None))
            .order_by(col(ApiTokenRow.created_at))
        ).all()
    return [r for r in rows if viewer is None or viewer.covers(r.role, r.scopes)]


def get_token(engine: Engine, token_id: str, viewer: Principal | None = None) -> ApiTokenRow:
    """A live token by id; 404 once revoked (so Terraform drops it), or wider than ``viewer``."""
    with Session(engine) as session:
        row = session.get(ApiTokenRow, token_id)
        if row is None or row.revoked_at is not None:
            raise NotFoundError(f"token {token_id!r} not found")
        if viewer is not None and not viewer.covers(row.role, row.scopes):
            raise ForbiddenError(f"token {token_id!r} is wider than {viewer.name!r}")
        return row


def revoke_token(
    engine: Engine, token_id: str, *, actor: str, revoker: Principal | None = None
) -> None:
    """Revoke a token: it stops working at once. The row stays for the audit trail.

    A ``revoker`` may revoke only tokens no wider than itself (403 otherwise).
    """
    with transaction(engine) as session:
        row = session.get(ApiTokenRow, token_id)
        if row is None or row.revoked_at is not None:
            raise NotFoundError(f"token {token_id!r} not found")
        if revoker is not None and not revoker.covers(row.role, row.scopes):
            raise ForbiddenError(f"token {token_id!r} is wider than {revoker.name!r}")
        row.revoked_at = utcnow()
        session.add(row)
        record_event(
            session,
            actor=actor,
            action="token.revoke",
            target=f"token:{row.id}",
            summary=_token_summary(row),
        )
    _note_revocation(engine)


def ensure_admin_token(engine: Engine, configured: str | None) -> str | None:
    """Make sure an admin can sign in; returns a newly made secret to print once, or None.

    A configured ``FLOWPLANE_ADMIN_TOKEN`` is authoritative: the ``admin`` token
    row holds its hash (rotated in place when the variable changes). Without
    one, the first start on an empty token table makes a random admin token.
    """
    rotated = False
    with transaction(engine) as session:
        live_admin = session.exec(
            select(ApiTokenRow).where(
                col(ApiTokenRow.name) == ADMIN_TOKEN_NAME, col(ApiTokenRow.revoked_at).is_(None)
            )
        ).first()
        if not configured:
            if session.exec(select(ApiTokenRow).limit(1)).first() is not None:
                return None
            secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
            _insert_admin(session, _digest(secret), actor="first start")
            return secret
        digest = _digest(configured)
        if live_admin is not None and live_admin.secret_sha256 == digest:
            return None
        if live_admin is not None:
            live_admin.revoked_at = utcnow()
            session.add(live_admin)
            session.flush()
            rotated = True
        _insert_admin(session, digest, actor="FLOWPLANE_ADMIN_TOKEN")
    if rotated:  # other running servers drop the old admin token at once
        _note_revocation(engine)
    return None


def _insert_admin(session: Session, digest: str, *, actor: str) -> None:
    _insert_token(
        session,
        name=ADMIN_TOKEN_NAME,
        role="admin",
        scopes=ALL_NAMESPACES,
        digest=digest,
        expires_at=None,
        actor=actor,
    )
