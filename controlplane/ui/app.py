"""The UI as a sub-application mounted at ``/ui``, with its own session and error pages.

Being a separate app keeps the session cookie, CSRF checks and HTML error
pages away from the JSON API, and keeps UI routes out of the API contract.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controlplane.api.errors import status_for
from controlplane.errors import FlowplaneError, UnauthorizedError
from controlplane.settings import Settings
from controlplane.ui.pages import audit, auth, dashboard, executions, flows, plans, sources, tokens
from controlplane.ui.rendering import page
from controlplane.ui.session import check_csrf, session_key

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "flowplane_session"
SESSION_HOURS = 12
# Scripts only from the UI itself (htmx); inline style attributes are used by
# the run timeline, so styles allow them. No framing, no plugins, no foreign forms.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every UI response (pages, errors, redirects, static files)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build_ui(host: FastAPI, settings: Settings) -> FastAPI:
    """The UI app; ``host`` is the API app whose engine and settings it uses."""
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ui.state.host = host.state
    ui.add_middleware(
        SessionMiddleware,
        secret_key=session_key(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_HOURS * 3600,
        path="/ui",
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    ui.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (auth, dashboard, flows, plans, executions, sources, audit, tokens):
        ui.include_router(module.router, dependencies=[Depends(check_csrf)])
    ui.add_exception_handler(UnauthorizedError, _signed_out)
    ui.add_exception_handler(FlowplaneError, _error_page)
    ui.add_exception_handler(HTTPException, _error_page)
    # Outermost, so error pages and redirects carry the headers too.
    ui.add_middleware(SecurityHeaders)
    return ui


async def _signed_out(request: Request, exc: Exception) -> Response:
    """Nobody signed in: pages send the browser to sign in, form posts answer 401."""
    base = str(request.scope.get("root_path", "")).rstrip("/")
    if request.method == "GET":
        target = f"{base}/signin?next={request.url.path}"
        if request.headers.get("HX-Request") == "true":
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    return _render_error(request, 401, str(exc))


async def _error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _render_error(request, exc.status_code, str(exc.detail))
    assert isinstance(exc, FlowplaneError)  # noqa: S101 - registered for this class only
    status, _code = status_for(exc)  # the API's one error table
    return _render_error(request, status, str(exc) if status < 500 else "something went wrong")  # noqa: PLR2004


def _render_error(request: Request, status: int, message: str) -> Response:
    response = page(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )
    if request.headers.get("HX-Request") == "true":
        # A targeted htmx request would drop the error into a small panel; show the page.
        response.headers["HX-Retarget"] = "body"
        response.headers["HX-Reswap"] = "innerHTML"
    return response
