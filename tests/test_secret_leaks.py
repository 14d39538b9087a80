"""Secret values appear nowhere Flowplane writes: logs, API responses, plans, diffs, audit.

One real server process runs a flow that reads a secret set through the API, a
secret from a Git ``.age`` file, a SECRET input and a SECRET resume input. Then
everything the server produced is collected and searched for each value.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from sqlalchemy import text

from controlplane.services.gitops.secret_files import encrypt_secret_map
from controlplane.services.secrets import load_keyring
from controlplane.store.db import create_engine
from tests.services.test_gitops import commit, git
from tests.test_cli import ADMIN, api, server_process

VALUES = {
    "api": "api-secret-7Hq2",
    "git": "git-secret-Zp41",
    "input": "input-secret-Lm88",
    "resume": "resume-secret-Vv03",
    "webhook": "webhook-secret-Kk19",
}
FLOW = """\
id: leaky
namespace: team.sec
inputs:
  - {id: pw, type: SECRET}
tasks:
  - id: log
    type: Log
    message: "api={{ secret('API_KEY') }} git={{ secret('GIT_KEY') }} pw={{ inputs.pw }}"
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo "shell sees {{ secret('GIT_KEY') }}"
  - id: gate
    type: Pause
    onResume:
      - {id: otp, type: SECRET}
  - id: after
    type: Log
    message: "otp={{ outputs.gate.onResume.otp }}"
"""


def wait_state(client: httpx.Client, execution_id: str, states: set[str]) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = client.get(f"/api/v1/executions/{execution_id}").json()
        if run["state"] in states:
            return run
        time.sleep(0.1)
    raise AssertionError(f"execution stayed {run['state']}")


def read_everything(client: httpx.Client, run_id: str) -> list[str]:
    """Every read endpoint's answer, as text."""
    bodies = []
    for path in [
        "/api/v1/flows",
        "/api/v1/flows/team.sec/leaky",
        "/api/v1/flows/team.sec/leaky/revisions",
        "/api/v1/namespaces/team.sec/secrets",
        "/api/v1/sources",
        "/api/v1/sources/flows",
        "/api/v1/sources/flows/drift",
        "/api/v1/plans",
        "/api/v1/executions",
        f"/api/v1/executions/{run_id}",
        f"/api/v1/executions/{run_id}/logs",
        f"/api/v1/executions/{run_id}/logs/follow",
        f"/api/v1/executions/{run_id}/lineage",
        "/api/v1/audit",
        "/api/v1/tokens",
        "/metrics",
    ]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        bodies.append(response.text)
    return bodies


def test_no_secret_value_in_anything_the_server_produces(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    recipient = load_keyring(data_dir).recipient  # the identity the server will load
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    sealed = encrypt_secret_map({"GIT_KEY": VALUES["git"]}, recipient)
    (repo / "secrets").mkdir()
    (repo / "secrets" / "team.sec.age").write_bytes(sealed)
    commit(repo, {"flows/team.sec/leaky.yaml": FLOW}, "Add leaky flow")

    bodies: list[str] = []
    env = {"FLOWPLANE_LOG_LEVEL": "DEBUG"}
    with server_process(data_dir, "--workers", "1", env_extra=env) as url, api(url) as client:
        client.put("/api/v1/namespaces/team.sec", json={"description": "sec"})
        put = client.put(
            "/api/v1/namespaces/team.sec/secrets/API_KEY", json={"value": VALUES["api"]}
        )
        bodies.append(put.text)
        source = {
            "url": f"file://{repo}",
            "approval": "approval",
            "webhook_secret": VALUES["webhook"],
        }
        bodies.append(client.put("/api/v1/sources/flows", json=source).text)
        plan = client.post("/api/v1/sources/flows/sync")
        bodies.append(plan.text)
        assert plan.json()["status"] == "pending", plan.text
        created = client.post("/api/v1/tokens", json={"name": "rita", "role": "reviewer"}).json()
        rita = {"Authorization": f"Bearer {created['token']}"}
        approved = client.post(
            f"/api/v1/plans/{plan.json()['id']}/approve", json={"comment": "ok"}, headers=rita
        )
        assert approved.json()["status"] == "applied", approved.text
        bodies.append(approved.text)

        run = client.post(
            "/api/v1/executions/team.sec/leaky", json={"inputs": {"pw": VALUES["input"]}}
        ).json()
        wait_state(client, run["id"], {"PAUSED"})
        resumed = client.post(
            f"/api/v1/executions/{run['id']}/resume",
            json={"inputs": {"otp": VALUES["resume"]}},
            headers=rita,
        )
        assert resumed.status_code == 200, resumed.text
        final = wait_state(client, run["id"], {"SUCCESS", "FAILED", "WARNING"})
        assert final["state"] == "SUCCESS", final
        logs = client.get(f"/api/v1/executions/{run['id']}/logs").json()
        assert any("shell sees ******" in line["message"] for line in logs), logs

        bodies += read_everything(client, run["id"])

    logs_text = "".join(p.read_text() for p in tmp_path.glob("server-*.log"))
    assert "execution_ended" in logs_text or "request" in logs_text.lower()
    engine = create_engine(f"sqlite:///{data_dir / 'flowplane.db'}")
    try:
        with engine.connect() as connection:
            stored = {
                table: str(connection.execute(text(f"SELECT * FROM {table}")).all())  # noqa: S608
                for table in [
                    "plans",
                    "logs",
                    "audit_events",
                    "flow_revisions",
                    "git_sources",
                    "executions",
                    "task_runs",
                ]
            }
    finally:
        engine.dispose()

    produced = {"server log": logs_text, "api": "\n".join(bodies), **stored}
    leaks = [
        f"{name} value in {where}"
        for name, value in VALUES.items()
        for where, content in produced.items()
        if value in content
    ]
    assert leaks == [], leaks
    assert ADMIN not in logs_text
    assert created["token"] not in logs_text + stored["audit_events"]
