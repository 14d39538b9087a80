"""Bounds on what a request may carry.

A body-size limit enforced while the body streams in, before anything parses
it; the largest integer a parameter may hold; and text parameters that refuse
NUL characters, which no database column holds (PostgreSQL refuses them).
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import AfterValidator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The largest integer the databases store (a signed 64-bit BIGINT). A larger
# offset, position or revision is a 422 before it reaches SQL, where it would
# overflow the driver.
MAX_DB_INT = 2**63 - 1


def refuse_nul(value: str) -> str:
    """The value, unless it contains a NUL character."""
    if "\x00" in value:
        msg = "must not contain a NUL character"
        raise ValueError(msg)
    return value


# A path or query string that reaches the database: NUL is a 422 that names it.
Text = Annotated[str, AfterValidator(refuse_nul)]


class _TooLargeError(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: answer 413 once a request body passes ``max_bytes``.

    Content-Length is checked up front; chunked bodies are counted as they
    arrive, so a lying or missing length cannot get a large body through.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting body bytes as the app reads them."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLargeError:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {
                "code": "payload_too_large",
                "message": f"request body is larger than {self.max_bytes} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
