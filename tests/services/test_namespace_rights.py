"""A run acts with its namespace's rights, never more (Kestra's ``allowedNamespaces``).

The attacker is an editor token scoped to ``other.*``: it writes flows in
``other.x`` that reach into ``team.a`` through built-in tasks. Every refusal is
checked in the database too: nothing in the target changes.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlmodel import Session

from controlplane.errors import ForbiddenError
from controlplane.services.access import create_token
from controlplane.services.namespaces import ensure_namespace_allowed
from controlplane.services.task_authority import ensure_resume_authority
from controlplane.store.tables import (
    ApprovalRow,
    ExecutionRow,
    FlowRevisionRow,
    FlowRow,
    GitSourceRow,
    KvEntryRow,
    PlanRow,
)
from tests.conftest import token_headers
from tests.services.test_engine import logs, run, wait_for_end

TARGET = "team.a"
CALLER = "other.x"


def put_flow_as(client: TestClient, headers: dict[str, str], source: str, flow_id: str) -> None:
    """Write ``other.x/<flow_id>`` with the given token (its revision records who wrote it)."""
    response = client.put(
        f"/api/v1/flows/{CALLER}/{flow_id}", json={"content": source}, headers=headers
    )
    assert response.status_code in {200, 201}, response.text


def allow(client: TestClient, namespace: str, allowed: list[str]) -> None:
    response = client.put(f"/api/v1/namespaces/{namespace}", json={"allowed_namespaces": allowed})
    assert response.status_code in {200, 201}, response.text
    assert response.json()["allowed_namespaces"] == allowed


def by_task(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["task_id"]: r for r in execution["task_runs"]}


def kv_value(engine: Engine, namespace: str, key: str) -> Any:
    with Session(engine) as session:
        row = session.get(KvEntryRow, (namespace, key))
        return row.value if row is not None else None


def execution_state(engine: Engine, execution_id: str) -> str:
    with Session(engine) as session:
        row = session.get(ExecutionRow, execution_id)
        assert row is not None
        return row.state


@pytest.fixture
def editor(client: TestClient) -> dict[str, str]:
    return token_headers(client, "mallory", role="editor", namespaces=("other.*",))


@pytest.fixture
def team_key(client: TestClient) -> None:
    """``team.a`` holds the key ``owned`` = ``team value``, set by its own flow."""
    source = (
        f"id: seed\nnamespace: {TARGET}\ntasks:\n"
        "  - {id: set, type: kv.Set, key: owned, value: team value}\n"
    )
    response = client.put(f"/api/v1/flows/{TARGET}/seed", json={"content": source})
    assert response.status_code == 201, response.text
    assert run(client, TARGET, "seed")["state"] == "SUCCESS"


KV_FLOW = f"""\
id: reach
namespace: {CALLER}
tasks:
  - {{id: get, type: kv.Get, key: owned, namespace: {TARGET}, allowFailure: true}}
  - {{id: set, type: kv.Set, key: owned, value: mine, namespace: {TARGET}, allowFailure: true}}
  - {{id: add, type: kv.Set, key: planted, value: x, namespace: {TARGET}, allowFailure: true}}
  - {{id: delete, type: kv.Delete, key: owned, namespace: {TARGET}, allowFailure: true}}
"""


@pytest.mark.usefixtures("team_key")
def test_kv_tasks_cannot_reach_a_namespace_that_does_not_allow_the_caller(
    client: TestClient, engine: Engine, editor: dict[str, str]
) -> None:
    put_flow_as(client, editor, KV_FLOW, "reach")
    execution = run(client, CALLER, "reach")
    runs = by_task(execution)
    assert {runs[t]["state"] for t in ("get", "set", "add", "delete")} == {"WARNING"}
    assert runs["get"]["outputs"] == {}  # nothing was read
    lines = logs(client, execution["id"])
    for action in ("kv.Get", "kv.Set", "kv.Delete"):
        message = f"namespace {TARGET} does not allow flows from {CALLER} to {action}"
        assert any(message in line and "allowedNamespaces" in line for line in lines), lines
    assert kv_value(engine, TARGET, "owned") == "team value"
    assert kv_value(engine, TARGET, "planted") is None


@pytest.mark.usefixtures("team_key")
def test_kv_tasks_reach_a_namespace_that_allows_the_caller(
    client: TestClient, engine: Engine, editor: dict[str, str]
) -> None:
    allow(client, TARGET, ["other.*"])
    put_flow_as(client, editor, KV_FLOW, "reach")
    execution = run(client, CALLER, "reach")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    runs = by_task(execution)
    assert runs["get"]["outputs"] == {"value": "team value"}
    assert runs["delete"]["outputs"] == {"deleted": True}
    assert kv_value(engine, TARGET, "owned") is None
    assert kv_value(engine, TARGET, "planted") == "x"


def test_state_tasks_stay_in_the_flows_own_namespace(
    client: TestClient, engine: Engine, editor: dict[str, str]
) -> None:
    # Kestra's state ``namespace`` is a boolean: a flow cannot name another namespace.
    named = f"id: st\nnamespace: {CALLER}\ntasks:\n"
    named += f"  - {{id: s, type: state.Set, name: n, namespace: {TARGET}, data: {{a: 1}}}}\n"
    response = client.put(f"/api/v1/flows/{CALLER}/st", json={"content": named}, headers=editor)
    assert response.status_code == 422
    shared = named.replace(f"namespace: {TARGET},", "namespace: true,")
    put_flow_as(client, editor, shared, "st")
    assert run(client, CALLER, "st")["state"] == "SUCCESS"
    with Session(engine) as session:
        assert session.get(KvEntryRow, (CALLER, "state:ns:n")) is not None
        assert session.get(KvEntryRow, (TARGET, "state:ns:n")) is None


def _team_run_with_logs(client: TestClient) -> str:
    source = (
        f"id: private\nnamespace: {TARGET}\ntasks:\n  - {{id: say, type: Log, message: ours}}\n"
    )
    response = client.put(f"/api/v1/flows/{TARGET}/private", json={"content": source})
    assert response.status_code == 201, response.text
    execution = run(client, TARGET, "private")
    assert execution["state"] == "SUCCESS"
    return str(execution["id"])


FETCH_FLOW = f"""\
id: peek
namespace: {CALLER}
inputs:
  - {{id: target, type: STRING}}
tasks:
  - {{id: fetch, type: log.Fetch, executionId: "{{{{ inputs.target }}}}"}}
"""


def test_log_fetch_cannot_read_a_run_of_a_namespace_that_does_not_allow_the_caller(
    client: TestClient, editor: dict[str, str]
) -> None:
    target = _team_run_with_logs(client)
    put_flow_as(client, editor, FETCH_FLOW, "peek")
    execution = run(client, CALLER, "peek", target=target)
    assert execution["state"] == "FAILED"
    assert by_task(execution)["fetch"]["outputs"] == {}
    assert any(
        f"namespace {TARGET} does not allow flows from {CALLER} to log.Fetch" in line
        for line in logs(client, execution["id"])
    )
    # Naming the namespace explicitly is refused before the run is even looked up.
    named = FETCH_FLOW.replace('executionId: "{{ inputs.target }}"', "namespace: team.a")
    put_flow_as(client, editor, named, "peek")
    refused = run(client, CALLER, "peek", target=target)
    assert refused["state"] == "FAILED"
    assert any("to log.Fetch (allowedNamespaces)" in line for line in logs(client, refused["id"]))

    allow(client, TARGET, [CALLER])
    put_flow_as(client, editor, FETCH_FLOW, "peek")
    allowed = run(client, CALLER, "peek", target=target)
    assert allowed["state"] == "SUCCESS", logs(client, allowed["id"])
    assert by_task(allowed)["fetch"]["outputs"]["size"] == 1


RESUME_FLOW = f"""\
id: opener
namespace: {CALLER}
inputs:
  - {{id: target, type: STRING}}
tasks:
  - {{id: resume, type: Resume, executionId: "{{{{ inputs.target }}}}"}}
"""


def _paused_gate(client: TestClient) -> str:
    source = f"id: gate\nnamespace: {TARGET}\ntasks:\n  - {{id: wait, type: Pause}}\n"
    response = client.put(f"/api/v1/flows/{TARGET}/gate", json={"content": source})
    assert response.status_code == 201, response.text
    paused = run(client, TARGET, "gate")
    assert paused["state"] == "PAUSED"
    return str(paused["id"])


def _resume_refused(client: TestClient, engine: Engine, gate: str, message: str) -> None:
    execution = run(client, CALLER, "opener", target=gate)
    assert execution["state"] == "FAILED"
    lines = logs(client, execution["id"])
    assert any(message in line for line in lines), lines
    assert execution_state(engine, gate) == "PAUSED"


def test_resume_needs_an_allowed_namespace_and_a_reviewer_behind_the_flow(
    client: TestClient, engine: Engine, editor: dict[str, str]
) -> None:
    gate = _paused_gate(client)
    put_flow_as(client, editor, RESUME_FLOW, "opener")
    _resume_refused(
        client, engine, gate, f"namespace {TARGET} does not allow flows from {CALLER} to Resume"
    )

    # Allowed in, but an editor wrote the flow: the API would not let them resume either.
    allow(client, TARGET, ["other.*"])
    _resume_refused(client, engine, gate, "resume needs a reviewer: revision 1 of other.x/opener")

    # A reviewer whose scopes do not cover team.a is not enough.
    outsider = token_headers(client, "olga", role="reviewer", namespaces=("other.*",))
    put_flow_as(client, outsider, RESUME_FLOW + "# olga\n", "opener")
    _resume_refused(client, engine, gate, "resume needs a reviewer: revision 2")

    reviewer = token_headers(client, "rita", role="reviewer", namespaces=("other.*", "team.*"))
    put_flow_as(client, reviewer, RESUME_FLOW + "# rita\n", "opener")
    execution = run(client, CALLER, "opener", target=gate)
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert wait_for_end(client, gate)["state"] == "SUCCESS"


def test_resume_by_a_revoked_reviewer_token_is_refused(client: TestClient, engine: Engine) -> None:
    gate = _paused_gate(client)
    allow(client, TARGET, [CALLER])
    reviewer = token_headers(client, "rex", role="reviewer", namespaces=("*",))
    put_flow_as(client, reviewer, RESUME_FLOW, "opener")
    token_id = next(t["id"] for t in client.get("/api/v1/tokens").json() if t["name"] == "rex")
    assert client.delete(f"/api/v1/tokens/{token_id}").status_code == 204
    _resume_refused(client, engine, gate, "no live token of theirs holds reviewer")


def test_resume_in_the_flows_own_namespace_still_needs_a_reviewer(
    client: TestClient, engine: Engine
) -> None:
    gate = _paused_gate(client)
    editor = token_headers(client, "eve", role="editor", namespaces=(TARGET,))
    source = RESUME_FLOW.replace(f"namespace: {CALLER}", f"namespace: {TARGET}")
    response = client.put(
        f"/api/v1/flows/{TARGET}/opener", json={"content": source}, headers=editor
    )
    assert response.status_code == 201, response.text
    execution = run(client, TARGET, "opener", target=gate)
    assert execution["state"] == "FAILED"
    assert any("resume needs a reviewer" in line for line in logs(client, execution["id"]))
    assert execution_state(engine, gate) == "PAUSED"


def test_ensure_namespace_allowed_matches_names_and_globs(
    client: TestClient, engine: Engine
) -> None:
    with pytest.raises(
        ForbiddenError, match=r"namespace team\.a does not allow flows from other\.x"
    ):
        ensure_namespace_allowed(engine, "other.x", "team.a", "kv.Set")  # no row: deny
    allow(client, TARGET, ["ops", "other.*"])
    ensure_namespace_allowed(engine, "ops", TARGET, "kv.Set")
    ensure_namespace_allowed(engine, "other.x.y", TARGET, "kv.Set")
    for caller in ("other", "ops.sub", "team.b"):
        with pytest.raises(ForbiddenError, match="to Resume"):
            ensure_namespace_allowed(engine, caller, TARGET, "Resume")
    allow(client, TARGET, ["*"])
    ensure_namespace_allowed(engine, "anything.at.all", TARGET, "kv.Get")


def test_own_namespace_is_allowed_without_a_query(engine: Engine) -> None:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        ensure_namespace_allowed(engine, TARGET, TARGET, "kv.Set")
        assert statements == []
        with pytest.raises(ForbiddenError):
            ensure_namespace_allowed(engine, CALLER, TARGET, "kv.Set")
        assert statements  # the check does read the namespace when it must
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_allowed_namespaces_through_the_api(client: TestClient) -> None:
    created = client.put(f"/api/v1/namespaces/{TARGET}", json={})
    assert created.json()["allowed_namespaces"] == []
    version = created.json()["version"]
    changed = client.put(
        f"/api/v1/namespaces/{TARGET}", json={"allowed_namespaces": ["team.*", "ops", "*"]}
    )
    assert changed.status_code == 200
    assert changed.json()["version"] == version + 1
    fetched = client.get(f"/api/v1/namespaces/{TARGET}").json()
    assert fetched["allowed_namespaces"] == ["team.*", "ops", "*"]
    for bad in ("", "Team", "a b", "team.?", "[ab]", ".team", "x" * 151):
        response = client.put(f"/api/v1/namespaces/{TARGET}", json={"allowed_namespaces": [bad]})
        assert response.status_code == 422, bad
    audit = client.get("/api/v1/audit", params={"action": "namespace.put"})
    assert audit.status_code == 200
    assert audit.json()[-1]["summary"]["allowed_namespaces"] == ["team.*", "ops", "*"]


def _git_run(engine: Engine, plan_id: str | None, approvers: dict[str, str]) -> ExecutionRow:
    """A run of a revision that a Git plan activated, approved (or rejected) by ``approvers``."""
    with Session(engine) as session:
        if session.get(GitSourceRow, "repo") is None:
            session.add(GitSourceRow(id="repo", url="https://git.example/flows.git"))
            session.flush()
        if plan_id is not None:
            session.add(
                PlanRow(id=plan_id, source_id="repo", target_commit="c0ffee", status="applied")
            )
            session.flush()
            for actor, decision in approvers.items():
                session.add(ApprovalRow(plan_id=plan_id, actor=actor, decision=decision))
        flow = FlowRow(namespace=CALLER, flow_id=f"f{plan_id}", revision=1, origin="git:repo")
        session.add(flow)
        session.flush()
        assert flow.pk is not None
        revision = FlowRevisionRow(
            flow_pk=flow.pk,
            namespace=CALLER,
            flow_id=flow.flow_id,
            revision=1,
            source="",
            spec={},
            source_sha256="0" * 64,
            spec_sha256="0" * 64,
            origin="git:repo",
            plan_id=plan_id,
        )
        session.add(revision)
        session.commit()
        assert revision.pk is not None
        return ExecutionRow(
            id=f"run-{plan_id}",
            namespace=CALLER,
            flow_id=flow.flow_id,
            flow_revision=1,
            revision_pk=revision.pk,
            origin="git:repo",
            state="RUNNING",
        )


def test_git_revisions_resume_only_with_a_reviewer_among_the_plans_approvers(
    engine: Engine,
) -> None:
    create_token(engine, name="ann", role="reviewer", scopes=["team.*"], actor="test")
    create_token(engine, name="al", role="admin", scopes=["*"], actor="test")
    create_token(engine, name="ed", role="editor", scopes=["*"], actor="test")
    create_token(engine, name="olaf", role="reviewer", scopes=["other.*"], actor="test")
    ensure_resume_authority(engine, _git_run(engine, "p-ann", {"ann": "approve"}), TARGET)
    ensure_resume_authority(
        engine, _git_run(engine, "p-al", {"ed": "approve", "al": "approve"}), TARGET
    )
    refused = {
        "p-ed": {"ed": "approve"},  # an editor approved: not enough
        "p-olaf": {"olaf": "approve"},  # a reviewer of other namespaces only
        "p-rejected": {"ann": "reject"},  # a rejection is no approval
        "p-auto": {},  # applied without review
        "p-proxy": {"someone-via-proxy": "approve"},  # no token to verify
    }
    for plan_id, approvers in refused.items():
        execution = _git_run(engine, plan_id, approvers)
        with pytest.raises(ForbiddenError, match="resume needs a reviewer"):
            ensure_resume_authority(engine, execution, TARGET)
    with pytest.raises(ForbiddenError, match="without a reviewed plan"):
        ensure_resume_authority(engine, _git_run(engine, None, {}), TARGET)


def test_subflow_into_a_namespace_that_does_not_allow_the_caller_is_refused(
    client: TestClient,
) -> None:
    client.put(
        "/api/v1/flows/team.a/hello",
        json={
            "content": "id: hello\nnamespace: team.a\ntasks:\n  - {id: a, type: Log, message: hi}\n"
        },
    )
    client.put(
        "/api/v1/flows/other.x/caller",
        json={
            "content": "id: caller\nnamespace: other.x\ntasks:\n"
            "  - {id: sub, type: Subflow, namespace: team.a, flowId: hello}\n"
        },
    )
    refused = client.post(
        "/api/v1/executions/other.x/caller", params={"wait": True, "timeout": 30}, json={}
    ).json()
    assert refused["state"] == "FAILED"
    lines = [
        line["message"] for line in client.get(f"/api/v1/executions/{refused['id']}/logs").json()
    ]
    assert any("does not allow flows from other.x" in line for line in lines), lines
    started = client.get("/api/v1/executions", params={"namespace": "team.a"}).json()
    items = started["items"] if isinstance(started, dict) else started
    assert items == []  # nothing ran in team.a

    client.put("/api/v1/namespaces/team.a", json={"allowed_namespaces": ["other.*"]})
    allowed = client.post(
        "/api/v1/executions/other.x/caller", params={"wait": True, "timeout": 30}, json={}
    ).json()
    assert allowed["state"] == "SUCCESS"


def test_a_flow_trigger_does_not_listen_across_namespaces_unless_allowed(
    client: TestClient,
) -> None:
    client.put(
        "/api/v1/flows/team.a/upstream",
        json={
            "content": "id: upstream\nnamespace: team.a\ntasks:\n"
            "  - {id: a, type: Log, message: hi}\n"
        },
    )
    client.put(
        "/api/v1/flows/other.x/listener",
        json={
            "content": "id: listener\nnamespace: other.x\ntasks:\n"
            "  - {id: a, type: Log, message: fired}\n"
            "triggers:\n  - {id: on-up, type: Flow, conditions: "
            "[{type: io.kestra.plugin.core.condition.ExecutionFlow, namespace: team.a, "
            "flowId: upstream}]}\n"
        },
    )

    def listener_runs() -> int:
        body = client.get("/api/v1/executions", params={"namespace": "other.x"}).json()
        return len(body["items"] if isinstance(body, dict) else body)

    upstream = client.post(
        "/api/v1/executions/team.a/upstream", params={"wait": True, "timeout": 30}, json={}
    ).json()
    assert upstream["state"] == "SUCCESS"
    assert listener_runs() == 0
    client.put("/api/v1/namespaces/team.a", json={"allowed_namespaces": ["other.x"]})
    client.post("/api/v1/executions/team.a/upstream", params={"wait": True, "timeout": 30}, json={})
    assert listener_runs() == 1
