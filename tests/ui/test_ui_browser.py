"""The review UI in a real browser: Debian's chromium driven by Playwright, against a real server.

A reviewer signs in with a token, approves a plan another person committed,
resumes a paused run by filling its ``onResume`` form, and finds the commit and
their own approval in the run's lineage. Screenshots go to test-artifacts/ui/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.ui.ui_harness import GATE, commit, make_repo

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
ADMIN = "fpt_browser-test-admin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``flowplane server`` in a subprocess on a free port, with its own data dir."""
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
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited: {(tmp_path / 'server.log').read_text()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the server did not become ready in 60 s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield instance
        finally:
            instance.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def approve_in_browser(page: Page, server: str, token: str, plan: dict) -> None:
    """Sign in as the reviewer and approve ``plan`` with a comment."""
    page.goto(f"{server}/")
    expect(page).to_have_url(f"{server}/ui/signin?next=/ui/")
    page.fill("#token", token)
    page.click("button[type=submit]")
    expect(page.locator(".whoami")).to_have_text("rita")
    expect(page.locator(".card.attention")).to_contain_text("Add the release gate")
    shot(page, "01-dashboard")

    page.click(f"a[href='/ui/plans/{plan['id']}']")
    expect(page.locator("#plan-commit")).to_have_text(plan["target_commit"])
    expect(page.locator("table.diff tr.d-add").first).to_be_visible()
    shot(page, "02-plan-pending")
    page.fill("#comment", "Gate reviewed, ship it")
    page.click("#approve")
    expect(page.locator(".page-head h1 .badge")).to_have_text("applied")
    expect(page.locator("#reviews")).to_contain_text("Gate reviewed, ship it")
    shot(page, "03-plan-applied")


def resume_in_browser(page: Page, server: str, execution_id: str) -> None:
    """Fill the onResume form: first without the required reason, then completely."""
    page.goto(f"{server}/ui/executions/{execution_id}")
    expect(page.locator("#resume")).to_contain_text("approve")
    page.fill("#in-replicas", "2")
    page.click("#resume-button")  # without the required reason
    expect(page.locator(".field.has-error").first).to_be_visible()
    expect(page.locator("#resume")).to_contain_text("required STRING input is missing")
    shot(page, "04-resume-invalid")
    page.fill("#in-reason", "release 1.2 approved")
    page.fill("#in-replicas", "3")
    page.select_option("#in-dry_run", "false")
    page.select_option("#in-region", "eu-west")
    page.click("#resume-button")
    expect(page.locator("#state")).to_have_text("SUCCESS", timeout=20_000)
    expect(page.locator("tr.task-run[data-task='approve']")).to_contain_text("rita")
    shot(page, "05-execution-success")


def test_review_resume_and_lineage_in_a_browser(
    server: str, browser: Browser, tmp_path: Path
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server, headers=admin, timeout=30) as api:
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

        page = browser.new_page(viewport={"width": 1360, "height": 900})
        approve_in_browser(page, server, created.json()["token"], plan)
        assert api.get(f"/api/v1/plans/{plan['id']}").json()["status"] == "applied"

        run = api.post("/api/v1/executions/platform.ops/gate?wait=true", json={}).json()
        assert run["state"] == "PAUSED", run
        assert run["git_commit_sha"] == sha
        resume_in_browser(page, server, run["id"])

        page.click("#lineage > summary")
        lineage = page.locator("#lineage")
        expect(lineage.locator("#lineage-commit")).to_have_text(sha)
        expect(lineage).to_contain_text("rita")
        expect(lineage).to_contain_text("Gate reviewed, ship it")
        expect(lineage).to_contain_text("execution.resume")
        shot(page, "06-lineage")
        page.close()

        ended = api.get(f"/api/v1/executions/{run['id']}").json()
        pause = next(t for t in ended["task_runs"] if t["task_id"] == "approve")
        assert pause["resumed_by"] == "rita"
        assert pause["outputs"]["onResume"] == {
            "reason": "release 1.2 approved",
            "replicas": 3,
            "dry_run": False,
            "region": "eu-west",
        }
