"""The review UI through TestClient: sessions, CSRF, roles, scopes and every page."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controlplane.api import create_app
from controlplane.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.ui.ui_harness import (
    BACKUP,
    GATE,
    browser,
    commit,
    csrf_of,
    make_repo,
    new_token,
    pending_plan,
    sign_in,
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def put_flow(api: TestClient, source: str) -> None:
    namespace = re.search(r"^namespace: (\S+)", source, re.MULTILINE)[1]
    flow_id = re.search(r"^id: (\S+)", source, re.MULTILINE)[1]
    response = api.put(f"/api/v1/flows/{namespace}/{flow_id}", json={"content": source})
    assert response.status_code in {200, 201}, response.text


def paused_run(api: TestClient, inputs: dict | None = None) -> dict:
    put_flow(api, GATE)
    run = api.post(
        "/api/v1/executions/platform.ops/gate?wait=true", json={"inputs": inputs or {}}
    ).json()
    assert run["state"] == "PAUSED", run
    return run


def wait_state(api: TestClient, execution_id: str, states: set[str]) -> dict:
    for _ in range(200):
        run = api.get(f"/api/v1/executions/{execution_id}").json()
        if run["state"] in states:
            return run
        time.sleep(0.05)
    pytest.fail(f"execution {execution_id} stayed {run['state']}")


def test_root_redirects_and_pages_need_a_session(client: TestClient) -> None:
    web = browser(client)
    assert web.get("/", follow_redirects=False).headers["location"] == "/ui/"
    response = web.get("/ui/plans", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/signin?next=/ui/plans"
    # The API's bearer token is not a UI session: the UI reads only its own cookie.
    assert client.get("/ui/plans", follow_redirects=False).status_code == 303


def test_session_cookie_is_httponly_lax_and_holds_no_secret(client: TestClient) -> None:
    web = browser(client)
    cookie = web.get("/ui/signin").headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/ui" in cookie

    signed = sign_in(client, ADMIN_TOKEN)
    value = signed.cookies["flowplane_session"]
    payload = json.loads(base64.b64decode(value.split(".")[0] + "=="))
    assert payload["token_id"].startswith("tok_")
    assert ADMIN_TOKEN not in json.dumps(payload)
    page = signed.get("/ui/")
    assert page.status_code == 200
    assert "Dashboard" in page.text
    assert ADMIN_TOKEN not in page.text


def test_session_key_file_is_private(client: TestClient, tmp_path: Path) -> None:
    key = tmp_path / "ui-session.key"
    assert key.exists()
    assert key.stat().st_mode & 0o777 == 0o600


def test_a_wrong_token_is_refused(client: TestClient) -> None:
    web = browser(client)
    form = web.get("/ui/signin")
    response = web.post("/ui/signin", data={"token": "fpt_nope", "csrf_token": csrf_of(form.text)})
    assert response.status_code == 401
    assert "Sign-in failed" in response.text
    assert web.get("/ui/", follow_redirects=False).status_code == 303


def test_sign_in_without_csrf_token_is_refused(client: TestClient) -> None:
    web = browser(client)
    web.get("/ui/signin")
    assert web.post("/ui/signin", data={"token": ADMIN_TOKEN}).status_code == 403
    assert web.get("/ui/", follow_redirects=False).status_code == 303


def test_posts_without_the_right_csrf_token_are_403(client: TestClient, repo: Path) -> None:
    plan = pending_plan(client, repo)
    web = sign_in(client, new_token(client, "rita", "reviewer"))
    url = f"/ui/plans/{plan['id']}/approve"
    assert web.post(url, data={"comment": "ok"}).status_code == 403
    assert web.post(url, data={"comment": "ok", "csrf_token": "forged"}).status_code == 403
    assert web.post(url, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["status"] == "pending"
    # The token from the page, sent as htmx sends it (a header), is accepted.
    token = csrf_of(web.get(f"/ui/plans/{plan['id']}").text)
    response = web.post(url, headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["status"] == "applied"


def test_a_viewer_sees_no_review_buttons_and_cannot_approve(client: TestClient, repo: Path) -> None:
    plan = pending_plan(client, repo)
    web = sign_in(client, new_token(client, "vic", "viewer"))
    page = web.get(f"/ui/plans/{plan['id']}")
    assert page.status_code == 200
    assert 'id="approve"' not in page.text
    assert "Reviewing needs the reviewer role" in page.text
    response = web.post(f"/ui/plans/{plan['id']}/approve", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 403
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["status"] == "pending"
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["approvals"] == []


def test_four_eyes_refusal_is_shown_and_a_second_reviewer_applies(
    client: TestClient, repo: Path
) -> None:
    plan = pending_plan(client, repo)
    author = sign_in(client, new_token(client, "Dana Dev", "reviewer"))
    page = author.get(f"/ui/plans/{plan['id']}")
    assert "You wrote this commit" in page.text
    assert "+    message: &#34;backing up&#34;" not in page.text  # diff rows, not raw text
    assert 'class="d-add"' in page.text
    refused = author.post(
        f"/ui/plans/{plan['id']}/approve",
        data={"csrf_token": csrf_of(page.text), "comment": "mine"},
    )
    assert refused.status_code == 403
    assert "cannot approve it" in refused.text
    assert 'role="alert"' in refused.text
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["status"] == "pending"

    rita = sign_in(client, new_token(client, "rita", "reviewer"))
    page = rita.get(f"/ui/plans/{plan['id']}")
    done = rita.post(
        f"/ui/plans/{plan['id']}/approve",
        data={"csrf_token": csrf_of(page.text), "comment": "looks good"},
    )
    assert done.status_code == 200
    assert "applied" in done.text
    assert "looks good" in done.text
    stored = client.get(f"/api/v1/plans/{plan['id']}").json()
    assert stored["status"] == "applied"
    assert [(a["actor"], a["decision"]) for a in stored["approvals"]] == [("rita", "approve")]


def test_a_reviewer_can_reject(client: TestClient, repo: Path) -> None:
    plan = pending_plan(client, repo)
    rita = sign_in(client, new_token(client, "rita", "reviewer"))
    page = rita.get(f"/ui/plans/{plan['id']}")
    rita.post(
        f"/ui/plans/{plan['id']}/reject",
        data={"csrf_token": csrf_of(page.text), "comment": "not now"},
    )
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["status"] == "rejected"
    assert client.get("/api/v1/flows/platform.ops/backup").status_code == 404


def test_scopes_filter_every_list_and_forbid_other_namespaces(client: TestClient) -> None:
    put_flow(client, BACKUP.replace("platform.ops", "team-a.etl"))
    put_flow(client, BACKUP.replace("platform.ops", "team-b.etl").replace("backing up", "b"))
    mine = client.post("/api/v1/executions/team-a.etl/backup?wait=true", json={}).json()
    theirs = client.post("/api/v1/executions/team-b.etl/backup?wait=true", json={}).json()
    web = sign_in(client, new_token(client, "ann", "viewer", ("team-a.*",)))

    flows = web.get("/ui/flows").text
    assert "team-a.etl" in flows
    assert "team-b.etl" not in flows
    executions = web.get("/ui/executions").text
    assert mine["id"][:12] in executions
    assert theirs["id"][:12] not in executions
    dashboard = web.get("/ui/").text
    assert theirs["id"][:12] not in dashboard
    audit = web.get("/ui/audit").text
    assert "flow:team-a.etl/backup" in audit
    assert "team-b" not in audit

    assert web.get("/ui/flows/team-a.etl/backup").status_code == 200
    assert web.get("/ui/flows/team-b.etl/backup").status_code == 403
    assert web.get("/ui/flows/team-b.etl/backup/diff?from=1&to=1").status_code == 403
    assert web.get(f"/ui/executions/{mine['id']}").status_code == 200
    assert web.get(f"/ui/executions/{theirs['id']}").status_code == 403


def test_scoped_principal_cannot_see_a_plan_outside_its_scopes(
    client: TestClient, repo: Path
) -> None:
    plan = pending_plan(client, repo)
    web = sign_in(client, new_token(client, "ann", "reviewer", ("team-a.*",)))
    assert plan["id"][:12] not in web.get("/ui/plans").text
    assert web.get(f"/ui/plans/{plan['id']}").status_code == 403
    page = web.get("/ui/")
    denied = web.post(f"/ui/plans/{plan['id']}/approve", data={"csrf_token": csrf_of(page.text)})
    assert denied.status_code == 403
    assert client.get(f"/api/v1/plans/{plan['id']}").json()["status"] == "pending"


def test_a_revoked_token_ends_the_session(client: TestClient) -> None:
    token = new_token(client, "tess", "viewer")
    web = sign_in(client, token)
    assert web.get("/ui/", follow_redirects=False).status_code == 200
    token_id = next(t["id"] for t in client.get("/api/v1/tokens").json() if t["name"] == "tess")
    assert client.delete(f"/api/v1/tokens/{token_id}").status_code == 204
    response = web.get("/ui/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/signin")


def test_sign_out_ends_the_session(client: TestClient) -> None:
    web = sign_in(client, ADMIN_TOKEN)
    page = web.get("/ui/")
    web.post("/ui/signout", data={"csrf_token": csrf_of(page.text)})
    assert web.get("/ui/", follow_redirects=False).status_code == 303


def test_every_page_renders(client: TestClient, repo: Path, corpus: Path) -> None:
    source = (corpus / "full.yaml").read_text()
    client.put("/api/v1/flows/io.kestra.tests/full", json={"content": source})
    changed = source.replace('message: "last"', 'message: "the end"')
    assert (
        client.put("/api/v1/flows/io.kestra.tests/full", json={"content": changed}).json()[
            "revision"
        ]
        == 2
    )
    plan = pending_plan(client, repo)
    run = client.post("/api/v1/executions/io.kestra.tests/full?wait=true", json={}).json()
    web = sign_in(client, ADMIN_TOKEN)

    pages = {
        "/ui/": "Recent executions",
        "/ui/flows": "io.kestra.tests",
        "/ui/flows/io.kestra.tests/full": '<span class="nt">namespace</span>',
        "/ui/flows/io.kestra.tests/full?revision=1": "r1",
        "/ui/flows/io.kestra.tests/full/diff?from=1&to=2": "the end",
        "/ui/plans": plan["id"][:12],
        "/ui/plans?status=pending": plan["id"][:12],
        f"/ui/plans/{plan['id']}": "platform.ops/backup",
        "/ui/executions": run["id"][:12],
        "/ui/executions?namespace=io.kestra.tests&flow_id=full&state=SUCCESS": run["id"][:12],
        f"/ui/executions/{run['id']}": "Task timeline",
        "/ui/audit": "Hash chain verified",
        "/ui/audit?action=flow.put": "flow:io.kestra.tests/full",
    }
    for path, expected in pages.items():
        response = web.get(path)
        assert response.status_code == 200, path
        assert expected in response.text, path

    diff = web.get("/ui/flows/io.kestra.tests/full/diff?from=1&to=2").text
    assert re.search(r'<tr class="d-del">.*?last', diff, re.DOTALL)
    assert re.search(r'<tr class="d-add">.*?the end', diff, re.DOTALL)
    execution = web.get(f"/ui/executions/{run['id']}").text
    assert 'data-task="t1"' in execution
    assert 'id="lineage"' in execution
    assert "execution.create" in execution
    assert run["id"][:12] not in web.get("/ui/executions?state=FAILED").text
    assert web.get("/ui/executions/no-such-run").status_code == 404
    assert web.get("/ui/plans/no-such-plan").status_code == 404
    assert web.get("/ui/flows/io.kestra.tests/missing").status_code == 404
    assert web.get("/ui/static/htmx.min.js").text.startswith("/* htmx 2.")


def test_a_failed_plan_shows_file_and_line(client: TestClient, repo: Path) -> None:
    broken = BACKUP.replace("io.kestra.plugin.core.log.Log", "Lgo")
    commit(repo, {"flows/platform.ops/backup.yaml": broken}, "Broken")
    body = {"url": f"file://{repo}", "branch": "main", "approval": "approval"}
    client.put("/api/v1/sources/flows", json=body)
    plan = client.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "failed"
    page = sign_in(client, ADMIN_TOKEN).get(f"/ui/plans/{plan['id']}").text
    assert "flows/platform.ops/backup.yaml:4:5" in page
    assert "unknown task type" in page
    assert 'id="approve"' not in page


def test_resume_form_validates_and_resumes(client: TestClient) -> None:
    run = paused_run(client)
    viewer = sign_in(client, new_token(client, "vic", "viewer"))
    page = viewer.get(f"/ui/executions/{run['id']}").text
    assert "Resuming needs the reviewer role" in page
    assert (
        viewer.post(
            f"/ui/executions/{run['id']}/resume",
            data={"csrf_token": csrf_of(page), "input.reason": "x"},
        ).status_code
        == 403
    )

    web = sign_in(client, new_token(client, "rita", "reviewer"))
    page = web.get(f"/ui/executions/{run['id']}").text
    assert 'name="input.reason" type="text"' in page
    assert 'name="input.replicas" type="number" step="1"' in page
    assert '<select id="in-dry_run" name="input.dry_run">' in page
    assert '<option value="eu-west"' in page
    bad = web.post(
        f"/ui/executions/{run['id']}/resume",
        data={"csrf_token": csrf_of(page), "input.replicas": "three"},
    )
    assert bad.status_code == 422
    assert "must be an integer" in bad.text
    assert "required STRING input is missing" in bad.text
    assert 'value="three"' in bad.text  # what was typed is kept
    assert client.get(f"/api/v1/executions/{run['id']}").json()["state"] == "PAUSED"

    done = web.post(
        f"/ui/executions/{run['id']}/resume",
        data={
            "csrf_token": csrf_of(page),
            "input.reason": "ship it",
            "input.replicas": "3",
            "input.dry_run": "false",
            "input.region": "eu-west",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    ended = wait_state(client, run["id"], {"SUCCESS", "FAILED"})
    assert ended["state"] == "SUCCESS"
    after = next(t for t in ended["task_runs"] if t["task_id"] == "after")
    assert after["outputs"]["values"] == {"reason": "ship it", "replicas": "3"}
    pause = next(t for t in ended["task_runs"] if t["task_id"] == "approve")
    assert pause["resumed_by"] == "rita"
    assert pause["outputs"]["onResume"]["replicas"] == 3
    assert pause["outputs"]["onResume"]["dry_run"] is False


def test_kill_needs_an_editor(client: TestClient) -> None:
    run = paused_run(client)
    viewer = sign_in(client, new_token(client, "vic", "viewer"))
    page = viewer.get(f"/ui/executions/{run['id']}").text
    assert 'id="kill"' not in page
    denied = viewer.post(f"/ui/executions/{run['id']}/kill", data={"csrf_token": csrf_of(page)})
    assert denied.status_code == 403
    editor = sign_in(client, new_token(client, "ed", "editor"))
    page = editor.get(f"/ui/executions/{run['id']}").text
    assert 'id="kill"' in page
    editor.post(f"/ui/executions/{run['id']}/kill", data={"csrf_token": csrf_of(page)})
    assert client.get(f"/api/v1/executions/{run['id']}").json()["state"] == "KILLED"


def test_secret_values_are_never_rendered(client: TestClient, repo: Path) -> None:
    run = paused_run(client, {"password": "hunter2-very-secret"})
    client.put(
        "/api/v1/namespaces/platform.ops/secrets/DB_PASSWORD",
        json={"value": "s3cr3t-db-value"},
    )
    body = {"url": f"file://{repo}", "webhook_secret": "whsec-never-shown"}
    client.put("/api/v1/sources/other", json=body)
    web = sign_in(client, ADMIN_TOKEN)
    seen = "".join(
        web.get(path).text
        for path in (
            "/ui/",
            f"/ui/executions/{run['id']}",
            "/ui/audit",
            "/ui/flows/platform.ops/gate",
        )
    )
    assert "hunter2-very-secret" not in seen
    assert "******" in web.get(f"/ui/executions/{run['id']}").text
    assert "s3cr3t-db-value" not in seen
    assert "whsec-never-shown" not in seen
    assert ADMIN_TOKEN not in seen


def test_a_trusted_proxy_signs_its_user_in(engine, tmp_path: Path) -> None:
    settings = Settings(
        database_url=str(engine.url),
        data_dir=tmp_path,
        poll_sources=False,
        workers=0,
        trusted_proxies=["10.0.0.0/8"],
        proxy_group_roles={"ops-reviewers": "reviewer"},
    )
    app = create_app(settings, engine=engine)
    proxied = {"Remote-User": "pat", "Remote-Groups": "staff, ops-reviewers"}
    via_proxy = TestClient(app, client=("10.1.2.3", 40000))
    page = via_proxy.get("/ui/", headers=proxied)
    assert page.status_code == 200
    assert '<span class="whoami"' in page.text
    assert ">pat<" in page.text
    assert "Sign out" not in page.text  # the proxy, not Flowplane, owns this session
    # The same headers from anywhere else are ignored.
    direct = TestClient(app, client=("192.0.2.7", 40000))
    assert direct.get("/ui/", headers=proxied, follow_redirects=False).status_code == 303


def test_admins_create_and_revoke_tokens_in_the_ui(client: TestClient) -> None:
    web = sign_in(client, ADMIN_TOKEN)
    listing = web.get("/ui/tokens")
    assert listing.status_code == 200
    assert ">Tokens</a>" in listing.text
    assert ADMIN_TOKEN not in listing.text
    form = {
        "name": "rita@example.com",
        "role": "reviewer",
        "namespaces": "platform.*, team-a.*",
        "expires_on": "2099-01-31",
        "csrf_token": csrf_of(listing.text),
    }
    assert web.post("/ui/tokens", data={**form, "csrf_token": "wrong"}).status_code == 403
    created = web.post("/ui/tokens", data=form)
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-token-secret">(fpt_[^<]+)<', created.text)
    assert secret is not None
    api = {"Authorization": f"Bearer {secret.group(1)}"}
    token = next(t for t in client.get("/api/v1/tokens").json() if t["name"] == form["name"])
    assert (token["role"], token["namespaces"]) == ("reviewer", ["platform.*", "team-a.*"])
    assert token["expires_at"].startswith("2099-01-31T00:00:00")
    assert client.get("/api/v1/flows", headers=api).status_code == 200
    assert secret.group(1) not in web.get("/ui/tokens").text
    duplicate = web.post("/ui/tokens", data=form)
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.text

    reviewer = sign_in(client, secret.group(1))
    assert reviewer.get("/ui/tokens").status_code == 403
    assert ">Tokens</a>" not in reviewer.get("/ui/").text

    page = web.get("/ui/tokens")
    revoked = web.post(f"/ui/tokens/{token['id']}/revoke", data={"csrf_token": csrf_of(page.text)})
    assert revoked.status_code == 200  # followed the redirect back to the list
    assert client.get("/api/v1/flows", headers=api).status_code == 401


def test_behind_tls_the_session_cookie_is_secure(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=str(engine.url),
        data_dir=tmp_path,
        poll_sources=False,
        workers=0,
        secure_cookies=True,
        admin_token=ADMIN_TOKEN,
    )
    with TestClient(create_app(settings, engine=engine), base_url="https://testserver") as web:
        cookie = web.get("/ui/signin").headers["set-cookie"].lower()
    assert "; secure" in cookie
    assert "httponly" in cookie
