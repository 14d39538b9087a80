"""Signing in with a token (or through a trusted proxy) and signing out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from controlplane.errors import UnauthorizedError
from controlplane.services.access import authenticate_token
from controlplane.ui.identity import engine_of, principal_of
from controlplane.ui.rendering import page
from controlplane.ui.session import sign_in, sign_out

router = APIRouter()


def _safe_next(request: Request, target: str | None) -> str:
    """Where to go after signing in: a path inside the UI, never another site."""
    base = str(request.scope.get("root_path", "")).rstrip("/")
    if target and target.startswith(base + "/") and not target.startswith("//"):
        return target
    return base + "/"


@router.get("/signin")
def signin_form(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query name
    """The sign-in page; someone already signed in (or vouched for by a proxy) goes on."""
    if principal_of(request) is not None:
        return RedirectResponse(_safe_next(request, next), status_code=303)
    return page(request, "signin.html", {"next": next or ""})


@router.post("/signin")
def signin(
    request: Request,
    token: Annotated[str, Form(max_length=500)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",  # noqa: A002 - the form field's name
) -> Response:
    """Check the pasted token; the session keeps its id, never the token itself."""
    try:
        principal = authenticate_token(engine_of(request), token.strip())
    except UnauthorizedError as exc:
        context = {"next": next, "error": f"Sign-in failed: {exc}"}
        return page(request, "signin.html", context, status_code=401)
    if principal.token_id is None:  # pragma: no cover - tokens always have an id
        raise UnauthorizedError("this token cannot open a session")
    sign_in(request, principal.token_id)
    return RedirectResponse(_safe_next(request, next), status_code=303)


@router.post("/signout")
def signout(request: Request) -> Response:
    """End the session."""
    sign_out(request)
    base = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(base + "/signin", status_code=303)
