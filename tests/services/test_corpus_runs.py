"""Every runnable corpus flow ends as Kestra's own tests say, all in one server.

One app (one database, one embedded worker thread, the scheduler and the Git
poller off) serves the whole module. Every corpus flow is stored through the
API, then every runnable one is queued in a shuffled order and each
parametrized case waits for its own execution. Because they share the worker,
a flow that breaks the worker fails the cases queued behind it.

The expectations live in ``tests/corpus_expectations.yaml``; a flow Flowplane
does not yet end as Kestra does carries a ``known_failure`` there, which marks
its case ``xfail(strict=True)``. Set ``FLOWPLANE_CORPUS_SEED`` to replay an order.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import SQLModel

from controlplane.api import create_app
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from controlplane.settings import Settings
from tests.conftest import ADMIN_TOKEN, CORPUS, bearer

pytestmark = pytest.mark.database

EXPECTATIONS = Path(__file__).resolve().parents[1] / "corpus_expectations.yaml"
STOPPED = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED"})
# One bound for the whole queue: the flows sleep, pause and retry for about
# 25 s in total on one worker, so this leaves room on a slow machine.
QUEUE_SECONDS = 120.0


def load_expectations() -> list[dict[str, Any]]:
    """The entries of ``corpus_expectations.yaml``, in file order."""
    entries: list[dict[str, Any]] = yaml.safe_load(EXPECTATIONS.read_text(encoding="utf-8"))
    return entries


def runnable(entry: dict[str, Any]) -> bool:
    """Whether the flow is started on its own (else it is only stored)."""
    return not entry.get("not_standalone")


def cases() -> list[Any]:
    """One pytest param per runnable flow, xfail(strict) where a failure is known."""
    params = []
    for entry in load_expectations():
        if not runnable(entry):
            continue
        marks = []
        if entry.get("known_failure"):
            marks.append(pytest.mark.xfail(strict=True, reason=entry["known_failure"]))
        params.append(pytest.param(entry, id=entry["file"], marks=marks))
    return params


@dataclass
class CorpusServer:
    """The shared server and what the module fixture did with each file."""

    client: TestClient
    seed: int
    deadline: float
    refused: dict[str, str] = field(default_factory=dict)  # file → why storing failed
    executions: dict[str, str] = field(default_factory=dict)  # file → execution id
    rejected: dict[str, str] = field(default_factory=dict)  # file → why starting failed


def _empty(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(scope="module")
def server(_database: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorpusServer]:
    """Store every corpus flow, then queue every runnable one in a shuffled order."""
    seed = int(os.environ.get("FLOWPLANE_CORPUS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"corpus run order: FLOWPLANE_CORPUS_SEED={seed}")  # noqa: T201 - shown on failure
    _empty(_database)
    settings = Settings(
        database_url=str(_database.url),
        data_dir=tmp_path_factory.mktemp("corpus-server"),
        poll_sources=False,
        scheduler=False,
        workers=1,
        lease_seconds=3,
        admin_token=ADMIN_TOKEN,
    )
    app = create_app(settings, engine=_database)
    entries = load_expectations()
    with TestClient(app, headers=bearer(ADMIN_TOKEN)) as client:
        state = CorpusServer(client=client, seed=seed, deadline=0.0)
        # Subflows and listeners must exist before anything runs, so all are stored first.
        for entry in entries:
            _store(state, entry["file"])
        order = [entry for entry in entries if runnable(entry)]
        random.Random(seed).shuffle(order)  # noqa: S311 - an order to replay, not a secret
        state.deadline = time.monotonic() + QUEUE_SECONDS
        for entry in order:
            _start(state, entry)
        yield state
    _empty(_database)


def _store(state: CorpusServer, name: str) -> None:
    source = (CORPUS / name).read_text(encoding="utf-8")
    try:
        flow = validate_flow(source, file=name)
    except InvalidFlowError as exc:
        state.refused[name] = "; ".join(p.message for p in exc.problems)
        return
    response = state.client.put(
        f"/api/v1/flows/{flow.namespace}/{flow.id}", json={"content": source}
    )
    if response.status_code not in {200, 201}:
        state.refused[name] = f"HTTP {response.status_code}: {response.text}"


def _start(state: CorpusServer, entry: dict[str, Any]) -> None:
    name = entry["file"]
    if name in state.refused:
        return
    flow = validate_flow((CORPUS / name).read_text(encoding="utf-8"), file=name)
    response = state.client.post(
        f"/api/v1/executions/{flow.namespace}/{flow.id}",
        json={"inputs": entry.get("inputs") or {}},
    )
    if response.status_code == 201:
        state.executions[name] = response.json()["id"]
    else:
        state.rejected[name] = f"HTTP {response.status_code}: {response.text}"


def _wait(state: CorpusServer, execution_id: str, expected: str) -> dict[str, Any]:
    """The execution once it ends, or stops at the pause it is expected to stop at."""
    body: dict[str, Any] = {}
    while time.monotonic() < state.deadline:
        body = state.client.get(f"/api/v1/executions/{execution_id}").json()
        if body["state"] in STOPPED or (body["state"] == "PAUSED" and expected == "PAUSED"):
            return body
        time.sleep(0.1)
    return body


def _first_error(state: CorpusServer, execution_id: str) -> str:
    lines = state.client.get(f"/api/v1/executions/{execution_id}/logs").json()
    errors = [line["message"] for line in lines if line["level"] in {"ERROR", "CRITICAL"}]
    return errors[0] if errors else "(no ERROR log line)"


@pytest.mark.parametrize("entry", cases())
def test_corpus_flow_ends_as_kestra_tests_assert(
    server: CorpusServer, entry: dict[str, Any]
) -> None:
    name, expected = entry["file"], entry["state"]
    assert name not in server.refused, f"{name} was refused: {server.refused[name]}"
    assert name not in server.rejected, f"{name} could not start: {server.rejected[name]}"
    execution = _wait(server, server.executions[name], expected)
    assert execution["state"] == expected, (
        f"{name}: ended {execution['state']}, Kestra's {entry['source']} expects {expected}; "
        f"first error: {_first_error(server, execution['id'])} "
        f"(FLOWPLANE_CORPUS_SEED={server.seed})"
    )


def test_every_corpus_file_has_one_expectation() -> None:
    files = sorted(path.name for path in CORPUS.glob("*.y*ml"))
    entries = load_expectations()
    assert sorted(entry["file"] for entry in entries) == files
    assert len(files) == 95
    for entry in entries:
        assert entry.get("source"), entry["file"]
        assert (entry["state"] is None) == bool(entry.get("not_standalone")), entry["file"]
