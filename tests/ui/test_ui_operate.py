"""The operator UI through TestClient: review progress, field values, run, restart, sources,
graphs, lists with pages and filters, the audit jump link, and the log stream."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from controlplane.domain.spec import Flow
from controlplane.services.revisions import stored_spec
from controlplane.ui.graph import NODE_H, NODE_W, flow_graph, render_svg, run_states
from controlplane.ui.listing import page_of
from controlplane.ui.plan_view import split_rows, task_id_of
from controlplane.ui.rendering import state_classes
from tests.ui.ui_harness import (
    BACKUP,
    BREAKS,
    GREET,
    commit,
    csrf_of,
    make_repo,
    new_token,
    sign_in,
    source_body,
)

DASH = "\N{EN DASH}"  # the pager writes ranges with an en dash
CHANGED = BACKUP.replace('message: "backing up"', 'message: "backing up twice"')


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def put_flow(api: TestClient, source: str) -> None:
    namespace = re.search(r"^namespace: (\S+)", source, re.MULTILINE)[1]
    flow_id = re.search(r"^id: (\S+)", source, re.MULTILINE)[1]
    response = api.put(f"/api/v1/flows/{namespace}/{flow_id}", json={"content": source})
    assert response.status_code in {200, 201}, response.text


def wait_state(api: TestClient, execution_id: str, states: set[str]) -> dict:
    for _ in range(400):
        run = api.get(f"/api/v1/executions/{execution_id}").json()
        if run["state"] in states:
            return run
        time.sleep(0.05)
    pytest.fail(f"execution {execution_id} stayed {run['state']}")


def changed_plan(api: TestClient, repo: Path, required: int = 2) -> dict:
    """Backup applied under ``auto``; then a change to it waits for ``required`` approvals."""
    commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "Add backup flow")
    assert api.put("/api/v1/sources/flows", json=source_body(repo)).status_code == 201
    assert api.post("/api/v1/sources/flows/sync").json()["status"] == "applied"
    patch = {"approval": "approval", "required_approvals": required}
    assert api.patch("/api/v1/sources/flows", json=patch).status_code == 200
    commit(repo, {"flows/platform.ops/backup.yaml": CHANGED}, "Back up twice")
    plan = api.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "pending", plan
    return plan


def test_plan_shows_progress_with_who_and_when_and_field_values(
    client: TestClient, repo: Path
) -> None:
    plan = changed_plan(client, repo)
    rita = sign_in(client, new_token(client, "rita", "reviewer"))
    page = rita.get(f"/ui/plans/{plan['id']}").text
    assert re.search(r'id="progress-count">0 of 2<', page)
    # The field change names its task and shows both values.
    row = re.search(r'<tr class="field-changed">(.*?)</tr>', page, re.DOTALL)[1]
    assert ">dump<" in row
    assert "tasks[0].message" in row
    assert "backing up</code>" in row
    assert "backing up twice</code>" in row

    approved = rita.post(
        f"/ui/plans/{plan['id']}/approve", data={"csrf_token": csrf_of(page), "comment": "ok"}
    )
    assert approved.status_code == 200  # back on the plan, still pending
    assert re.search(r'id="progress-count">1 of 2<', approved.text)
    approvers = re.search(r'<ul class="approvers">(.*?)</ul>', approved.text, re.DOTALL)[1]
    assert "<strong>rita</strong>" in approvers
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", approvers)
    assert "1 more needed" in approved.text


def test_side_by_side_diff_pairs_removed_and_added_lines(client: TestClient, repo: Path) -> None:
    plan = changed_plan(client, repo, required=1)
    web = sign_in(client, new_token(client, "vic", "viewer"))
    unified = web.get(f"/ui/plans/{plan['id']}").text
    assert 'class="diff split"' not in unified
    split = web.get(f"/ui/plans/{plan['id']}?view=split").text
    assert 'class="diff split"' in split
    pair = re.search(r'<tr class="split-change">(.*?)</tr>', split, re.DOTALL)[1]
    assert re.search(r'class="code d-del">\s*message: &#34;backing up&#34;', pair) or (
        'd-del">    message: "backing up"' in pair
    )
    assert "backing up twice" in pair


def test_split_rows_and_task_ids() -> None:
    diff = "--- a\n+++ b\n@@ -1,3 +1,3 @@\n keep\n-old one\n-old two\n+new one\n same\n"
    rows = split_rows(diff)
    kinds = [r.kind for r in rows]
    assert kinds == ["file", "file", "hunk", "ctx", "change", "change", "ctx"]
    first, second = rows[4], rows[5]
    assert (str(first.left.text), str(first.right.text)) == ("old one", "new one")
    assert (str(second.left.text), second.right) == ("old two", None)
    spec = {"tasks": [{"id": "a"}, {"id": "b", "then": [{"id": "c", "message": "x"}]}]}
    assert task_id_of("tasks[1].then[0].message", spec) == "c"
    assert task_id_of("tasks[0].type", spec) == "a"
    assert task_id_of("tasks[5]", spec, before={"id": "gone"}) == "gone"
    assert task_id_of("description", spec) is None


def test_run_form_is_built_from_the_inputs_and_starts_a_run(client: TestClient) -> None:
    put_flow(client, GREET)
    viewer = sign_in(client, new_token(client, "vic", "viewer"))
    assert 'id="run-button"' not in viewer.get("/ui/flows/platform.ops/greet").text
    web = sign_in(client, new_token(client, "olga", "editor"))
    page = web.get("/ui/flows/platform.ops/greet").text
    for field in ("who", "times", "loud"):
        assert f'<label for="run-{field}">' in page
    assert 'id="run-times" name="input.times" type="number"' in page

    missing = web.post(
        "/ui/flows/platform.ops/greet/run", data={"csrf_token": csrf_of(page), "input.times": "2"}
    )
    assert missing.status_code == 422
    assert "nothing was started" in missing.text
    assert client.get("/api/v1/executions").json() == []

    started = web.post(
        "/ui/flows/platform.ops/greet/run",
        data={"csrf_token": csrf_of(page), "input.who": "ops", "input.times": "3"},
        follow_redirects=False,
    )
    assert started.status_code == 303
    execution_id = started.headers["location"].rsplit("/", 1)[1]
    run = wait_state(client, execution_id, {"SUCCESS"})
    assert run["inputs"] == {"who": "ops", "times": 3, "loud": False}
    assert run["trigger"] == {"type": "ui", "actor": "olga"}


def test_restart_shows_every_attempt(client: TestClient) -> None:
    put_flow(client, BREAKS)
    run = client.post("/api/v1/executions/platform.ops/breaks?wait=true", json={}).json()
    assert run["state"] == "FAILED"
    viewer = sign_in(client, new_token(client, "vic", "viewer"))
    page = viewer.get(f"/ui/executions/{run['id']}").text
    assert 'id="restart"' not in page
    denied = viewer.post(f"/ui/executions/{run['id']}/restart", data={"csrf_token": csrf_of(page)})
    assert denied.status_code == 403

    web = sign_in(client, new_token(client, "olga", "editor"))
    page = web.get(f"/ui/executions/{run['id']}").text
    assert 'hx-confirm="Restart execution' in page
    restarted = web.post(
        f"/ui/executions/{run['id']}/restart",
        data={"csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert restarted.status_code == 303
    wait_state(client, run["id"], {"FAILED"})
    page = web.get(f"/ui/executions/{run['id']}").text
    attempts = re.search(r'<section class="card" id="attempts">(.*?)</section>', page, re.DOTALL)[1]
    assert '<li data-attempt="1">' in attempts
    assert '<li data-attempt="2">' in attempts
    assert "disk full" in attempts
    assert "restarted by olga" in page  # the state history
    # The run's graph colours the failed task red and the successful one green.
    assert re.search(r'<g class="node state-bad" data-task="boom">', page)
    assert re.search(r'<g class="node state-ok" data-task="prepare">', page)
    # A finished run can no longer be restarted twice at once: SUCCESS/RUNNING refuse.


def test_kill_asks_for_confirmation(client: TestClient) -> None:
    gate = BACKUP.replace(
        '    type: io.kestra.plugin.core.log.Log\n    message: "backing up"\n',
        "    type: io.kestra.plugin.core.flow.Pause\n",
    )
    put_flow(client, gate)
    run = client.post("/api/v1/executions/platform.ops/backup?wait=true", json={}).json()
    web = sign_in(client, new_token(client, "olga", "editor"))
    page = web.get(f"/ui/executions/{run['id']}").text
    assert 'hx-confirm="Kill execution' in page


def test_flow_graph_lays_out_branches_without_overlap() -> None:
    spec: Flow = stored_spec(GREET)
    graph = flow_graph(spec)
    boxes = {n.task_id: n for n in graph.nodes}
    assert set(boxes) == {"hello", "check", "shout", "whisper"}
    assert boxes["hello"].y < boxes["check"].y < boxes["shout"].y
    assert boxes["shout"].y == boxes["whisper"].y
    assert abs(boxes["shout"].x - boxes["whisper"].x) >= NODE_W
    for node in graph.nodes:
        assert node.x >= 0
        assert node.x + NODE_W <= graph.width
        assert node.y >= 0
        assert node.y + NODE_H <= graph.height
    labels = {name for _, _, name in graph.labels}
    assert labels == {"then", "else"}
    svg = str(render_svg(graph, title="g <x>", state_class=state_classes()))
    assert svg.startswith('<svg class="task-graph"')
    assert 'aria-label="g &lt;x&gt;"' in svg
    states = run_states([("hello", "SUCCESS"), ("check", "RUNNING"), ("check", "FAILED")])
    assert states == {"hello": ("SUCCESS", 1), "check": ("RUNNING", 2)}
    run_svg = str(
        render_svg(flow_graph(spec, states), title="r", state_class=state_classes(), run=True)
    )
    assert '<g class="node state-run" data-task="check">' in run_svg
    assert '<g class="node state-muted" data-task="shout">' in run_svg
    assert "not run" in run_svg


def test_flow_page_draws_the_graph_and_links_the_commit(client: TestClient, repo: Path) -> None:
    sha = commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "Add backup flow")
    client.put("/api/v1/sources/flows", json=source_body(repo))
    client.post("/api/v1/sources/flows/sync")
    # Repoint the source at a hosted remote: links use the source's URL, as lineage does.
    hosted = {"url": "https://github.com/acme/flows.git"}
    assert client.patch("/api/v1/sources/flows", json=hosted).status_code == 200
    web = sign_in(client, ADMIN)
    page = web.get("/ui/flows/platform.ops/backup").text
    assert '<svg class="task-graph"' in page
    assert 'data-task="dump"' in page
    link = f'href="https://github.com/acme/flows/commit/{sha}"'
    assert link in page
    plans = client.get("/api/v1/plans").json()
    assert link in web.get(f"/ui/plans/{plans[0]['id']}").text
    audit = web.get("/ui/audit?action=plan.").text
    assert link in audit
    assert 'class="mono commit-link"' in audit


ADMIN = "fpt_test-admin-token"


def test_git_revisions_show_the_author_not_the_approver(client: TestClient, repo: Path) -> None:
    commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "Add backup flow")
    body = source_body(repo, approval="approval")
    client.put("/api/v1/sources/flows", json=body)
    plan = client.post("/api/v1/sources/flows/sync").json()
    rita = sign_in(client, new_token(client, "rita", "reviewer"))
    page = rita.get(f"/ui/plans/{plan['id']}").text
    rita.post(f"/ui/plans/{plan['id']}/approve", data={"csrf_token": csrf_of(page)})
    history = rita.get("/ui/flows/platform.ops/backup").text
    table = history.split("Revision history")[1]
    row = re.search(r"<tbody>\s*<tr[^>]*>(.*?)</tr>", table, re.DOTALL)
    assert "<td>Dana Dev</td>" in row[1]
    assert "rita" not in row[1]
    assert "written by <strong>Dana Dev</strong>" in history
    # Approvals are plan events without a commit: the audit page still renders.
    assert rita.get("/ui/audit").status_code == 200


def test_sources_page_syncs_and_rolls_back_through_the_policy(
    client: TestClient, repo: Path
) -> None:
    first = commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "Add backup flow")
    client.put("/api/v1/sources/flows", json=source_body(repo))
    client.post("/api/v1/sources/flows/sync")
    commit(repo, {"flows/platform.ops/backup.yaml": CHANGED}, "Back up twice")

    web = sign_in(client, new_token(client, "olga", "editor"))
    listing = web.get("/ui/sources").text
    assert 'id="source-flows"' in listing
    assert first[:12] in listing
    assert 'id="sync-flows"' in listing
    detail = web.get("/ui/sources/flows").text
    assert "The live flows match commit" in detail

    synced = web.post(
        "/ui/sources/flows/sync", data={"csrf_token": csrf_of(detail)}, follow_redirects=False
    )
    assert synced.status_code == 303
    plan_id = synced.headers["location"].rsplit("/", 1)[1]
    assert client.get(f"/api/v1/plans/{plan_id}").json()["status"] == "applied"

    detail = web.get("/ui/sources/flows").text
    assert f'<option value="{first}">' in detail  # the earlier applied commit is offered
    rolled = web.post(
        "/ui/sources/flows/rollback",
        data={"csrf_token": csrf_of(detail), "commit": first},
        follow_redirects=False,
    )
    assert rolled.status_code == 303
    plan = client.get(f"/api/v1/plans/{rolled.headers['location'].rsplit('/', 1)[1]}").json()
    assert plan["kind"] == "rollback"
    assert plan["requested_by"] == "olga"
    assert plan["target_commit"] == first
    flow = client.get("/api/v1/flows/platform.ops/backup").json()
    assert "backing up twice" not in str(flow)

    bad = web.post(
        "/ui/sources/flows/rollback", data={"csrf_token": csrf_of(detail), "other": "nope!"}
    )
    assert bad.status_code == 400
    assert "is not a commit sha" in bad.text


def test_scoped_editor_cannot_sync_or_roll_back_and_nothing_changes(
    client: TestClient, repo: Path
) -> None:
    first = commit(repo, {"flows/platform.ops/backup.yaml": BACKUP}, "Add backup flow")
    client.put("/api/v1/sources/flows", json=source_body(repo))
    client.post("/api/v1/sources/flows/sync")
    commit(repo, {"flows/platform.ops/backup.yaml": CHANGED}, "Back up twice")
    before = len(client.get("/api/v1/plans").json())

    # Sees the source (it serves platform.ops) but also other.* is not enough to act.
    web = sign_in(client, new_token(client, "ed", "editor", ("other.*",)))
    assert 'id="source-flows"' not in web.get("/ui/sources").text
    page = web.get("/ui/flows").text
    assert web.post("/ui/sources/flows/sync", data={"csrf_token": csrf_of(page)}).status_code == 403
    rollback = {"csrf_token": csrf_of(page), "commit": first}
    assert web.post("/ui/sources/flows/rollback", data=rollback).status_code == 403
    assert len(client.get("/api/v1/plans").json()) == before
    assert client.get("/api/v1/sources/flows").json()["last_commit"] == first


def test_page_of_clamps_and_counts() -> None:
    rows = list(range(120))
    page = page_of(rows, 3, 50)
    assert (page.rows[0], page.rows[-1], page.total, page.pages) == (100, 119, 120, 3)
    assert (page.first, page.last) == (101, 120)
    assert page_of(rows, 99, 50).number == 3
    assert page_of([], 1, 50).pages == 1


def test_audit_pages_filters_and_dates(client: TestClient) -> None:
    for index in range(55):
        new_token(client, f"user-{index:02d}", "viewer")
    web = sign_in(client, ADMIN)
    first = web.get("/ui/audit?action=token.").text
    total = int(re.search(r'id="events-total">1\N{EN DASH}50 of (\d+) events<', first)[1])
    assert total >= 55
    assert 'rel="next" href="/ui/audit?action=token.&amp;page=2"' in first
    second = web.get("/ui/audit?action=token.&page=2").text
    assert re.search(rf'id="events-total">51{DASH}{total} of {total} events<', second)
    assert "user-00" in second  # oldest last
    assert "user-54" not in second
    actor = web.get("/ui/audit?actor=ADMIN").text  # text filter, any case
    assert "user-54" in actor
    future = web.get("/ui/audit?since=2999-01-01").text
    assert "No events" in future
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert "user-54" in web.get(f"/ui/audit?since={today}&until={today}").text


def test_audit_links_to_the_first_broken_event(client: TestClient, engine: Engine) -> None:
    for index in range(3):
        new_token(client, f"user-{index}", "viewer")
    with engine.begin() as connection:
        pk = connection.execute(text("SELECT MIN(pk) FROM audit_events")).scalar_one()
        connection.execute(
            text("UPDATE audit_events SET actor = 'mallory' WHERE pk = :pk"), {"pk": pk}
        )
    web = sign_in(client, ADMIN)
    page = web.get("/ui/audit").text
    link = f'href="/ui/audit?upto={pk}#event-{pk}"'
    assert link in page
    jumped = web.get(f"/ui/audit?upto={pk}").text
    first_row = re.search(r"<tbody>\s*<tr ([^>]*)>", jumped)[1]
    assert first_row == f'id="event-{pk}" class="broken"'


def test_execution_list_filters_by_prefix_text_state_and_dates(client: TestClient) -> None:
    put_flow(client, BREAKS)
    put_flow(client, GREET)
    failed = client.post("/api/v1/executions/platform.ops/breaks?wait=true", json={}).json()
    ok = client.post(
        "/api/v1/executions/platform.ops/greet?wait=true", json={"inputs": {"who": "a"}}
    ).json()
    web = sign_in(client, ADMIN)

    def ids(query: str) -> set[str]:
        page = web.get(f"/ui/executions?{query}").text
        return {i for i in (failed["id"], ok["id"]) if f"/ui/executions/{i}" in page}

    assert ids("") == {failed["id"], ok["id"]}
    assert ids("namespace=platform") == {failed["id"], ok["id"]}  # a prefix
    assert ids("namespace=ops") == set()
    assert ids("q=REE") == {ok["id"]}  # text in the flow id, any case
    assert ids(f"q={failed['id'][:8]}") == {failed["id"]}  # an id prefix
    assert ids("state=FAILED") == {failed["id"]}
    assert ids("until=2000-01-01") == set()
    page = web.get("/ui/executions").text
    assert re.search(r'id="executions-total">1\N{EN DASH}2 of 2 executions<', page)


def test_plan_list_filters_and_counts(client: TestClient, repo: Path) -> None:
    changed_plan(client, repo, required=1)
    web = sign_in(client, ADMIN)
    page = web.get("/ui/plans").text
    assert re.search(r'id="plans-total">1\N{EN DASH}2 of 2 plans<', page)
    assert "Back up twice" in web.get("/ui/plans?q=twice").text
    assert "Add backup flow" not in web.get("/ui/plans?q=twice").text
    pending = web.get("/ui/plans?status=pending").text
    assert re.search(r'id="plans-total">1\N{EN DASH}1 of 1 plans<', pending)
    assert "No plans" in web.get("/ui/plans?source=zzz").text


def test_log_stream_follows_the_run_until_it_ends(client: TestClient) -> None:
    put_flow(client, GREET)
    run = client.post(
        "/api/v1/executions/platform.ops/greet?wait=true", json={"inputs": {"who": "sse"}}
    ).json()
    assert run["state"] == "SUCCESS"
    web = sign_in(client, new_token(client, "vic", "viewer"))
    page = web.get(f"/ui/executions/{run['id']}").text
    assert 'id="log-level"' in page
    assert '<label class="inline-label">Level' in page
    assert 'data-rank="1"' in page  # the DEBUG line can be filtered out
    stream = web.get(f"/ui/executions/{run['id']}/logs/follow")
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "event: log" in stream.text
    assert "hello sse x1" in stream.text
    assert stream.text.rstrip().endswith('data: {"state": "SUCCESS"}')
    positions = [int(p) for p in re.findall(r"^id: (\d+)$", stream.text, re.MULTILINE)]
    rest = web.get(f"/ui/executions/{run['id']}/logs/follow?after={positions[-2]}").text
    assert re.findall(r"^id: (\d+)$", rest, re.MULTILINE) == [str(positions[-1])]
    # Someone without the namespace gets nothing.
    other = sign_in(client, new_token(client, "oz", "viewer", ("other.*",)))
    assert other.get(f"/ui/executions/{run['id']}/logs/follow").status_code == 403


def test_pages_carry_no_inline_script_and_every_field_is_labelled(
    client: TestClient, repo: Path
) -> None:
    plan = changed_plan(client, repo, required=1)
    put_flow(client, GREET)
    run = client.post(
        "/api/v1/executions/platform.ops/greet?wait=true", json={"inputs": {"who": "x"}}
    ).json()
    web = sign_in(client, ADMIN)
    paths = [
        "/ui/",
        "/ui/flows",
        "/ui/flows/platform.ops/greet",
        "/ui/plans",
        f"/ui/plans/{plan['id']}",
        f"/ui/plans/{plan['id']}?view=split",
        "/ui/executions",
        f"/ui/executions/{run['id']}",
        "/ui/sources",
        "/ui/sources/flows",
        "/ui/audit",
        "/ui/tokens",
    ]
    for path in paths:
        response = web.get(path)
        assert response.status_code == 200, path
        html = response.text
        assert 'href="#main"' in html, path  # the skip link
        # The CSP allows scripts from the UI only: no inline script, no on* handler.
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        labelled = set(re.findall(r'<label for="([^"]+)"', html))
        for tag in re.finditer(r"<(input|select|textarea)\b([^>]*)>", html):
            attrs = tag[2]
            if re.search(r'type="(hidden|submit)"', attrs):
                continue
            field_id = re.search(r'\bid="([^"]+)"', attrs)
            wrapped = html.rfind("<label", 0, tag.start()) > html.rfind("</label>", 0, tag.start())
            assert wrapped or (field_id and field_id[1] in labelled) or "aria-label" in attrs, (
                path,
                tag[0],
            )
