"""Server-sent event responses that give a follower slot back however they end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class FollowResponse(StreamingResponse):
    """A log stream that releases its follower slot when it ends (even before it starts)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(
            content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream, then release the slot."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
