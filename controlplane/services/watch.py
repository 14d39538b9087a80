"""Watch a local working directory and apply it on every settled change.

``flowplane server --watch DIR`` serves a directory laid out like a flows
repository (``flows/<namespace>/<id>.yaml``, ``secrets/<namespace>.age``)
as a source with id ``local`` and url ``local:<absolute dir>``. Its plans
have kind ``local`` and no commit: ``target_commit`` holds the sha256 of the
files read, and the revisions they write carry origin ``local:<dir>`` and no
Git commit. Every change, once the directory has been quiet for the debounce
interval, plans the whole directory and applies it at once; an invalid file
fails the plan, naming file and line, and nothing activates.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles
from sqlalchemy import Engine

from controlplane.errors import FlowplaneError, InvalidRequestError
from controlplane.logging import get_logger
from controlplane.services.gitops.plans import LOCAL_SCHEME, sync_source
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
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> PlanRow:
        """Register the source, apply the directory once, then watch it in a thread."""
        ensure_local_source(self.engine, self.directory, self.source_id)
        first = self.sync_now()
        self._thread = threading.Thread(target=self._loop, name="dir-watcher", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return first

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def sync_now(self) -> PlanRow:
        """Plan the directory as it is and apply it when valid."""
        plan = sync_source(self.engine, self.source_id, self.cache_root, keyring=self.keyring)
        log.info(
            "directory_synced", directory=str(self.directory), plan=plan.id, status=plan.status
        )
        return plan

    def _loop(self) -> None:
        changes = watchfiles.watch(
            self.directory,
            debounce=self.debounce_ms,
            stop_event=self._stop,
            yield_on_timeout=True,
            rust_timeout=500,
            raise_interrupt=False,
        )
        for batch in changes:
            # The first (empty) timeout batch says the OS watch is in place.
            self._ready.set()
            if not batch:
                continue
            try:
                self.sync_now()
            except FlowplaneError as exc:
                log.warning("directory_sync_failed", directory=str(self.directory), error=str(exc))
        self._ready.set()
