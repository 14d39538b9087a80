"""Polls each Git source at its interval; webhooks make polling a fallback.

The poll runs on a ``BackgroundLoop``: an error that breaks a whole round
(the database is down) is logged and retried with backoff; an error syncing
one source is logged and that source is tried again at its next interval.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from controlplane.errors import FlowplaneError
from controlplane.logging import get_logger
from controlplane.services.gitops.plans import is_local, sync_source
from controlplane.services.gitops.sources import list_sources
from controlplane.services.loop import BackgroundLoop

log = get_logger(__name__)

STALE_AFTER_SECONDS = 600.0


@dataclass
class Poller:
    """Syncs every source whose poll interval has passed since its last poll."""

    engine: Engine
    cache_root: Path
    tick_seconds: float = 1.0
    loop: BackgroundLoop = field(init=False)
    _last: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A round fetches sources one after another, and a large clone takes
        # minutes: readiness allows that before it calls the poller stale.
        self.loop = BackgroundLoop(
            "git-poller",
            self.tick_seconds,
            lambda: self.poll_due(time.monotonic()),
            max_age=STALE_AFTER_SECONDS,
        )

    def start(self) -> None:
        """Poll in a background thread."""
        self.loop.start()

    def stop(self) -> None:
        """Stop polling."""
        self.loop.stop(30)

    def poll_due(self, now: float) -> int:
        """Sync the sources that are due; return how many were synced."""
        synced = 0
        for source in list_sources(self.engine):
            if is_local(source):
                continue  # a watched directory is synced by its watcher, on change
            last = self._last.get(source.id)
            if last is not None and now - last < source.poll_interval_seconds:
                continue
            self._last[source.id] = now
            try:
                plan = sync_source(self.engine, source.id, self.cache_root)
                synced += 1
                log.info("source_polled", source=source.id, plan=plan.id, status=plan.status)
            except (FlowplaneError, SQLAlchemyError) as exc:
                # One source failing must not starve the others of their polls.
                log.warning("source_poll_failed", source=source.id, error=str(exc))
        return synced
