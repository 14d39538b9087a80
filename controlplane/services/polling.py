"""The polling loop: evaluates plugin polling triggers when due, firing each key once.

Each pass lists the live flows, picks their polling triggers (a plugin kind,
``controlplane.domain.polling``) whose interval is due, and polls each on a
small thread pool, so a slow outside system delays only its own trigger. A
poll runs through a ``PollContext`` bound to the flow: templates render with
the flow's variables and ``secret()`` of the flow's namespace only, and every
secret revealed is masked in the poll's log lines, its errors and the fire
variables the run receives.

Exactly once: every ``Fire`` a poll returns creates its execution in the
transaction that inserts ``(flow, trigger, key)`` into ``polling_fires``
under a unique constraint. Another server polling the same trigger, or a
restart after a crash, loses on that key and starts nothing; the next poll
returning the same key starts nothing either.

Fault boundary: a poll that raises is logged (masked) and its trigger backs
off exponentially; the other triggers and flows go on. A trigger disabled in
its source, switched off at run time (``trigger_states``), on a disabled flow,
or stopped by ``stopAfter`` is not polled; ``conditions`` are tested before
the poll, with ``trigger.date`` the time of the pass, as Kestra does.

When a trigger is due is kept in memory: a restarted server polls at once,
and two servers each poll at the interval (the fire keys keep the runs single).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from controlplane.domain import expressions
from controlplane.domain.conditions import ConditionContext, first_failing
from controlplane.domain.polling import POLLING_ALIASES, POLLING_TRIGGERS, Fire, PollingTrigger
from controlplane.domain.tasktypes.base import labels_as_dict
from controlplane.errors import EvaluationError, StoreError
from controlplane.logging import get_logger
from controlplane.runners.sandbox import default_work_root
from controlplane.services import own_database
from controlplane.services.executions import create_in_session
from controlplane.services.loop import BackgroundLoop
from controlplane.services.masking import mask_text, secret_variants
from controlplane.services.revisions import stored_spec
from controlplane.services.secrets import Keyring, load_keyring, reveal
from controlplane.services.worker.boundary import LEVEL_RANK
from controlplane.store import polling as store
from controlplane.store import trigger_states
from controlplane.store.db import transaction
from controlplane.store.flows import FlowFilter, list_active
from controlplane.store.tables import ExecutionRow, FlowRevisionRow, utcnow

log = get_logger(__name__)

LOOP_NAME = "polling-triggers"
# A broken trigger is retried after interval * 2**failures, at most this (or its interval).
MAX_POLL_BACKOFF_SECONDS = 300.0
# How long one pass waits for its polls; a poll still running is left to finish on its own.
PASS_WAIT_SECONDS = 30.0
POOL_SIZE = 4

TriggerKey = store.TriggerKey


@dataclass
class _Due:
    at: datetime
    failures: int = 0


@dataclass
class PollContext:
    """The ``TriggerContext`` of one poll: the flow's namespace and nothing else."""

    engine: Engine
    keyring: Callable[[], Keyring]
    revision: FlowRevisionRow
    trigger: PollingTrigger
    now: datetime
    stopping: threading.Event = field(default_factory=threading.Event)
    revealed: set[str] = field(default_factory=set)
    _variants: set[str] = field(default_factory=set)
    # The server's directories a flow's local path may not name (server_paths).
    paths: tuple[Path, ...] = ()

    @property
    def namespace(self) -> str:  # noqa: D102 - see domain.polling.TriggerContext
        return self.revision.namespace

    @property
    def flow_id(self) -> str:  # noqa: D102
        return self.revision.flow_id

    @property
    def key(self) -> TriggerKey:
        """(namespace, flow id, trigger id)."""
        return (self.revision.namespace, self.revision.flow_id, self.trigger.id)

    def variables(self) -> dict[str, Any]:
        """What the trigger's templates (and conditions) see."""
        spec = stored_spec(self.revision.source)
        return {
            "flow": {
                "id": self.revision.flow_id,
                "namespace": self.revision.namespace,
                "revision": self.revision.revision,
            },
            "trigger": {
                "id": self.trigger.id,
                "type": self.trigger.type,
                "date": self.now.isoformat(),
            },
            "vars": spec.variables or {},
            "labels": spec.labels or {},
            "envs": {},
            "globals": {},
            "__secret_lookup": self.secret,
        }

    def render(self, value: Any) -> Any:  # noqa: D102
        return expressions.render_value(value, self.variables())

    def secret(self, key: str) -> str | None:
        """The secret ``key`` of the flow's namespace, masked from then on (``secret()``)."""
        value = reveal(self.engine, self.keyring(), self.revision.namespace, key)
        if value:
            self.revealed.add(value)
            self._variants |= secret_variants(value)
        return value

    def is_secret(self, value: str) -> bool:  # noqa: D102
        return any(secret in value for secret in self.revealed)

    def mask(self, value: Any) -> Any:
        """``value`` with every revealed secret masked (dicts and lists walked)."""
        if isinstance(value, str):
            return mask_text(value, self._variants)
        if isinstance(value, dict):
            return {self.mask(k): self.mask(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask(v) for v in value]
        return value

    def log(self, level: str, message: str) -> None:  # noqa: D102
        floor = self.trigger.logLevel
        if floor is not None and LEVEL_RANK.get(level, 2) < LEVEL_RANK.get(floor.value, 0):
            return
        method = {"TRACE": log.debug, "DEBUG": log.debug, "WARN": log.warning}.get(
            level.upper(), getattr(log, level.lower(), log.info)
        )
        method(
            "polling_trigger_log",
            flow=f"{self.namespace}/{self.flow_id}",
            trigger=self.trigger.id,
            message=self.mask(message),
        )

    def load_state(self) -> Any:  # noqa: D102
        with Session(self.engine) as session:
            return store.load_state(session, self.key)

    def save_state(self, value: Any) -> None:  # noqa: D102
        with transaction(self.engine) as session:
            store.save_state(session, self.key, self.mask(value))

    def should_stop(self) -> bool:  # noqa: D102
        return self.stopping.is_set()

    def ensure_not_server_database(self, host: str, port: int, dbname: str) -> None:  # noqa: D102
        own_database.ensure_not_server_database(self.engine, host, port, dbname)

    def server_paths(self) -> list[Path]:  # noqa: D102
        return list(self.paths)


def fire_polling(
    engine: Engine, revision: FlowRevisionRow, trigger: PollingTrigger, fire: Fire
) -> ExecutionRow | None:
    """Create the run ``fire`` starts, at most once per (flow, trigger, key) ever.

    The key's row is inserted in the execution's transaction; when the key was
    fired already (by this or another server) nothing is created and None is
    returned. Any other store error is raised: the fire is then retried by a
    later poll, never lost silently.
    """
    key = (revision.namespace, revision.flow_id, trigger.id)
    variables = {**fire.variables, "id": trigger.id, "type": trigger.type}
    try:
        with transaction(engine) as session:
            if store.has_fired(session, key, fire.key):
                return None
            execution = create_in_session(
                session,
                revision.namespace,
                revision.flow_id,
                inputs=trigger.inputs or {},
                labels=labels_as_dict(trigger.labels) if trigger.labels else None,
                trigger=variables,
            )
            session.add(store.new_fire(key, fire.key, execution.id))
    except StoreError as exc:
        if isinstance(exc.__cause__, IntegrityError) and _fired(engine, key, fire.key):
            return None  # another poller committed this key first
        raise
    return execution


def _fired(engine: Engine, key: TriggerKey, fire_key: str) -> bool:
    with Session(engine) as session:
        return store.has_fired(session, key, fire_key)


@dataclass
class PollingTriggers:
    """Polls every active flow's polling triggers at their intervals; several may run at once."""

    engine: Engine
    data_dir: Path
    interval: float = 1.0
    # FLOWPLANE_WORK_DIR: local Git URLs into it are refused (other executions' files).
    work_dir: Path | None = None
    loop: BackgroundLoop = field(init=False)
    _due: dict[TriggerKey, _Due] = field(default_factory=dict)
    _in_flight: set[TriggerKey] = field(default_factory=set)
    _reported: set[tuple[int | None, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _keyring: Keyring | None = None
    _pool: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        self.loop = BackgroundLoop(LOOP_NAME, self.interval, lambda: self.run_pass(utcnow()))

    def start(self) -> None:
        """Poll in a background thread."""
        self.loop.start()

    def stop(self) -> None:
        """Stop polling; polls in hand are asked to give up."""
        self.loop.stop(10)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def keyring(self) -> Keyring:
        """The server's identity, loaded on first use (secrets are decrypted with it)."""
        if self._keyring is None:
            self._keyring = load_keyring(self.data_dir)
        return self._keyring

    def failures(self, key: TriggerKey) -> int:
        """How many polls of the trigger failed in a row (0 once one succeeds)."""
        with self._lock:
            due = self._due.get(key)
            return due.failures if due is not None else 0

    def run_pass(self, now: datetime | None = None, *, wait: float = PASS_WAIT_SECONDS) -> int:
        """Poll every trigger due at ``now``; return how many runs the finished polls started.

        Polls run on the pool; the pass waits up to ``wait`` seconds for them.
        A poll still running after that finishes on its own, and its trigger
        is not polled again meanwhile.
        """
        now = now or utcnow()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix=LOOP_NAME)
        futures: list[Future[int]] = []
        for revision, trigger in self._due_triggers(now):
            futures.append(self._pool.submit(self._poll, revision, trigger, now))
        done, _pending = wait_for(futures, timeout=wait)
        return sum(future.result() for future in done)

    def _due_triggers(self, now: datetime) -> list[tuple[FlowRevisionRow, PollingTrigger]]:
        """The active polling triggers whose time has come, marked in flight."""
        if not POLLING_TRIGGERS:
            return []
        names = {*POLLING_TRIGGERS, *POLLING_ALIASES}
        with Session(self.engine) as session:
            rows, _ = list_active(session, FlowFilter(), offset=0, limit=100_000)
            off = trigger_states.disabled_keys(session)
        due: list[tuple[FlowRevisionRow, PollingTrigger]] = []
        with self._lock:
            for _flow, revision in rows:
                # A cheap test first: most flows name no polling trigger type at all.
                if not any(name in revision.source for name in names):
                    continue
                spec = stored_spec(revision.source)
                if spec.disabled:
                    continue
                for trigger in spec.triggers or []:
                    if not isinstance(trigger, PollingTrigger) or trigger.disabled:
                        continue
                    key = (revision.namespace, revision.flow_id, trigger.id)
                    if key in off or key in self._in_flight:
                        continue
                    known = self._due.get(key)
                    if known is not None and now < known.at:
                        continue
                    self._in_flight.add(key)
                    due.append((revision, trigger))
        return due

    def _poll(self, revision: FlowRevisionRow, trigger: PollingTrigger, now: datetime) -> int:
        """Poll one trigger and fire what it found; never raises (the fault boundary)."""
        context = PollContext(
            self.engine,
            self.keyring,
            revision,
            trigger,
            now,
            stopping=self.loop.stopping,
            paths=(self.data_dir, self.work_dir or default_work_root(self.data_dir)),
        )
        created = 0
        try:
            created = self._evaluate(context)
        except Exception as exc:  # noqa: BLE001 - one broken trigger must not stop the rest
            self._back_off(context, exc)
        else:
            with self._lock:
                self._due[context.key] = _Due(now + timedelta(seconds=trigger.interval_seconds()))
        finally:
            with self._lock:
                self._in_flight.discard(context.key)
        return created

    def _evaluate(self, context: PollContext) -> int:
        trigger, revision = context.trigger, context.revision
        if self._stopped(context) or not self._conditions_hold(context):
            return 0
        fires = trigger.poll(context) or []
        created = 0
        for fire in fires:
            masked = Fire(key=fire.key, variables=context.mask(fire.variables))
            execution = fire_polling(self.engine, revision, trigger, masked)
            if execution is None:
                continue
            created += 1
            log.info(
                "polling_trigger_fired",
                flow=f"{revision.namespace}/{revision.flow_id}",
                trigger=trigger.id,
                execution_id=execution.id,
            )
        return created

    def _conditions_hold(self, context: PollContext) -> bool:
        """Whether the trigger's conditions allow this poll; a refusal is logged."""
        trigger = context.trigger
        if not trigger.conditions:
            return True
        flow = f"{context.namespace}/{context.flow_id}"
        try:
            failing = first_failing(trigger.conditions, ConditionContext(context.variables()))
        except EvaluationError as exc:
            log.warning(
                "polling_condition_failed",
                flow=flow,
                trigger=trigger.id,
                error=context.mask(str(exc)),
            )
            return False
        if failing is None:
            return True
        log.info(
            "polling_skipped_by_condition",
            flow=flow,
            trigger=trigger.id,
            condition=f"conditions[{failing}] ({trigger.conditions[failing].NAME})",
        )
        return False

    def _stopped(self, context: PollContext) -> bool:
        """Whether a run of the live revision this trigger started ended in a stopAfter state."""
        trigger, revision = context.trigger, context.revision
        if not trigger.stopAfter or revision.pk is None:
            return False
        with Session(self.engine) as session:
            hit = store.ended_run(
                session, context.key, revision.pk, [state.value for state in trigger.stopAfter]
            )
        if hit is None:
            return False
        if (revision.pk, trigger.id) not in self._reported:
            self._reported.add((revision.pk, trigger.id))
            log.info(
                "polling_trigger_stopped",
                flow=f"{revision.namespace}/{revision.flow_id}",
                revision=revision.revision,
                trigger=trigger.id,
                execution=hit[0],
                state=hit[1],
            )
        return True

    def _back_off(self, context: PollContext, exc: Exception) -> None:
        interval = context.trigger.interval_seconds()
        with self._lock:
            known = self._due.get(context.key)
            failures = (known.failures if known is not None else 0) + 1
            delay = min(max(interval, MAX_POLL_BACKOFF_SECONDS), interval * 2 ** min(failures, 16))
            self._due[context.key] = _Due(context.now + timedelta(seconds=delay), failures)
        log.warning(
            "polling_trigger_failed",
            flow=f"{context.namespace}/{context.flow_id}",
            trigger=context.trigger.id,
            error=context.mask(f"{type(exc).__name__}: {exc}"),
            failures=failures,
            retry_in=delay,
        )
