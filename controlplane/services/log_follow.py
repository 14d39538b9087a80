"""Reading a run's logs: pages for the API and the UI, and live followers without threads.

``LogNotifier`` serves every follower of an execution from one poller task on
the event loop. The poller reads new lines (in the thread pool, a short read
each tick) and fans them out to one bounded ``asyncio.Queue`` per follower, so
a thousand followers of a paused run hold no thread and cost one query per
tick. A follower that falls too far behind is dropped with a ``lagging`` end,
and reconnects with ``Last-Event-ID``. Each principal may hold ``per_owner``
followers at once; the slot is released when the follower disconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.domain.fields import State
from controlplane.domain.transitions import TERMINAL
from controlplane.errors import NotFoundError, TooManyRequestsError
from controlplane.logging import get_logger
from controlplane.store.tables import ExecutionRow, LogRow

log = get_logger(__name__)

# Rows read per query: a backlog of 50,000 lines is read in pages of this size.
READ_PAGE = 1000
# Lines a follower may have waiting before it is dropped as lagging.
QUEUE_LINES = 20_000


def read_logs(
    engine: Engine, execution_id: str, *, after: int = 0, limit: int = READ_PAGE
) -> Sequence[LogRow]:
    """Up to ``limit`` log lines of the execution after position ``after``, in order.

    Keyset paging on the primary key: each page is one indexed range read,
    however deep into the log it is.
    """
    statement = (
        select(LogRow)
        .where(col(LogRow.execution_id) == execution_id, col(LogRow.pk) > after)
        .order_by(col(LogRow.pk))
        .limit(limit)
    )
    with Session(engine) as session:
        return session.exec(statement).all()


def _state_of(engine: Engine, execution_id: str) -> str | None:
    with Session(engine) as session:
        return session.exec(
            select(ExecutionRow.state).where(col(ExecutionRow.id) == execution_id)
        ).first()


@dataclass(frozen=True)
class End:
    """The last item a follower gets: the run's final state, or why it was cut off."""

    state: str | None
    reason: str = "ended"  # "ended" | "lagging" | "gone" | "error"


class FollowLimitError(TooManyRequestsError):
    """The principal already holds as many followers as allowed."""


@dataclass
class _Feed:
    """The followers of one execution and the position its poller has reached."""

    cursor: int
    queues: set[asyncio.Queue[LogRow | End]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class LogNotifier:
    """One poller task per followed execution, fanning out to asyncio queues."""

    def __init__(self, engine: Engine, *, poll_seconds: float = 0.25, per_owner: int = 100) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.per_owner = per_owner
        self._feeds: dict[str, _Feed] = {}
        self._owners: dict[str, int] = {}

    def followers(self, owner: str | None = None) -> int:
        """How many followers are open (for ``owner``, or in all)."""
        if owner is not None:
            return self._owners.get(owner, 0)
        return sum(len(feed.queues) for feed in self._feeds.values())

    def pollers(self) -> int:
        """How many poller tasks run (one per followed execution)."""
        return len(self._feeds)

    def acquire(self, owner: str) -> Callable[[], None]:
        """Take one of ``owner``'s follower slots; returns its (idempotent) release.

        ``FollowLimitError`` when ``owner`` already holds ``per_owner`` of them.
        """
        if self._owners.get(owner, 0) >= self.per_owner:
            raise FollowLimitError(owner)
        self._owners[owner] = self._owners.get(owner, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            left = self._owners[owner] - 1
            if left:
                self._owners[owner] = left
            else:
                del self._owners[owner]

        return release

    async def follow(
        self, execution_id: str, *, after: int = 0, keepalive: float | None = None
    ) -> AsyncIterator[LogRow | End | None]:
        """Lines after ``after``, then new ones as they are written, then one ``End``.

        Runs on the event loop; database reads go to the thread pool one short
        query at a time. With ``keepalive``, ``None`` comes after that many idle
        seconds. Leaving the iteration early (a disconnect) unsubscribes.
        """
        feed = self._feeds.get(execution_id)
        if feed is None:
            feed = self._feeds[execution_id] = _Feed(cursor=after)
            feed.task = asyncio.create_task(self._poll(execution_id, feed))
        queue: asyncio.Queue[LogRow | End] = asyncio.Queue(QUEUE_LINES)
        feed.queues.add(queue)
        joined_at = feed.cursor  # the poller sends every line after this to the queue
        try:
            cursor = after
            while cursor < joined_at:  # the backlog this follower asked for, read by pages
                page = await to_thread.run_sync(
                    partial(read_logs, self.engine, execution_id, after=cursor)
                )
                rows = [r for r in page if (r.pk or 0) <= joined_at]
                if not rows:
                    break
                for row in rows:
                    yield row
                cursor = rows[-1].pk or cursor
            cursor = max(cursor, joined_at)
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), keepalive)
                except TimeoutError:
                    yield None
                    continue
                if isinstance(item, End):
                    yield item
                    return
                if (item.pk or 0) > cursor:
                    cursor = item.pk or cursor
                    yield item
        finally:
            feed.queues.discard(queue)
            if not feed.queues and self._feeds.get(execution_id) is feed and feed.task:
                feed.task.cancel()
                del self._feeds[execution_id]

    async def _poll(self, execution_id: str, feed: _Feed) -> None:
        """Read new lines every tick and hand them to every follower, until the run ends."""
        try:
            end = await self._read_until_end(execution_id, feed)
        except Exception:
            # A failed read ends this feed (followers are told to reconnect), never the server.
            log.exception("log follow poller failed", execution_id=execution_id)
            end = End(None, "error")
        finally:
            if self._feeds.get(execution_id) is feed:
                del self._feeds[execution_id]
        for queue in list(feed.queues):
            _offer(queue, end)

    async def _read_until_end(self, execution_id: str, feed: _Feed) -> End:
        while True:
            # The state first: every line written before the run ended is then read below.
            state = await to_thread.run_sync(_state_of, self.engine, execution_id)
            rows = await to_thread.run_sync(
                partial(read_logs, self.engine, execution_id, after=feed.cursor)
            )
            if rows:
                feed.cursor = rows[-1].pk or feed.cursor
                self._fan_out(feed, rows)
            if state is None:
                return End(None, "gone")
            drained = len(rows) < READ_PAGE
            if drained and State(state) in TERMINAL:
                return End(state)
            busy = any(q.qsize() > q.maxsize // 2 for q in feed.queues)
            if drained or busy:  # a backlog is read page after page, at the followers' pace
                await asyncio.sleep(self.poll_seconds)

    @staticmethod
    def _fan_out(feed: _Feed, rows: Sequence[LogRow]) -> None:
        for queue in list(feed.queues):
            if queue.maxsize - queue.qsize() <= len(rows):
                # Too far behind: cut it off; it resumes with Last-Event-ID.
                feed.queues.discard(queue)
                _offer(queue, End(None, "lagging"))
                continue
            for row in rows:
                queue.put_nowait(row)


def _offer(queue: asyncio.Queue[LogRow | End], item: End) -> None:
    """Put the end marker, making room for it when the queue is full."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


def check_exists(engine: Engine, execution_id: str) -> None:
    """``NotFoundError`` unless the execution exists."""
    if _state_of(engine, execution_id) is None:
        raise NotFoundError(f"execution {execution_id!r} not found")


def notifier_of(state: Any) -> LogNotifier:
    """The app's one notifier, made on first use; the API and the UI share it."""
    notifier: LogNotifier | None = getattr(state, "log_notifier", None)
    if notifier is None:
        notifier = state.log_notifier = LogNotifier(state.engine)
    return notifier
