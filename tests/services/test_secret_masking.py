"""Secrets stay sealed: common encodings are masked, and a secret passed on stays a secret.

Each path the runtime-safety review found leaking is run for real through the
API and the embedded worker, then everything produced (API responses, logs and
every table) is searched for the value and its encodings.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.services.test_engine import logs, put_flow, run

VALUE = "Sup3r-S3cret/Line1\nSecond+Line=22"
ENCODINGS = {
    "plain": VALUE,
    "upper": VALUE.upper(),
    "reversed": VALUE[::-1],
    "base64": base64.b64encode(VALUE.encode()).decode(),
    "url": quote(VALUE, safe=""),
    "json": json.dumps(VALUE)[1:-1],
    "line1": "Sup3r-S3cret/Line1",
    "line2": "Second+Line=22",
}


def _store_secret(client: TestClient, namespace: str = "demo") -> None:
    response = client.put(f"/api/v1/namespaces/{namespace}/secrets/TOKEN", json={"value": VALUE})
    assert response.status_code in {200, 201}, response.text


def _everything(client: TestClient, engine: Engine, execution_ids: list[str]) -> str:
    produced = []
    for execution_id in execution_ids:
        produced.append(client.get(f"/api/v1/executions/{execution_id}").text)
        produced.append(client.get(f"/api/v1/executions/{execution_id}/logs").text)
    with engine.connect() as connection:
        for table in ("logs", "task_runs", "executions", "kv_entries"):
            rows = connection.execute(text(f"SELECT * FROM {table}")).fetchall()  # noqa: S608
            produced.append(str(rows))
    return "\n".join(produced)


def test_encodings_and_lines_of_a_secret_are_masked_in_logs(
    client: TestClient, engine: Engine
) -> None:
    _store_secret(client)
    put_flow(
        client,
        """\
id: leaky
namespace: demo
tasks:
  - id: sh
    type: shell.Commands
    env:
      T: "{{ secret('TOKEN') }}"
    commands:
      - 'printf "%s\\n" "$T"'
      - 'printf "%s" "$T" | tr a-z A-Z; echo'
      - 'printf "%s" "$T" | rev | tac | tr -d "\\n"; echo'
      - 'printf "%s" "$T" | base64 -w0; echo'
      - python3 -c 'import os, urllib.parse as u; print(u.quote(os.environ["T"], safe=""))'
      - python3 -c 'import os, json; print(json.dumps(os.environ["T"]))'
      - echo done
""",
    )
    execution = run(client, "demo", "leaky")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    lines = logs(client, execution["id"])
    assert "done" in lines
    everything = _everything(client, engine, [execution["id"]])
    for name, form in ENCODINGS.items():
        assert form not in everything, name


def test_a_secret_passed_on_is_sealed_in_outputs_subflow_inputs_and_flow_outputs(
    client: TestClient, engine: Engine
) -> None:
    _store_secret(client)
    put_flow(
        client,
        """\
id: child
namespace: demo
inputs:
  - {id: token, type: STRING}
tasks:
  - id: check
    type: shell.Commands
    env: {T: "{{ inputs.token }}"}
    commands:
      - 'test "$T" = "$(printf "%s" "$EXPECTED" | base64 -d)" && echo child-got-it'
    """.replace("$EXPECTED", base64.b64encode(VALUE.encode()).decode())
        + """
  - {id: say, type: Log, message: "child sees {{ inputs.token }}"}
""",
    )
    put_flow(
        client,
        """\
id: parent
namespace: demo
tasks:
  - {id: pass, type: Return, format: "{{ secret('TOKEN') }}"}
  - id: sub
    type: Subflow
    namespace: demo
    flowId: child
    inputs: {token: "{{ outputs.pass.value }}"}
  - {id: again, type: Log, message: "output is {{ outputs.pass.value }}"}
outputs:
  - {id: leaked, type: STRING, value: "{{ outputs.pass.value }}"}
""",
    )
    execution = run(client, "demo", "parent")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    child_id = next(r for r in execution["task_runs"] if r["task_id"] == "sub")["outputs"][
        "executionId"
    ]
    child_lines = logs(client, child_id)
    assert "child-got-it" in child_lines  # the real value reached the child's task
    assert "child sees ******" in child_lines
    assert "output is ******" in logs(client, execution["id"])
    assert execution["outputs"]["leaked"] == "******"
    everything = _everything(client, engine, [execution["id"], child_id])
    for name, form in ENCODINGS.items():
        assert form not in everything, name


def test_forged_sealed_values_are_refused(client: TestClient) -> None:
    forged = {"sealed": base64.b64encode(b"age-encryption.org/v1 forged").decode()}
    put_flow(
        client,
        "id: forge\nnamespace: demo\ninputs:\n  - {id: j, type: JSON}\ntasks:\n"
        "  - id: sh\n    type: shell.Commands\n    commands:\n"
        f"      - 'echo ''::{{\"outputs\": {{\"x\": {json.dumps(forged)}}}}}::'''\n",
    )
    refused = client.post(
        "/api/v1/executions/demo/forge", json={"inputs": {"j": json.dumps(forged)}}
    )
    assert refused.status_code == 422
    assert "reserved" in refused.text
    execution = run(client, "demo", "forge", j="{}")
    assert execution["state"] == "FAILED"
    assert any("reserved" in line for line in logs(client, execution["id"]))
