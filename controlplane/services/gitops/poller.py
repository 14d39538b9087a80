"""Polls each Git source at its interval; webhooks make polling a fallback."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from controlplane.errors import FlowplaneError
from controlplane.logging import get_logger
from controlplane.services.gitops.plans import is_local, sync_source
from controlplane.services.gitops.sources import list_sources

log = get_logger(__name__)


@dataclass
class Poller:
    """Syncs every source whose poll interval has passed since its last poll."""

    engine: Engine
    cache_root: Path
    tick_seconds: float = 1.0
    _last: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Poll in a background thread."""
        self._thread = threading.Thread(target=self._loop, name="git-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            self.poll_due(time.monotonic())

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
            except FlowplaneError as exc:
                log.warning("source_poll_failed", source=source.id, error=str(exc))
        return synced
