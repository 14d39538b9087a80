"""Audit verification from the newest signed checkpoint forward, and the full check on demand."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from controlplane.store.audit import (
    record_event,
    signer_from_identity,
    verify_chain,
    verify_from_checkpoint,
    write_checkpoint,
)
from controlplane.store.db import transaction
from controlplane.store.tables import AuditEventRow
from tests.helpers import rewrite_audit_chain

SIGNER = signer_from_identity("AGE-SECRET-KEY-1TESTONLYTESTONLYTESTONLY")


def _events(engine: Engine, count: int, label: str) -> None:
    with transaction(engine) as session:
        for n in range(count):
            record_event(
                session, actor="test", action="test.event", target=f"{label}:{n}", summary={}
            )


def _checkpoint(engine: Engine) -> int:
    with transaction(engine) as session:
        return write_checkpoint(session, SIGNER).position


def _positions(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return [r[0] for r in connection.execute(text("SELECT pk FROM audit_events ORDER BY pk"))]


def test_only_events_after_the_newest_checkpoint_are_rehashed(engine: Engine) -> None:
    _events(engine, 10, "a")
    _checkpoint(engine)
    _events(engine, 5, "b")
    anchor = _checkpoint(engine)
    _events(engine, 3, "c")
    with Session(engine) as session:
        quick = verify_from_checkpoint(session, SIGNER)
        full = verify_chain(session, SIGNER)
    assert (quick.valid, quick.events, quick.checked, quick.full) == (True, 18, 3, False)
    assert quick.anchored_at == anchor
    assert (full.valid, full.events, full.checked, full.full) == (True, 18, 18, True)
    assert full.checkpoints == 2


def test_without_a_checkpoint_the_whole_chain_is_checked(engine: Engine) -> None:
    _events(engine, 4, "a")
    with Session(engine) as session:
        report = verify_from_checkpoint(session, SIGNER)
    assert (report.valid, report.events, report.checked, report.anchored_at) == (True, 4, 4, None)


def test_an_edit_after_the_checkpoint_is_named(engine: Engine) -> None:
    _events(engine, 5, "a")
    _checkpoint(engine)
    _events(engine, 3, "b")
    edited = _positions(engine)[6]
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_events SET actor = 'mallory' WHERE pk = :pk"), {"pk": edited}
        )
    with Session(engine) as session:
        report = verify_from_checkpoint(session, SIGNER)
    assert report.valid is False
    assert report.first_broken == edited


def test_truncation_past_the_checkpoint_fails_the_quick_check(engine: Engine) -> None:
    _events(engine, 6, "a")
    anchor = _checkpoint(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE pk >= :pk"), {"pk": anchor - 1})
    with Session(engine) as session:
        report = verify_from_checkpoint(session, SIGNER)
    assert report.valid is False
    assert "truncated" in report.reason


def test_a_recomputed_chain_fails_the_quick_check(engine: Engine) -> None:
    _events(engine, 6, "a")
    _checkpoint(engine)
    _events(engine, 2, "b")
    # Rewrite history: edit an early event and recompute every hash after it.

    def edit(index: int, row: AuditEventRow) -> None:
        if index == 1:
            row.actor = "mallory"

    rewrite_audit_chain(engine, edit)
    with Session(engine) as session:
        links_only = verify_chain(session)  # no key: the links alone look fine
        report = verify_from_checkpoint(session, SIGNER)
    assert links_only.valid is True
    assert report.valid is False
    assert "rewritten" in report.reason


def test_the_api_verifies_incrementally_and_fully_on_request(
    client: TestClient, engine: Engine
) -> None:
    assert client.put("/api/v1/namespaces/team.audit", json={"description": "x"}).status_code
    assert client.post("/api/v1/audit/checkpoints").status_code == 201
    assert client.put("/api/v1/namespaces/team.audit", json={"description": "y"}).status_code
    quick = client.get("/api/v1/audit/verify").json()
    assert quick["valid"] is True
    assert quick["checkpoints"] == 1
    # An event before the checkpoint edited in place (its stored hash left alone):
    # only the full check re-hashes that far back.
    first = _positions(engine)[0]
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_events SET actor = 'mallory' WHERE pk = :pk"), {"pk": first}
        )
    assert client.get("/api/v1/audit/verify").json()["valid"] is True
    full = client.get("/api/v1/audit/verify", params={"full": "true"}).json()
    assert full["valid"] is False
    assert full["first_broken"] == first
