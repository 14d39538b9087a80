"""Background loops with one error and backoff policy, and the registry readiness asks.

Every periodic job of the server (scheduler, Git poller, directory watcher)
runs on a ``BackgroundLoop``: a thread that calls a tick function, survives
any exception the tick raises (a raw database error included), logs it with
the loop's name, and backs off exponentially while the failures last. The
thread records when the tick last succeeded, so ``/readyz`` can tell a loop
that is alive and working from one that died or hangs.

``LoopRegistry`` collects the loops of one app, plus anything else that can
say whether it is alive and when it last made progress (``watch``: the
embedded workers), and answers "which of them are dead or stale?".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from controlplane.logging import get_logger
from controlplane.metrics import LOOP_FAILURES, LOOP_LAST_SUCCESS

log = get_logger(__name__)

# A loop is stale when its last success is older than max(3 * interval, this floor):
# a tick may legitimately take a while (a sync, a catch-up), and a probe must not flap.
STALE_FLOOR_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 30.0
# The backoff of a loop that ticks back to back (interval 0) still starts somewhere.
_MIN_BACKOFF_BASE = 0.1


@dataclass
class BackgroundLoop:
    """Calls ``tick`` every ``interval`` seconds in a thread, whatever the tick raises.

    After ``n`` consecutive failures the next tick waits
    ``min(max_backoff, base * 2**n)`` instead of ``interval``; one success resets it.
    """

    name: str
    interval: float
    tick: Callable[[], object]
    max_backoff: float = MAX_BACKOFF_SECONDS
    max_age: float | None = None  # None: max(3 * interval, STALE_FLOOR_SECONDS)
    last_success: float | None = None  # time.time() of the last tick that returned
    failures: int = 0  # consecutive failed ticks
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def stale_after(self) -> float:
        """Seconds without a successful tick after which the loop counts as stale."""
        if self.max_age is not None:
            return self.max_age
        return max(3 * self.interval, STALE_FLOOR_SECONDS)

    @property
    def delay(self) -> float:
        """Seconds to wait before the next tick: the interval, or the backoff after failures."""
        if self.failures == 0:
            return self.interval
        base = max(self.interval, _MIN_BACKOFF_BASE)
        # The exponent is capped too, so a long outage cannot overflow the float.
        return float(min(self.max_backoff, base * 2 ** min(self.failures, 32)))

    def start(self) -> None:
        """Run the loop in a daemon thread (the first tick comes after one interval)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop after the tick in hand, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> threading.Event:
        """Set once ``stop`` is called; a tick that blocks should wake on it."""
        return self._stop

    def is_alive(self) -> bool:
        """Whether the loop's thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def run_once(self) -> bool:
        """Call the tick once, recording its outcome; False when it raised."""
        try:
            self.tick()
        except Exception as exc:  # noqa: BLE001 - the loop outlives any tick, by design
            self.failures += 1
            LOOP_FAILURES.labels(self.name).inc()
            log.warning(
                "loop_tick_failed",
                loop=self.name,
                error=f"{type(exc).__name__}: {exc}",
                failures=self.failures,
                retry_in=self.delay,
            )
            return False
        if self.failures:
            log.info("loop_recovered", loop=self.name, after_failures=self.failures)
        self.failures = 0
        self.last_success = time.time()
        LOOP_LAST_SUCCESS.labels(self.name).set(self.last_success)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.delay):
            self.run_once()


@dataclass(frozen=True)
class _Watched:
    """Something the registry checks: a loop, or a thread it does not own."""

    is_alive: Callable[[], bool]
    last_tick: Callable[[], float | None]
    max_age: float
    since: float  # when it was registered: a grace period before its first tick


@dataclass
class LoopRegistry:
    """The background loops of one app, and what readiness thinks of them."""

    _watched: dict[str, _Watched] = field(default_factory=dict)
    _loops: dict[str, BackgroundLoop] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, loop: BackgroundLoop) -> BackgroundLoop:
        """Register ``loop`` under its name (replacing a loop of the same name)."""
        with self._lock:
            self._loops[loop.name] = loop
        self.watch(loop.name, loop.is_alive, lambda: loop.last_success, max_age=loop.stale_after)
        return loop

    def watch(
        self,
        name: str,
        is_alive: Callable[[], bool],
        last_tick: Callable[[], float | None] | None,
        max_age: float,
    ) -> None:
        """Check something that is not a ``BackgroundLoop`` (an embedded worker).

        ``last_tick`` gives the ``time.time()`` of its last successful round,
        or None before the first one; without it only liveness is checked.
        """
        with self._lock:
            self._watched[name] = _Watched(
                is_alive=is_alive,
                last_tick=last_tick or (lambda: None),
                max_age=max_age if last_tick is not None else float("inf"),
                since=time.time(),
            )

    def get(self, name: str) -> BackgroundLoop:
        """The loop registered as ``name``; KeyError when there is none."""
        with self._lock:
            return self._loops[name]

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        with self._lock:
            return sorted(self._watched)

    def problems(self, now: float | None = None) -> dict[str, str]:
        """``{name: "dead" | "stale"}`` for each loop that is not running and recent."""
        now = time.time() if now is None else now
        with self._lock:
            watched = dict(self._watched)
        found: dict[str, str] = {}
        for name, item in sorted(watched.items()):
            if not item.is_alive():
                found[name] = "dead"
                continue
            last = item.last_tick()
            if now - (item.since if last is None else max(last, item.since)) > item.max_age:
                found[name] = "stale"
        return found
