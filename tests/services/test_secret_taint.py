"""Values that came from ``secret()`` stay secret through kv.Set/kv.Get, state and Labels."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from controlplane.services.sealing import is_sealed
from controlplane.store.tables import KvEntryRow
from tests.services.test_engine import logs, put_flow, run

NS = "platform.ops"
VALUE = "kv-Sup3rS3cret-hunter2"
DIGEST = hashlib.sha256(VALUE.encode()).hexdigest()[:16]

SET_FLOW = f"""\
id: keep
namespace: {NS}
tasks:
  - {{id: plain, type: kv.Set, key: plain, value: "not secret"}}
  - {{id: token, type: kv.Set, key: token, value: "Bearer {{{{ secret('API_TOKEN') }}}}"}}
  - id: nested
    type: kv.Set
    key: nested
    value: {{user: ops, password: "{{{{ secret('API_TOKEN') }}}}"}}
  - id: state
    type: state.Set
    name: creds
    namespace: true
    data: {{password: "{{{{ secret('API_TOKEN') }}}}"}}
"""

# A later run reads the keys back: the task proves it got the clear value by its
# digest, so the value appears in no flow source, log or output.
GET_FLOW = f"""\
id: use
namespace: {NS}
tasks:
  - {{id: get, type: kv.Get, key: token}}
  - {{id: nested, type: kv.Get, key: nested}}
  - {{id: plain, type: kv.Get, key: plain}}
  - {{id: state, type: state.Get, name: creds, namespace: true}}
  - id: check
    type: shell.Commands
    env:
      TOKEN: "{{{{ outputs.get.value }}}}"
      PASSWORD: "{{{{ outputs.nested.value.password }}}}"
      STATE: "{{{{ outputs.state.data.password }}}}"
    commands:
      - 'echo "token is $TOKEN"'
      - 'test "$TOKEN" = "Bearer $PASSWORD" && test "$STATE" = "$PASSWORD" && echo same'
      - 'test "$(printf %s "$PASSWORD" | sha256sum | cut -c1-16)" = "{DIGEST}" && echo matched'
"""


def _dump(engine: Engine, *tables: str) -> str:
    with engine.connect() as connection:
        return "\n".join(
            str(connection.execute(text(f"SELECT * FROM {table}")).fetchall())  # noqa: S608
            for table in tables
        )


@pytest.fixture
def secret(client: TestClient) -> None:
    url = f"/api/v1/namespaces/{NS}/secrets/API_TOKEN"
    assert client.put(url, json={"value": VALUE}).status_code == 201


@pytest.mark.usefixtures("secret")
def test_kv_set_seals_a_secret_and_a_later_run_reads_it(client: TestClient, engine: Engine) -> None:
    put_flow(client, SET_FLOW)
    stored = run(client, NS, "keep")
    assert stored["state"] == "SUCCESS", logs(client, stored["id"])
    assert VALUE not in _dump(engine, "kv_entries")
    with Session(engine) as session:
        token = session.get(KvEntryRow, (NS, "token"))
        nested = session.get(KvEntryRow, (NS, "nested"))
        plain = session.get(KvEntryRow, (NS, "plain"))
        assert token is not None
        assert nested is not None
        assert plain is not None
        assert is_sealed(token.value)
        assert nested.value["user"] == "ops"  # only the string that carries the secret
        assert is_sealed(nested.value["password"])
        assert plain.value == "not secret"
    assert any("(secret, sealed)" in line for line in logs(client, stored["id"]))

    put_flow(client, GET_FLOW)
    used = run(client, NS, "use")
    assert used["state"] == "SUCCESS", logs(client, used["id"])
    lines = logs(client, used["id"])
    assert "same" in lines
    assert "matched" in lines
    # The opened value is masked like a secret() value, in logs and in stored outputs.
    assert "token is ******" in lines
    runs = {r["task_id"]: r for r in used["task_runs"]}
    assert runs["plain"]["outputs"] == {"value": "not secret"}
    everything = str(used) + str(lines) + _dump(engine, "task_runs", "logs", "executions")
    assert VALUE not in everything


@pytest.mark.usefixtures("secret")
def test_labels_refuse_a_secret_value(client: TestClient, engine: Engine) -> None:
    source = f"""\
id: tag
namespace: {NS}
tasks:
  - {{id: ok, type: Labels, labels: {{team: ops}}}}
  - {{id: leak, type: Labels, labels: {{token: "t-{{{{ secret('API_TOKEN') }}}}"}}}}
"""
    put_flow(client, source)
    execution = run(client, NS, "tag")
    assert execution["state"] == "FAILED"
    assert execution["labels"].get("team") == "ops"
    assert "token" not in execution["labels"]
    assert any(
        "labels cannot carry secret values (token)" in line
        for line in logs(client, execution["id"])
    )
    assert VALUE not in _dump(engine, "executions", "logs", "task_runs")


def test_kv_set_refuses_a_forged_sealed_value(client: TestClient, engine: Engine) -> None:
    # Otherwise kv.Get would open any ciphertext sealed to the server (say, a
    # secrets/<namespace>.age file copied from the flows repo).
    source = f"""\
id: forge
namespace: {NS}
tasks:
  - {{id: set, type: kv.Set, key: forged, value: {{sealed: YWdlLWVuY3J5cHRpb24=}}}}
"""
    put_flow(client, source)
    execution = run(client, NS, "forge")
    assert execution["state"] == "FAILED"
    assert any("shaped like a sealed value" in line for line in logs(client, execution["id"]))
    with Session(engine) as session:
        assert session.get(KvEntryRow, (NS, "forged")) is None
