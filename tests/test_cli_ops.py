"""The operator CLI (login, contexts, list/show, run) against a live uvicorn server."""

from __future__ import annotations

import json
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
import yaml
from typer.testing import CliRunner

from controlplane.api import create_app
from controlplane.cli import app
from tests.conftest import ADMIN_TOKEN, bearer
from tests.live_server import live_settings, serve_in_thread
from tests.services.test_gitops import commit, git

runner = CliRunner()

HELLO = """\
id: hello
namespace: cli.ops
inputs:
  - id: who
    type: STRING
    defaults: world
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.who }}"
"""
BROKEN = """\
id: broken
namespace: cli.ops
tasks:
  - id: boom
    type: io.kestra.plugin.core.execution.Fail
    errorMessage: on purpose
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn in a thread on a free port, SQLite in tmp, one embedded worker."""
    # The server logs from this process; keep its lines out of the CLI output under test.
    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.__stderr__))
    application = create_app(live_settings(tmp_path_factory.mktemp("live"), workers=1))
    with serve_in_thread(application) as url:
        with httpx.Client(base_url=url, headers=bearer(ADMIN_TOKEN)) as admin:
            for flow_id, body in (("hello", HELLO), ("broken", BROKEN)):
                answer = admin.put(
                    f"/api/v1/flows/cli.ops/{flow_id}",
                    content=body,
                    headers={"Content-Type": "application/x-yaml"},
                )
                assert answer.status_code in {200, 201}, answer.text
        yield url
    structlog.configure(**saved)


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test has its own contexts file and no server or token from the environment."""
    path = tmp_path / "config" / "contexts.yaml"
    monkeypatch.setenv("FLOWPLANE_CONFIG", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("FLOWPLANE_URL", "FLOWPLANE_ENDPOINT", "FLOWPLANE_PORT", "FLOWPLANE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return path


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def login(url: str) -> None:
    cli("login", url, "--token", ADMIN_TOKEN, "--name", "test")


def test_login_saves_a_private_context_and_later_commands_use_it(live: str, config: Path) -> None:
    said = cli("login", live, "--token", ADMIN_TOKEN, "--name", "dev")
    assert "as admin" in said
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    saved = yaml.safe_load(config.read_text())
    assert saved["current"] == "dev"
    assert saved["contexts"]["dev"] == {"server": live, "token": ADMIN_TOKEN}
    # No --server, no $FLOWPLANE_TOKEN: the context supplies both.
    flows = json.loads(cli("flows", "list", "-o", "json"))
    assert {f["id"] for f in flows["items"]} >= {"hello", "broken"}
    listed = json.loads(cli("context", "-o", "json"))
    assert listed == [{"current": "*", "name": "dev", "server": live}]
    assert ADMIN_TOKEN not in cli("context", "-o", "yaml")


def test_login_refuses_a_bad_token_and_saves_nothing(live: str, config: Path) -> None:
    said = cli("login", live, "--token", "fpt_wrong", code=2)
    assert "401" in said
    assert not config.exists()


def test_context_switches_and_never_sends_a_token_to_another_server(live: str) -> None:
    login(live)
    cli("login", live, "--token", ADMIN_TOKEN, "--name", "other")
    assert "switched to 'test'" in cli("context", "test")
    assert "* test" in " ".join(cli("context").split()).replace("*  test", "* test")
    cli("context", "nope", code=2)
    # A server with no saved context gets no token: the context's token stays home.
    refused = runner.invoke(
        app, ["flows", "list", "--server", live.replace("127.0.0.1", "localhost")]
    )
    assert refused.exit_code == 2
    assert "401" in refused.output


def test_cli_honours_flowplane_port_and_url(live: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWPLANE_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("FLOWPLANE_PORT", live.rsplit(":", 1)[1])
    # `sync` predates the operator commands: it used to go to 8080 whatever the port.
    by_port = runner.invoke(app, ["sync", "nope"])
    assert "404" in by_port.output, by_port.output
    monkeypatch.setenv("FLOWPLANE_PORT", "1")
    monkeypatch.setenv("FLOWPLANE_URL", live)
    by_url = runner.invoke(app, ["sync", "nope"])
    assert "404" in by_url.output, by_url.output


def test_flows_list_and_show_in_every_format(live: str) -> None:
    login(live)
    table = cli("flows", "list", "--namespace", "cli.ops")
    assert "hello" in table
    assert "broken" in table
    shown = cli("flows", "show", "cli.ops", "hello")
    assert "revision: 1" in shown
    assert 'message: "hello {{ inputs.who }}"' in shown
    as_yaml = yaml.safe_load(cli("flows", "show", "cli.ops", "hello", "-o", "yaml"))
    assert as_yaml["content"] == HELLO
    missing = cli("flows", "show", "cli.ops", "nope", code=2)
    assert "404" in missing


def test_run_waits_and_exits_with_the_runs_state(live: str) -> None:
    login(live)
    done = json.loads(cli("run", "cli.ops", "hello", "--input", "who=ops", "--wait", "-o", "json"))
    assert done["state"] == "SUCCESS"
    assert done["inputs"]["who"] == "ops"
    failed = runner.invoke(app, ["run", "cli.ops", "broken", "--wait"])
    assert failed.exit_code == 1, failed.output
    assert "FAILED" in failed.output
    followed = cli("run", "cli.ops", "hello", "-i", "who=follower", "--follow")
    assert "hello follower" in followed
    assert "SUCCESS" in followed
    started = cli("run", "cli.ops", "hello")
    assert started.startswith("started ")
    cli("run", "cli.ops", "hello", "--input", "novalue", code=2)


def test_executions_list_show_and_logs(live: str) -> None:
    login(live)
    run = json.loads(cli("run", "cli.ops", "hello", "-i", "who=logs", "--wait", "-o", "json"))
    listed = json.loads(cli("executions", "list", "--flow", "hello", "-o", "json"))
    assert run["id"] in {e["id"] for e in listed}
    shown = cli("executions", "show", run["id"])
    assert "greet" in shown
    assert "SUCCESS" in shown
    assert "hello logs" in cli("executions", "logs", run["id"])
    followed = cli("executions", "logs", run["id"], "--follow")
    assert "hello logs" in followed
    assert "ended: SUCCESS" in followed
    lines = yaml.safe_load(cli("executions", "logs", run["id"], "-o", "yaml"))
    assert any(line["message"] == "hello logs" for line in lines)


def test_sources_and_plans_show_the_diff_before_approval(live: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    first = commit(repo, {"flows/cli.git/hello.yaml": HELLO.replace("cli.ops", "cli.git")}, "one")
    login(live)
    with httpx.Client(base_url=live, headers=bearer(ADMIN_TOKEN)) as admin:
        body = {"url": f"file://{repo}", "approval": "approval"}
        assert admin.put("/api/v1/sources/clisrc", json=body).status_code == 201
    synced = json.loads(cli("sources", "sync", "clisrc", "-o", "json"))
    assert synced["status"] == "pending"
    plans = json.loads(cli("plans", "list", "--source", "clisrc", "-o", "json"))
    assert plans[0]["id"] == synced["id"]
    shown = cli("plans", "show", synced["id"])
    assert "status: pending" in shown
    assert "cli.git/hello" in shown
    assert '+    message: "hello {{ inputs.who }}"' in shown
    assert "+" in shown
    cli("plans", "approve", synced["id"])
    assert "clisrc" in cli("sources", "list")
    assert f"file://{repo}" in cli("sources", "show", "clisrc")
    assert "in sync" in cli("sources", "drift", "clisrc")
    commit(repo, {"flows/cli.git/hello.yaml": HELLO.replace("cli.ops", "cli.git") + "# two\n"}, "2")
    second = json.loads(cli("sources", "sync", "clisrc", "-o", "json"))
    cli("plans", "approve", second["id"])
    back = json.loads(cli("sources", "rollback", "clisrc", first, "-o", "json"))
    assert back["kind"] == "rollback"
    assert back["target_commit"] == first


def test_tokens_create_list_and_revoke(live: str) -> None:
    login(live)
    made = json.loads(
        cli("tokens", "create", "ci-bot", "--role", "viewer", "-n", "cli.*", "-o", "json")
    )
    assert made["token"].startswith("fpt_")
    assert made["id"] in cli("tokens", "list")
    cli("tokens", "revoke", made["id"])
    with httpx.Client(base_url=live, headers=bearer(made["token"])) as revoked:
        assert revoked.get("/api/v1/whoami").status_code == 401


def test_namespaces_list(live: str) -> None:
    login(live)
    with httpx.Client(base_url=live, headers=bearer(ADMIN_TOKEN)) as admin:
        admin.put("/api/v1/namespaces/cli.ops", json={"description": "the CLI's tests"})
    listed = json.loads(cli("namespaces", "list", "-o", "json"))
    assert "cli.ops" in {n["name"] for n in listed["items"]}
    assert "the CLI's tests" in cli("namespaces", "list")


def test_secrets_recipient_outside_a_data_dir_asks_the_server(
    live: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(live)
    with httpx.Client(base_url=live, headers=bearer(ADMIN_TOKEN)) as admin:
        expected = admin.get("/api/v1/secrets/recipient").json()["recipient"]
    said = cli("secrets", "recipient")
    assert said.strip() == expected
    # It used to make a fresh identity in ./flowplane-data and print that key instead.
    assert not (tmp_path / "flowplane-data").exists()
    refused = cli("secrets", "recipient", "--data-dir", str(tmp_path / "empty"), code=2)
    assert "no server identity" in refused
    assert not (tmp_path / "empty" / "identity.age").exists()


def test_audit_verify_outside_the_checkout_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 2
    assert "no Flowplane database in" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "flowplane-data" / "flowplane.db").exists()


def test_audit_verify_reports_an_unreadable_database(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a.db"
    bogus.write_text("this is not SQLite")
    result = runner.invoke(app, ["audit", "verify", "--database-url", f"sqlite:///{bogus}"])
    assert result.exit_code == 2
    assert "cannot read the audit log" in result.output


GATED = """\
id: gated
namespace: cli.ops
tasks:
  - id: approve
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: reason
        type: STRING
  - id: after
    type: io.kestra.plugin.core.log.Log
    message: "resumed: {{ outputs.approve.onResume.reason }}"
"""


def test_flows_apply_then_a_paused_run_is_resumed(live: str, tmp_path: Path) -> None:
    login(live)
    source = tmp_path / "gated.yaml"
    source.write_text(GATED)
    applied = json.loads(cli("flows", "apply", str(source), "-o", "json"))
    assert [(f["id"], f["revision"]) for f in applied] == [("gated", 1)]
    assert json.loads(cli("flows", "apply", str(source), "-o", "json"))[0]["revision"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nnamespace: cli.ops\ntasks:\n  - id: a\n    type: Lgo\n")
    assert "422" in cli("flows", "apply", str(bad), code=2)

    started = json.loads(cli("run", "cli.ops", "gated", "-o", "json"))
    deadline = time.monotonic() + 30
    while json.loads(cli("executions", "show", started["id"], "-o", "json"))["state"] != "PAUSED":
        assert time.monotonic() < deadline, "the run never paused"
        time.sleep(0.1)
    cli("executions", "resume", started["id"], "--input", "reason=ship it")
    deadline = time.monotonic() + 30
    while json.loads(cli("executions", "show", started["id"], "-o", "json"))["state"] != "SUCCESS":
        assert time.monotonic() < deadline, "the resumed run never ended"
        time.sleep(0.1)
    assert "resumed: ship it" in cli("executions", "logs", started["id"])
