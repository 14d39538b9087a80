"""Issue 16 "Review and operate": one test per finding, through the API on a real Git repo."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from controlplane.services.gitops import apply as apply_module
from controlplane.services.gitops.plans import decide_plan, recover_plans
from controlplane.store.tables import SQLModel
from tests.conftest import bearer, token_headers
from tests.helpers import commit, init_repo
from tests.ui.ui_harness import csrf_of

FLOW = "id: {id}\nnamespace: {ns}\ntasks:\n  - {{id: log, type: Log, message: {msg}}}\n"


def flow(ns: str = "team.a", flow_id: str = "autoflow", msg: str = "v1") -> str:
    return FLOW.format(id=flow_id, ns=ns, msg=msg)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path)


def source(client: TestClient, repo: Path, **policy: Any) -> None:
    body = {"url": f"file://{repo}", **policy}
    response = client.put("/api/v1/sources/flows", json=body)
    assert response.status_code in {200, 201}, response.text


def fingerprint(engine: Engine) -> dict[str, tuple[int, str]]:
    """Row count and a hash of every row, per table."""
    found = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            rows = sorted(repr(tuple(r)) for r in connection.execute(table.select()))
            found[table.name] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return found


# -- Honest plans ---------------------------------------------------------------------------


def test_a_prune_off_delete_is_orphaned_once_not_removed(client: TestClient, repo: Path) -> None:
    commit(
        repo,
        {"flows/team.a/autoflow.yaml": flow(), "flows/team.a/other.yaml": flow(flow_id="other")},
    )
    source(client, repo)
    assert client.post("/api/v1/sources/flows/sync").json()["status"] == "applied"
    commit(repo, {"flows/team.a/autoflow.yaml": None})
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "no_changes"
    assert "to remove" not in plan["text"].replace("0 to remove", "")
    assert plan["text"].count("team.a/autoflow") == 1
    assert "Orphaned (prune is off)" in plan["text"]
    assert "team.a/autoflow  revision 1  orphaned (prune is off)" in plan["text"]
    assert client.get("/api/v1/flows/team.a/autoflow").status_code == 200
    # A later commit does not repeat a "remove" either.
    commit(repo, {"README.md": "x"})
    later = client.post("/api/v1/sources/flows/sync").json()
    assert [c["action"] for c in later["changes"]] == ["orphan", "unchanged"]


def test_a_terraform_owned_flow_is_a_problem_or_an_explicit_take_over(
    client: TestClient, repo: Path
) -> None:
    put = client.put(
        "/api/v1/flows/team.a/autoflow",
        content=flow(msg="api"),
        headers={"Content-Type": "application/x-yaml"},
    )
    assert put.status_code == 201, put.text
    commit(repo, {"flows/team.a/autoflow.yaml": flow()})
    source(client, repo)
    refused = client.post("/api/v1/sources/flows/sync").json()
    assert refused["status"] == "failed"
    assert "is owned by api" in refused["text"]
    assert [c["action"] for c in refused["changes"]] == ["take_over"]
    assert client.get("/api/v1/flows/team.a/autoflow").json()["origin"] == "api"

    source(client, repo, take_over=True)
    commit(repo, {"README.md": "take it"})
    taken = client.post("/api/v1/sources/flows/sync").json()
    assert taken["status"] == "applied", taken
    assert "! take over team.a/autoflow from api" in taken["text"]
    assert client.get("/api/v1/flows/team.a/autoflow").json()["origin"] == "git:flows"


def test_a_stale_apply_is_refused_and_the_commit_can_be_planned_again(
    client: TestClient, repo: Path
) -> None:
    commit(repo, {"flows/team.a/autoflow.yaml": flow()})
    source(client, repo, approval="approval")
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "pending"
    # Meanwhile the flow appears through the API: the plan's basis moved.
    client.put(
        "/api/v1/flows/team.a/autoflow",
        content=flow(msg="api"),
        headers={"Content-Type": "application/x-yaml"},
    )
    stale = client.post(
        f"/api/v1/plans/{plan['id']}/approve", json={}, headers=token_headers(client, "rita")
    )
    assert stale.status_code == 409
    assert "stale" in stale.json()["message"]
    after = client.get(f"/api/v1/plans/{plan['id']}").json()
    assert after["status"] == "failed"
    assert "stale" in after["status_reason"]
    assert client.get("/api/v1/flows/team.a/autoflow").json()["origin"] == "api"
    # The same commit is planned again instead of returning the failed plan.
    again = client.post("/api/v1/sources/flows/sync").json()
    assert again["id"] != plan["id"]


def test_a_rollback_lists_only_real_secret_changes(
    client: TestClient, repo: Path, tmp_path: Path
) -> None:
    from controlplane.services.gitops.secret_files import encrypt_secret_map  # noqa: PLC0415
    from controlplane.services.secrets import load_keyring  # noqa: PLC0415

    recipient = load_keyring(tmp_path).recipient
    sealed = encrypt_secret_map({"A": "1", "B": "2", "C": "3"}, recipient)
    (repo / "secrets").mkdir()
    (repo / "secrets/team.a.age").write_bytes(sealed)
    first = commit(repo, {"flows/team.a/autoflow.yaml": flow()})
    source(client, repo)
    assert client.post("/api/v1/sources/flows/sync").json()["status"] == "applied"
    (repo / "secrets/team.a.age").write_bytes(
        encrypt_secret_map({"A": "1", "B": "2", "C": "3", "D": "4", "E": "5"}, recipient)
    )
    commit(repo, {"README.md": "more"})
    assert client.post("/api/v1/sources/flows/sync").json()["status"] == "applied"
    rollback = client.post("/api/v1/sources/flows/rollback", json={"commit": first}).json()
    # Prune is off: D and E stay stored, so the plan does not call them removed.
    assert all(c["action"] != "remove" for c in rollback["secret_changes"]), rollback
    keys = [s["key"] for s in client.get("/api/v1/namespaces/team.a/secrets").json()]
    assert keys == ["A", "B", "C", "D", "E"]


# -- Identities that hold -------------------------------------------------------------------


def test_a_case_changed_author_token_cannot_approve(client: TestClient, repo: Path) -> None:
    commit(repo, {"flows/team.a/autoflow.yaml": flow()}, author="Alice Author")
    source(client, repo, approval="approval")
    plan = client.post("/api/v1/sources/flows/sync").json()
    for name in ("alice author", "ALICE@EXAMPLE.COM"):
        refused = client.post(
            f"/api/v1/plans/{plan['id']}/approve", json={}, headers=token_headers(client, name)
        )
        assert refused.status_code == 403, (name, refused.text)
    # A token with another name but Alice's verified e-mail is Alice too.
    made = client.post(
        "/api/v1/tokens",
        json={"name": "a.reviewer", "role": "reviewer", "identities": ["Alice@Example.com"]},
    )
    assert made.json()["identities"] == ["alice@example.com"]
    refused = client.post(
        f"/api/v1/plans/{plan['id']}/approve", json={}, headers=bearer(made.json()["token"])
    )
    assert refused.status_code == 403
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["status"] == "pending"


def test_a_commit_hidden_under_another_head_or_committed_by_the_approver_is_refused(
    client: TestClient, repo: Path
) -> None:
    commit(repo, {"README.md": "base"})
    source(client, repo, approval="approval")
    client.post("/api/v1/sources/flows/sync")
    commit(repo, {"flows/team.a/autoflow.yaml": flow()}, author="Rita Reviewer")
    commit(
        repo,
        {"flows/team.a/other.yaml": flow(flow_id="other")},
        author="Dana Dev",
        committer="Carl Committer",
    )
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert {c["author"] for c in plan["commits"]} == {"Rita Reviewer", "Dana Dev"}
    for name in ("rita reviewer", "Carl Committer"):
        refused = client.post(
            f"/api/v1/plans/{plan['id']}/approve", json={}, headers=token_headers(client, name)
        )
        assert refused.status_code == 403, name
    ok = client.post(
        f"/api/v1/plans/{plan['id']}/approve", json={}, headers=token_headers(client, "zoe")
    )
    assert ok.json()["status"] == "applied"


def test_a_scoped_admin_cannot_mint_a_wider_token(client: TestClient) -> None:
    scoped = token_headers(client, "scoped-admin", "admin", ("other.*",))
    for body in (
        {"name": "x1", "role": "admin", "namespaces": ["*"]},
        {"name": "x2", "role": "viewer", "namespaces": ["team.*"]},
        {"name": "x3", "role": "viewer", "namespaces": ["other*"]},
    ):
        assert client.post("/api/v1/tokens", json=body, headers=scoped).status_code == 403, body
    narrower = {"name": "x4", "role": "editor", "namespaces": ["other.team.*"]}
    assert client.post("/api/v1/tokens", json=narrower, headers=scoped).status_code == 201
    names = {t["name"] for t in client.get("/api/v1/tokens", headers=scoped).json()}
    assert names == {"scoped-admin", "x4"}
    admin_id = next(t["id"] for t in client.get("/api/v1/tokens").json() if t["name"] == "admin")
    assert client.delete(f"/api/v1/tokens/{admin_id}", headers=scoped).status_code == 403


def test_the_audit_names_the_caller_and_the_commit_author_apart(
    client: TestClient, repo: Path
) -> None:
    commit(repo, {"flows/team.a/autoflow.yaml": flow()}, author="Alice Author")
    source(client, repo)
    client.post("/api/v1/sources/flows/sync", headers=token_headers(client, "eddie", "editor"))
    events = client.get("/api/v1/audit", params={"action": "plan.create"}).json()
    assert (events[0]["actor"], events[0]["summary"]["commit_author"]) == ("eddie", "Alice Author")


def test_the_proxy_email_header_is_the_identity(engine: Engine, tmp_path: Path) -> None:
    from controlplane.services.access import principal_from_proxy  # noqa: PLC0415
    from controlplane.settings import Settings  # noqa: PLC0415

    settings = Settings(
        trusted_proxies=["10.0.0.2/32"], proxy_group_roles={"rev": "reviewer"}, data_dir=tmp_path
    )
    headers = {"remote-user": "al", "remote-groups": "rev", "remote-email": "Alice@Example.com"}
    principal = principal_from_proxy(settings, "10.0.0.2", headers)
    assert principal is not None
    assert (principal.actor, principal.identities) == ("alice@example.com", ("alice@example.com",))


# -- Authorize before acting ----------------------------------------------------------------


def test_a_scoped_sync_and_rollback_are_403_and_change_nothing(
    client: TestClient, engine: Engine, repo: Path
) -> None:
    first = commit(repo, {"flows/team.a/autoflow.yaml": flow()})
    source(client, repo)
    client.post("/api/v1/sources/flows/sync")
    commit(repo, {"flows/team.a/autoflow.yaml": flow(msg="v2")})
    client.post("/api/v1/sources/flows/sync")
    commit(repo, {"flows/team.a/autoflow.yaml": flow(msg="v3")})
    other = token_headers(client, "outsider", "editor", ("other.*",))
    before = fingerprint(engine)
    assert client.post("/api/v1/sources/flows/sync", headers=other).status_code == 403
    rollback = client.post("/api/v1/sources/flows/rollback", json={"commit": first}, headers=other)
    assert rollback.status_code == 403
    assert client.get("/api/v1/sources", headers=other).json() == []
    assert client.get("/api/v1/sources/flows/drift", headers=other).status_code == 403
    assert fingerprint(engine) == before
    assert "v2" in client.get("/api/v1/flows/team.a/autoflow").json()["content"]


def _path_values(client: TestClient, repo: Path) -> dict[str, str]:
    commit(repo, {"flows/team.a/autoflow.yaml": flow()})
    source(client, repo, approval="approval")
    plan = client.post("/api/v1/sources/flows/sync").json()
    client.put(
        "/api/v1/flows/team.a/apiflow",
        content=flow(flow_id="apiflow"),
        headers={"Content-Type": "application/x-yaml"},
    )
    run = client.post("/api/v1/executions/team.a/apiflow?wait=true", json={}).json()
    client.put("/api/v1/namespaces/team.a/secrets/K", json={"value": "v"})
    admin_id = next(t["id"] for t in client.get("/api/v1/tokens").json() if t["name"] == "admin")
    return {
        "namespace": "team.a",
        "flow_id": "apiflow",
        "source_id": "flows",
        "plan_id": plan["id"],
        "execution_id": run["id"],
        "key": "K",
        "token_id": admin_id,
    }


_BODIES: dict[str, Any] = {
    "/api/v1/tokens": {"name": "wide", "role": "admin", "namespaces": ["*"]},
    "/api/v1/sources/{source_id}": {"url": "file:///elsewhere"},
    "/api/v1/sources/{source_id}/rollback": {"commit": "0000000"},
    "/api/v1/namespaces/{namespace}/secrets/{key}": {"value": "stolen"},
}


def test_every_mutating_route_refuses_an_out_of_scope_admin_and_writes_nothing(
    client: TestClient, engine: Engine, repo: Path
) -> None:
    values = _path_values(client, repo)
    outsider = token_headers(client, "outsider", "admin", ("other.*",))
    walked = []
    for path, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if not path.startswith("/api/v1") or path.endswith("/webhook") or "/webhook/" in path:
            continue
        for method in operations:
            if method not in {"post", "put", "patch", "delete"}:
                continue
            url = path
            for name, value in values.items():
                url = url.replace("{" + name + "}", value)
            url = url.replace("{", "").replace("}", "")
            before = fingerprint(engine)
            body = _BODIES.get(path, {})
            response = client.request(
                method.upper(), url, headers=outsider, content=json.dumps(body), params={}
            )
            after = fingerprint(engine)
            changed = sorted(t for t in before if before[t] != after[t])
            walked.append((method.upper(), path, response.status_code, changed))
    wrote = [w for w in walked if w[3] or w[2] < 400]
    assert wrote == [], wrote
    assert len(walked) > 20


# -- Plans recover ----------------------------------------------------------------------------


class _Killed(Exception):  # noqa: N818 - named for what it simulates
    """Stands in for kill -9 mid-apply."""


def _die_mid_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    """The apply transaction breaks off, and the process is gone before it records anything."""

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise _Killed

    monkeypatch.setattr(apply_module, "_apply_change", crash)
    monkeypatch.setattr(apply_module, "_fail", lambda *_a, **_k: None)


def test_a_crash_mid_apply_is_recovered_at_start(
    client: TestClient, engine: Engine, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(repo, {"flows/team.a/autoflow.yaml": flow()})
    source(client, repo, approval="approval")
    plan = client.post("/api/v1/sources/flows/sync").json()
    _die_mid_apply(monkeypatch)
    with pytest.raises(_Killed):
        decide_plan(engine, plan["id"], actor="rita", approve=True, comment=None)
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["status"] == "approved"
    assert client.get("/api/v1/flows/team.a/autoflow").status_code == 404
    monkeypatch.undo()
    outcome = recover_plans(engine)
    assert [(o.plan_id, o.status) for o in outcome] == [(plan["id"], "applied")]
    assert client.get("/api/v1/flows/team.a/autoflow").json()["revision"] == 1
    applied = client.get("/api/v1/audit", params={"action": "plan.apply"}).json()
    assert applied[-1]["actor"] == "rita"


def test_a_crashed_apply_that_cannot_be_redone_fails_with_its_reason(
    client: TestClient, engine: Engine, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(repo, {"flows/team.a/autoflow.yaml": flow()})
    source(client, repo, approval="approval")
    plan = client.post("/api/v1/sources/flows/sync").json()
    _die_mid_apply(monkeypatch)
    with pytest.raises(_Killed):
        decide_plan(engine, plan["id"], actor="rita", approve=True, comment=None)
    monkeypatch.undo()
    # While the server was down the flow was made through the API: redoing would be stale.
    client.put(
        "/api/v1/flows/team.a/autoflow",
        content=flow(msg="api"),
        headers={"Content-Type": "application/x-yaml"},
    )
    outcome = recover_plans(engine)
    assert outcome[0].status == "failed"
    assert "stale" in (outcome[0].reason or "")
    assert recover_plans(engine) == []
    resynced = client.post("/api/v1/sources/flows/sync").json()
    assert resynced["id"] != plan["id"]


def test_an_error_inside_apply_fails_the_plan_instead_of_stranding_it(
    client: TestClient, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(repo, {"flows/team.a/autoflow.yaml": flow()})
    source(client, repo, approval="approval")
    plan = client.post("/api/v1/sources/flows/sync").json()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(apply_module, "_apply_change", broken)
    with pytest.raises(RuntimeError):
        client.post(
            f"/api/v1/plans/{plan['id']}/approve", json={}, headers=token_headers(client, "rita")
        )
    failed = client.get(f"/api/v1/plans/{plan['id']}").json()
    assert (failed["status"], failed["status_reason"]) == (
        "failed",
        "apply failed: RuntimeError: disk full",
    )


# -- Sources: sealed credentials and explicit updates ---------------------------------------


TOKEN = "glpat-SUPERSECRET1234"  # noqa: S105 - a test value that must never come back


def test_git_url_credentials_are_sealed_and_never_shown(
    client: TestClient, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"https://oauth2:{TOKEN}@127.0.0.1:9/team/flows.git"
    created = client.put("/api/v1/sources/flows", json={"url": url})
    assert created.status_code == 201
    assert created.json()["url"] == "https://127.0.0.1:9/team/flows.git"
    assert created.json()["has_url_credentials"] is True
    sync = client.post("/api/v1/sources/flows/sync")
    assert sync.status_code == 502
    assert "127.0.0.1:9" in sync.json()["message"]
    seen = [
        created.text,
        sync.text,
        client.get("/api/v1/sources").text,
        client.get("/api/v1/audit").text,
        caplog.text,
    ]
    with engine.connect() as connection:
        seen.append(str(connection.execute(text("SELECT * FROM git_sources")).all()))
    for where in seen:
        assert TOKEN not in where
    # The same URL again is no change; another token is one, audited as "changed" only.
    again = client.put("/api/v1/sources/flows", json={"url": url})
    assert again.json()["version"] == created.json()["version"]
    client.put("/api/v1/sources/flows", json={"url": url.replace("1234", "5678")})
    event = client.get("/api/v1/audit", params={"action": "source.put"}).json()[-1]
    assert event["summary"]["changes"]["url_credentials"] == "changed"
    assert "5678" not in json.dumps(event)


def test_a_partial_put_says_what_it_reset_and_patch_changes_only_what_it_names(
    client: TestClient, repo: Path
) -> None:
    full = {
        "url": f"file://{repo}",
        "approval": "approval",
        "required_approvals": 2,
        "webhook_secret": "hook",
    }
    assert client.put("/api/v1/sources/flows", json=full).status_code == 201
    patched = client.patch("/api/v1/sources/flows", json={"branch": "release"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (
        body["branch"],
        body["approval"],
        body["required_approvals"],
        body["has_webhook_secret"],
    ) == ("release", "approval", 2, True)
    event = client.get("/api/v1/audit", params={"action": "source.patch"}).json()[-1]
    assert event["summary"]["changes"] == {"branch": {"before": "main", "after": "release"}}

    partial = client.put("/api/v1/sources/flows", json={"url": f"file://{repo}"})
    assert partial.status_code == 200
    assert "approval" in partial.headers["Flowplane-Defaulted"]
    assert (partial.json()["approval"], partial.json()["has_webhook_secret"]) == ("auto", False)
    event = client.get("/api/v1/audit", params={"action": "source.put"}).json()[-1]
    changes = event["summary"]["changes"]
    assert changes["approval"] == {"before": "approval", "after": "auto"}
    assert changes["required_approvals"] == {"before": 2, "after": 1}
    assert changes["branch"] == {"before": "release", "after": "main"}
    assert changes["webhook_secret"] == "changed"  # noqa: S105 - a marker
    assert event["summary"]["replaced"] is True
    assert "h00k-s3cret-xyz" not in json.dumps(event)


# -- UI session and headers --------------------------------------------------------------


def test_a_copied_cookie_stops_working_after_sign_out(client: TestClient) -> None:
    token = client.post("/api/v1/tokens", json={"name": "vic", "role": "viewer"}).json()["token"]
    web = TestClient(client.app, follow_redirects=False)
    form = web.get("/ui/signin")
    signed = web.post("/ui/signin", data={"token": token, "csrf_token": csrf_of(form.text)})
    assert signed.status_code == 303
    cookie = web.cookies.get("flowplane_session")
    assert cookie
    page = web.get("/ui/plans")
    assert page.status_code == 200
    web.post("/ui/signout", data={"csrf_token": csrf_of(page.text)})
    thief = TestClient(client.app, follow_redirects=False)
    thief.cookies.set("flowplane_session", cookie, path="/ui")
    stolen = thief.get("/ui/plans")
    assert stolen.status_code == 303
    assert "/signin" in stolen.headers["location"]


def test_ui_responses_carry_security_headers(client: TestClient) -> None:
    web = TestClient(client.app, follow_redirects=False)
    for url in ("/ui/signin", "/ui/plans", "/ui/static/style.css", "/ui/nope"):
        response = web.get(url)
        assert response.headers["X-Frame-Options"] == "DENY", url
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], url
