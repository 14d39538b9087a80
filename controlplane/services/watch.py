"""Watch a local working directory and apply it on every settled change.

``flowplane server --watch DIR`` serves a directory laid out like a flows
repository (``flows/<namespace>/<id>.yaml``, ``secrets/<namespace>.age``)
as a source with id ``local`` and url ``local:<absolute dir>``. Its plans
have kind ``local`` and no commit: ``target_commit`` holds the sha256 of the
files read, and the revisions they write carry origin ``local:<dir>`` and no
Git commit. Every change, once the directory has been quiet for the debounce
interval, plans the whole directory and applies it at once; an invalid file
fails the plan, naming file and line, and nothing activates.

The watch runs on a ``BackgroundLoop`` whose tick waits for one batch of
changes (or a half-second timeout): a failed sync, even a raw database
error, is logged and retried with backoff, and the OS watch is set up again
if it broke.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles
from sqlalchemy import Engine

from controlplane.errors import InvalidRequestError
from controlplane.logging import get_logger
from controlplane.services.gitops.plans import LOCAL_SCHEME, sync_source
from controlplane.services.loop import BackgroundLoop, LoopRegistry
from controlplane.services.secrets import Keyring
from controlplane.store.db import transaction
from controlplane.store.tables import GitSourceRow, PlanRow, utcnow

log = get_logger(__name__)

LOCAL_SOURCE_ID = "local"
_MAX_ORIGIN = 200


def ensure_local_source(
    engine: Engine, directory: Path, source_id: str = LOCAL_SOURCE_ID
) -> GitSourceRow:
    """The source row for a watched directory: auto-applied, and pruning (the files are truth)."""
    url = f"{LOCAL_SCHEME}{directory.resolve()}"
    if len(url) > _MAX_ORIGIN:
        raise InvalidRequestError(f"the watched path is too long for an origin: {url}")
    with transaction(engine) as session:
        row = session.get(GitSourceRow, source_id, with_for_update=True)
        if row is None:
            row = GitSourceRow(id=source_id, url=url, approval="auto", prune=True)
        row.deleted_at = None  # watching again revives a deleted local source
        if row.url != url:
            # The flows of the previous directory stay owned by its origin until replaced.
            row.url = url
            row.version += 1
            row.updated_at = utcnow()
        session.add(row)
        return row


@dataclass
class DirectoryWatcher:
    """Plans and applies ``directory`` at start and after every settled change."""

    engine: Engine
    directory: Path
    cache_root: Path  # <data_dir>/git: its parent holds the server identity
    keyring: Keyring | None = None
    debounce_ms: int = 400
    source_id: str = LOCAL_SOURCE_ID
    loops: LoopRegistry | None = None  # readiness then watches this loop too
    loop: BackgroundLoop = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    _changes: Iterator[set[tuple[watchfiles.Change, str]]] | None = None
    _dirty: bool = False  # a change was seen but its sync has not succeeded yet
    _ready: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        # Each tick blocks in the OS watch for at most half a second, so it
        # needs no interval of its own.
        self.loop = BackgroundLoop("dir-watcher", 0.0, self.watch_once)

    def start(self) -> PlanRow:
        """Register the source, apply the directory once, then watch it in a thread."""
        ensure_local_source(self.engine, self.directory, self.source_id)
        first = self.sync_now()
        self._stop.clear()
        if self.loops is not None:
            self.loops.add(self.loop)
        self.loop.start()
        self._ready.wait(10)
        return first

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()  # wakes the OS watch
        self.loop.stop(30)

    def sync_now(self) -> PlanRow:
        """Plan the directory as it is and apply it when valid."""
        plan = sync_source(self.engine, self.source_id, self.cache_root, keyring=self.keyring)
        log.info(
            "directory_synced", directory=str(self.directory), plan=plan.id, status=plan.status
        )
        return plan

    def watch_once(self) -> None:
        """Wait for one settled batch of changes (or a short timeout) and sync after a change.

        A sync that failed is retried on the next call, change or not.
        """
        if self._changes is None:
            self._changes = watchfiles.watch(
                self.directory,
                debounce=self.debounce_ms,
                stop_event=self._stop,
                yield_on_timeout=True,
                rust_timeout=500,
                raise_interrupt=False,
            )
        try:
            batch = next(self._changes, None)
        except Exception:
            self._changes = None  # the OS watch broke: set it up again next time
            raise
        # The first batch (empty, on timeout) says the OS watch is in place.
        self._ready.set()
        if batch is None:
            self._changes = None  # stopped
            return
        if batch:
            self._dirty = True
        if self._dirty:
            self.sync_now()
            self._dirty = False
