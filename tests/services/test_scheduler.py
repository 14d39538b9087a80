"""Schedule triggers fire on time, exactly once per (flow, trigger, time)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from controlplane.domain.triggers import Schedule
from controlplane.domain.validate import validate_flow
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.scheduler import Scheduler, due_times
from controlplane.store.tables import ExecutionRow, TriggerFireRow

FLOW = """\
id: nightly
namespace: demo
tasks:
  - {id: a, type: Log, message: "fired for {{ trigger.date }}"}
triggers:
  - id: every5
    type: Schedule
    cron: "*/5 * * * *"
"""


def schedule(source: str) -> Schedule:
    trigger = (validate_flow(source).spec.triggers or [])[0]
    assert isinstance(trigger, Schedule)
    return trigger


def test_due_times_follow_cron_timezone_and_recovery_policy() -> None:
    start = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    now = start + timedelta(minutes=16)
    assert [t.minute for t in due_times(schedule(FLOW), start, now)] == [5, 10, 15]
    last = FLOW + "    recoverMissedSchedules: LAST\n"
    assert [t.minute for t in due_times(schedule(last), start, now)] == [15]
    paris = FLOW.replace('"*/5 * * * *"', '"0 9 * * *"') + "    timezone: Europe/Paris\n"
    day = datetime(2026, 1, 1, tzinfo=UTC)
    assert due_times(schedule(paris), day, day + timedelta(days=1)) == [
        datetime(2026, 1, 1, 8, 0, tzinfo=UTC)  # 09:00 in Paris is 08:00 UTC in winter
    ]


def fires(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(TriggerFireRow)).one())


def test_tick_fires_each_time_once_even_with_two_schedulers(engine: Engine) -> None:
    live_since = put_flow(engine, "demo", "nightly", FLOW, Provenance()).state.revision.created_at
    now = datetime.now(UTC) + timedelta(minutes=31)
    # The scheduler counts from the moment the revision went live.
    expected = len(due_times(schedule(FLOW), live_since, now))
    first, second = Scheduler(engine), Scheduler(engine)
    threads = [threading.Thread(target=s.tick, args=(now,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fires(engine) == expected >= 6
    assert first.tick(now) == 0  # nothing new is due
    with Session(engine) as session:
        runs = session.exec(select(ExecutionRow)).all()
    assert len(runs) == expected
    assert {r.trigger["type"] for r in runs} == {"schedule"}


def test_a_cron_flow_fires_on_time(client: TestClient) -> None:
    every_second = FLOW.replace('"*/5 * * * *"', '"* * * * * *"').replace(
        "type: Schedule", "type: Schedule\n    withSeconds: true"
    )
    client.put("/api/v1/flows/demo/nightly", json={"content": every_second})
    deadline = time.monotonic() + 10
    done: list[dict[str, object]] = []
    while time.monotonic() < deadline and not done:
        listed = client.get("/api/v1/executions", params={"flow_id": "nightly"}).json()
        done = [e for e in listed if e["state"] == "SUCCESS"]
        time.sleep(0.1)
    assert done, "no scheduled execution succeeded within 10 s"
    fired = datetime.fromisoformat(str(done[0]["trigger"]["date"]))  # type: ignore[index]
    created = datetime.fromisoformat(str(done[0]["created_at"]))
    assert abs((created - fired).total_seconds()) < 3
