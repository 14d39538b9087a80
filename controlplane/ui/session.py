"""The UI session: a signed cookie holding a session id, a token id (never a secret), a CSRF token.

The session id names a row in ``ui_sessions``; signing out ends that row, so a
copied cookie stops working at once even though its signature is still good.

Starlette's ``SessionMiddleware`` signs the cookie with itsdangerous and always
marks it HttpOnly; we ask for ``SameSite=Lax``. The signing key comes from
``settings.session_secret`` when configured, else from a random key file in the
data dir, created once with mode 0600 so restarts keep sessions valid.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from controlplane.settings import Settings
from controlplane.store.db import transaction
from controlplane.store.tables import UiSessionRow, utcnow

KEY_FILE = "ui-session.key"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_TOKEN_ID = "token_id"  # noqa: S105 - a session key name, not a secret
_CSRF = "csrf"
_SESSION_ID = "sid"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_key(settings: Settings) -> str:
    """The key that signs session cookies; created on first start when none is configured."""
    configured: Any = getattr(settings, "session_secret", None)
    if configured is not None:
        value = (
            configured.get_secret_value()
            if hasattr(configured, "get_secret_value")
            else str(configured)
        )
        if value:
            return str(value)
    path = settings.data_dir.resolve() / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not both write a key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48))
    return _read_key(path)


def _read_key(path: Path) -> str:
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:  # noqa: PLR2004 - a truncated file (crash mid-write) is not a key
        raise OSError(f"{path} does not hold a usable session key; delete it to make a new one")
    return key


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.host.engine
    return engine


def signed_in_token_id(request: Request) -> str | None:
    """The token id the session was signed in with, if its server-side session is still live."""
    value = request.session.get(_TOKEN_ID)
    session_id = request.session.get(_SESSION_ID)
    if not isinstance(value, str) or not isinstance(session_id, str):
        return None
    with transaction(_engine(request)) as db:
        row = db.get(UiSessionRow, session_id)
        if row is None or row.ended_at is not None or row.token_id != value:
            return None
    return value


def sign_in(request: Request, token_id: str) -> None:
    """Remember ``token_id``; a fresh CSRF token is issued so a pre-login one cannot be reused."""
    request.session.clear()
    session_id = secrets.token_urlsafe(32)
    with transaction(_engine(request)) as db:
        db.add(UiSessionRow(id=session_id, token_id=token_id))
    request.session[_SESSION_ID] = session_id
    request.session[_TOKEN_ID] = token_id
    request.session[_CSRF] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    """End the session on the server, then forget everything the cookie held."""
    session_id = request.session.get(_SESSION_ID)
    if isinstance(session_id, str):
        with transaction(_engine(request)) as db:
            row = db.get(UiSessionRow, session_id)
            if row is not None and row.ended_at is None:
                row.ended_at = utcnow()
                db.add(row)
    request.session.clear()


def csrf_token(request: Request) -> str:
    """The session's CSRF token, issued on first use."""
    token = request.session.get(_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[_CSRF] = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse (403) an unsafe request whose CSRF token is missing or wrong.

    Forms send the token in a hidden field, htmx requests in a header.
    """
    if request.method in _SAFE_METHODS:
        return
    expected = request.session.get(_CSRF)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        raise HTTPException(403, "the form expired or did not come from this site; reload it")
