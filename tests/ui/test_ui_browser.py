"""The UI in a real browser: Debian's chromium driven by Playwright, against a real server.

One server and one browser serve the whole module. At 1440 and at 390 px wide:
a reviewer approves the first of two required approvals and sees the progress;
an operator runs a flow with inputs from its Run form and follows its logs,
restarts a failed run, syncs a source and rolls it back. Every page visited is
then checked by axe-core (no critical or serious violation) and must not
overflow the viewport. The original review path (approve, resume a paused run,
lineage) runs at 1440. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from tests import live_server
from tests.live_server import free_port
from tests.ui.ui_harness import BREAKS, GATE, GREET, commit, make_repo, source_body

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
ADMIN = "fpt_browser-test-admin"
AXE_CANDIDATES = (
    Path(os.environ.get("FLOWPLANE_AXE_JS", "/nonexistent")),
    Path.home() / ".cache/flowplane-npm/node_modules/axe-core/axe.min.js",
)
AXE_INSTALL = "npm install --prefix ~/.cache/flowplane-npm axe-core@4"
# A flow that runs long enough for its page to follow the logs live.
SLOW_GREET = GREET.replace(
    "  - id: check\n",
    "  - id: nap\n    type: io.kestra.plugin.core.flow.Sleep\n    duration: PT2S\n  - id: check\n",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``flowplane server`` in a subprocess on a free port, with its own data dir."""
    tmp_path = tmp_path_factory.mktemp("server")
    port = free_port()
    env = {
        **os.environ,
        "FLOWPLANE_ADMIN_TOKEN": ADMIN,
        "FLOWPLANE_POLL_SOURCES": "false",
        "FLOWPLANE_SCHEDULER": "false",
        "FLOWPLANE_LOG_LEVEL": "WARNING",
    }
    env.pop("FLOWPLANE_DATABASE_URL", None)
    command = [
        str(Path(sys.executable).parent / "flowplane"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
    ]
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with live_server.server_process(command, env, log_path, probe=f"{url}/readyz", seconds=60):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def axe_js() -> Path:
    """axe-core's script, installed outside the repository."""
    for candidate in AXE_CANDIDATES:
        if candidate.is_file():
            return candidate
    pytest.fail(
        "axe-core is not installed: run `" + AXE_INSTALL + "` (or set FLOWPLANE_AXE_JS to "
        "the path of axe.min.js)"
    )


@pytest.fixture(scope="module")
def api(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        client.timeout = 30
        yield client


def token(api: httpx.Client, name: str, role: str) -> str:
    created = api.post("/api/v1/tokens", json={"name": name, "role": role, "namespaces": ["*"]})
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


class Visit:
    """A signed-in browser page that remembers the pages it saw, for the checks at the end."""

    def __init__(self, context: BrowserContext, server: str, prefix: str) -> None:
        self.context = context
        self.page = context.new_page()
        self.server = server
        self.prefix = prefix
        self.seen: list[str] = []
        self.csp_errors: list[str] = []
        self.page.on("dialog", lambda dialog: dialog.accept())  # Kill/Restart/rollback confirms
        self.page.on(
            "console",
            lambda message: (
                self.csp_errors.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )

    def sign_in(self, secret: str, name: str) -> None:
        self.page.goto(f"{self.server}/ui/signin")
        self.page.fill("#token", secret)
        self.page.click("button[type=submit]")
        expect(self.page.locator(".whoami")).to_have_text(name)

    def shot(self, name: str) -> None:
        """A full-page screenshot; the page must not be wider than the viewport."""
        self.seen.append(self.page.url)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.prefix}-{name}.png"), full_page=True)
        overflow = self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 0:
            wide = self.page.evaluate(
                "[...document.querySelectorAll('body *')]"
                ".filter(e => e.getBoundingClientRect().right"
                " > document.documentElement.clientWidth)"
                ".slice(0, 5).map(e => e.tagName + '.' + e.className)"
            )
            pytest.fail(f"{self.page.url} overflows the viewport by {overflow}px: {wide}")


def check_accessibility(browser: Browser, visit: Visit, axe_js: Path, width: int) -> None:
    """axe-core on every page ``visit`` saw: no critical or serious violation.

    axe is injected with ``add_script_tag``, which the UI's CSP (scripts from
    the UI only) refuses; the check runs in a second context that bypasses CSP
    and carries the same session cookie.
    """
    state = visit.context.storage_state()
    context = browser.new_context(
        viewport={"width": width, "height": 900}, bypass_csp=True, storage_state=state
    )
    try:
        page = context.new_page()
        problems = []
        for url in dict.fromkeys(visit.seen):
            response = page.goto(url)
            assert response is not None
            assert response.ok, f"{url}: {response.status}"
            page.add_script_tag(path=str(axe_js))
            result = page.evaluate(
                "axe.run(document, {resultTypes: ['violations']})"
                ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact,"
                " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
            )
            problems.extend(
                f"{url}: {v['id']} ({v['impact']}) at {v['nodes']}"
                for v in result
                if v["impact"] in {"critical", "serious"}
            )
        assert not problems, "\n".join(problems)
    finally:
        context.close()


@pytest.mark.parametrize("width", [1440, 390])
def test_review_and_operate_at_each_width(  # noqa: PLR0915 - one story, step by step
    server: str,
    browser: Browser,
    api: httpx.Client,
    axe_js: Path,
    tmp_path: Path,
    *,
    width: int,
) -> None:
    namespace = f"ops.w{width}"
    source_id = f"flows-{width}"
    greet = SLOW_GREET.replace("platform.ops", namespace)
    breaks = BREAKS.replace("platform.ops", namespace)
    repo = make_repo(tmp_path)
    first = commit(
        repo,
        {f"flows/{namespace}/greet.yaml": greet, f"flows/{namespace}/breaks.yaml": breaks},
        "Add greet and breaks",
    )
    body = source_body(repo, approval="approval", required_approvals=2)
    assert api.put(f"/api/v1/sources/{source_id}", json=body).status_code == 201
    plan = api.post(f"/api/v1/sources/{source_id}/sync").json()
    assert plan["status"] == "pending", plan

    # (a) A reviewer approves the first of two required approvals and sees the progress.
    viewport = {"width": width, "height": 900}
    reviewer = Visit(browser.new_context(viewport=viewport), server, f"{width}-reviewer")
    reviewer.sign_in(token(api, f"rita{width}", "reviewer"), f"rita{width}")
    page = reviewer.page
    page.goto(f"{server}/ui/plans/{plan['id']}")
    expect(page.locator("#progress-count")).to_have_text("0 of 2")
    reviewer.shot("01-plan-pending")
    page.fill("#comment", "looks right")
    page.click("#approve")
    expect(page.locator("#progress-count")).to_have_text("1 of 2")
    expect(page.locator("ul.approvers")).to_contain_text(f"rita{width}")
    expect(page.locator("ul.approvers")).to_contain_text("UTC")
    expect(page.locator(".page-head h1 .badge")).to_have_text("pending")
    reviewer.shot("02-plan-1-of-2")
    page.click("#view-split")
    expect(page.locator("table.diff.split").first).to_be_visible()
    reviewer.shot("03-plan-side-by-side")
    second = api.post(f"/api/v1/plans/{plan['id']}/approve", json={"comment": "second"})
    assert second.json()["status"] == "applied", second.text
    page.goto(f"{server}/ui/plans/{plan['id']}")
    expect(page.locator("#progress-count")).to_have_text("2 of 2")

    # (b) An operator runs a flow with inputs from its Run form and follows its logs.
    operator = Visit(browser.new_context(viewport=viewport), server, f"{width}-operator")
    operator.sign_in(token(api, f"olga{width}", "editor"), f"olga{width}")
    page = operator.page
    page.goto(f"{server}/ui/flows/{namespace}/greet")
    expect(page.locator("#flow-graph svg.task-graph g.node")).to_have_count(5)
    operator.shot("04-flow-run-form")
    page.fill("#run-who", "browser")
    page.fill("#run-times", "2")
    page.select_option("#run-loud", "true")
    page.click("#run-button")
    expect(page.locator("#log-status")).to_have_text("run ended: SUCCESS", timeout=30_000)
    expect(page.locator("#log-lines")).to_contain_text("hello browser x2")
    expect(page.locator("#state")).to_have_text("SUCCESS", timeout=20_000)
    expect(page.locator("#run-graph g.node.state-ok[data-task='shout']")).to_have_count(1)
    page.select_option("#log-level", label="ERROR and above")
    expect(page.locator("#log-lines tr:visible")).to_have_count(0)
    page.select_option("#log-level", label="All")
    operator.shot("05-run-succeeded")

    # ... restarts a failed run: the second attempt is shown next to the first.
    failed = api.post(f"/api/v1/executions/{namespace}/breaks?wait=true", json={}).json()
    assert failed["state"] == "FAILED", failed
    page.goto(f"{server}/ui/executions/{failed['id']}")
    page.click("#restart")
    expect(page.locator("#attempts li[data-attempt='2']")).to_be_visible(timeout=20_000)
    expect(page.locator("#attempts")).to_contain_text("disk full")
    expect(page.locator("#state")).to_have_text("FAILED", timeout=20_000)
    operator.shot("06-run-restarted")

    # ... syncs a source and rolls it back to the first commit.
    assert api.patch(f"/api/v1/sources/{source_id}", json={"approval": "auto"}).is_success
    changed = greet.replace('message: "HELLO"', 'message: "HELLO AGAIN"')
    commit(repo, {f"flows/{namespace}/greet.yaml": changed}, "Shout again")
    page.goto(f"{server}/ui/sources")
    expect(page.locator(f"#source-{source_id}")).to_contain_text(first[:12])
    operator.shot("07-sources")
    page.click(f"#sync-{source_id}")
    expect(page.locator(".page-head h1 .badge")).to_have_text("applied")
    expect(page.locator(".page-head h1")).to_contain_text("Shout again")
    operator.shot("08-synced")
    page.goto(f"{server}/ui/sources/{source_id}")
    expect(page.locator("#drift-status")).to_contain_text("match")
    page.select_option("#rollback-commit", first)
    operator.shot("09-source-rollback")
    page.click("#rollback-button")
    expect(page.locator(".page-head .meta")).to_contain_text("rollback")
    expect(page.locator("#plan-commit")).to_have_text(first)
    expect(page.locator(".page-head h1 .badge")).to_have_text("applied")
    operator.shot("10-rolled-back")
    live = api.get(f"/api/v1/flows/{namespace}/greet").json()
    assert "HELLO AGAIN" not in str(live)

    # (c) Lists, audit and tokens at this width too.
    for path, name in (
        ("/ui/executions", "11-executions"),
        ("/ui/plans", "12-plans"),
        ("/ui/audit", "13-audit"),
        ("/ui/", "14-dashboard"),
    ):
        page.goto(f"{server}{path}")
        operator.shot(name)
    admin = Visit(browser.new_context(viewport=viewport), server, f"{width}-admin")
    admin.sign_in(ADMIN, api.get("/api/v1/whoami").json()["caller"]["name"])
    admin.page.goto(f"{server}/ui/tokens")
    admin.shot("15-tokens")

    for visit in (reviewer, operator, admin):
        assert not visit.csp_errors, visit.csp_errors
        check_accessibility(browser, visit, axe_js, width)
        visit.context.close()


def test_review_resume_and_lineage_in_a_browser(  # noqa: PLR0915 - one story, step by step
    server: str, browser: Browser, api: httpx.Client, tmp_path: Path
) -> None:
    created = api.post(
        "/api/v1/tokens", json={"name": "rita", "role": "reviewer", "namespaces": ["*"]}
    )
    assert created.status_code == 201, created.text
    repo = make_repo(tmp_path)
    sha = commit(repo, {"flows/platform.ops/gate.yaml": GATE}, "Add the release gate")
    source = {"url": f"file://{repo}", "branch": "main", "approval": "approval"}
    assert api.put("/api/v1/sources/flows", json=source).status_code == 201
    plan = api.post("/api/v1/sources/flows/sync").json()
    assert plan["status"] == "pending"
    assert plan["author"] == "Dana Dev"
    assert plan["target_commit"] == sha

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    visit = Visit(context, server, "1440-resume")
    page = visit.page
    page.goto(f"{server}/")
    expect(page).to_have_url(f"{server}/ui/signin?next=/ui/")
    page.fill("#token", created.json()["token"])
    page.click("button[type=submit]")
    expect(page.locator(".whoami")).to_have_text("rita")
    expect(page.locator(".card.attention")).to_contain_text("Add the release gate")
    page.click(f"a[href='/ui/plans/{plan['id']}']")
    expect(page.locator("#plan-commit")).to_have_text(plan["target_commit"])
    page.fill("#comment", "Gate reviewed, ship it")
    page.click("#approve")
    expect(page.locator(".page-head h1 .badge")).to_have_text("applied")
    expect(page.locator("#reviews")).to_contain_text("Gate reviewed, ship it")

    run = api.post("/api/v1/executions/platform.ops/gate?wait=true", json={}).json()
    assert run["state"] == "PAUSED", run
    assert run["git_commit_sha"] == sha
    page.goto(f"{server}/ui/executions/{run['id']}")
    expect(page.locator("#resume")).to_contain_text("approve")
    page.fill("#in-replicas", "2")
    page.click("#resume-button")  # without the required reason
    expect(page.locator("#resume")).to_contain_text("required STRING input is missing")
    visit.shot("01-resume-invalid")
    page.fill("#in-reason", "release 1.2 approved")
    page.fill("#in-replicas", "3")
    page.select_option("#in-dry_run", "false")
    page.select_option("#in-region", "eu-west")
    page.click("#resume-button")
    expect(page.locator("#state")).to_have_text("SUCCESS", timeout=20_000)
    expect(page.locator("tr.task-run[data-task='approve']")).to_contain_text("rita")

    page.click("#lineage > summary")
    lineage = page.locator("#lineage")
    expect(lineage.locator("#lineage-commit")).to_have_text(sha)
    expect(lineage).to_contain_text("Gate reviewed, ship it")
    expect(lineage).to_contain_text("execution.resume")
    visit.shot("02-lineage")
    assert not visit.csp_errors, visit.csp_errors
    context.close()

    ended = api.get(f"/api/v1/executions/{run['id']}").json()
    pause = next(t for t in ended["task_runs"] if t["task_id"] == "approve")
    assert pause["resumed_by"] == "rita"
    assert pause["outputs"]["onResume"] == {
        "reason": "release 1.2 approved",
        "replicas": 3,
        "dry_run": False,
        "region": "eu-west",
    }
