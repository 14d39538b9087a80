"""The git family runs real flows against real repositories (made with ``git`` in tmp dirs).

Clones come from ``file://`` URLs and from a local smart-HTTP server (``git
http-backend`` behind basic auth), so credentials go through git's real
prompt; the password, a namespace secret, must appear in no log or output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from controlplane.services.polling import PollingTriggers
from controlplane.store.tables import utcnow
from tests.plugins.git_repos import GitHttpServer, commit, git, make_repo
from tests.services.test_engine import logs, put_flow, run, task_runs, wait_for_end

RUNS: dict[str, str] = {
    "io.kestra.plugin.git.Clone": "test_clone_into_a_working_directory_the_next_task_reads",
}
# Polling trigger types are not task types; test_every_type_runs does not read this yet.
TRIGGER_RUNS: dict[str, str] = {
    "io.flowplane.plugin.git.Trigger": "test_trigger_fires_once_per_new_head_commit",
}
NS = "git.demo"
PASSWORD = "git-token-h4-secret-5519"  # noqa: S105 - a test value, not a secret


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("git")
    path = make_repo(root / "served" / "app.git")
    first = commit(path, {"README.md": "version one\n"}, "first")
    git(path, "tag", "v1")
    second = commit(path, {"README.md": "version two\n", "src/app.txt": "app\n"}, "second")
    git(path, "checkout", "--quiet", "-b", "feature")
    feature = commit(path, {"README.md": "feature work\n"}, "feature")
    git(path, "checkout", "--quiet", "main")
    return {"path": path, "first": first, "second": second, "feature": feature}


@pytest.fixture(scope="module")
def http(repo: dict[str, Any]) -> Iterator[GitHttpServer]:
    server = GitHttpServer(repo["path"].parent, "ada", PASSWORD)
    yield server
    server.close()


def _put_secret(client: TestClient) -> None:
    response = client.put(f"/api/v1/namespaces/{NS}/secrets/GIT_TOKEN", json={"value": PASSWORD})
    assert response.status_code in {200, 201}, response.text


def _secret_nowhere(client: TestClient, execution: dict[str, Any]) -> None:
    body = client.get(f"/api/v1/executions/{execution['id']}").json()
    assert PASSWORD not in json.dumps(body)
    assert PASSWORD not in "\n".join(logs(client, execution["id"]))


def test_clone_into_a_working_directory_the_next_task_reads(
    client: TestClient, repo: dict[str, Any]
) -> None:
    source = f"""\
id: clone
namespace: {NS}
tasks:
  - id: wdir
    type: WorkingDirectory
    tasks:
      - id: clone
        type: io.kestra.plugin.git.Clone
        url: file://{repo["path"]}
        branch: main
      - id: read
        type: shell.Commands
        commands:
          - cat README.md src/app.txt
"""
    put_flow(client, source)
    execution = run(client, NS, "clone")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    text = logs(client, execution["id"])
    assert "version two" in text
    assert "app" in text
    directory = Path(task_runs(execution)["clone"]["outputs"]["directory"])
    # Kestra's default clone is shallow: one commit of history.
    assert git(directory, "rev-list", "--count", "HEAD") == "1"
    assert git(directory, "rev-parse", "HEAD") == repo["second"]


def test_clone_a_tag_a_commit_and_a_branch_over_http_with_a_secret_password(
    client: TestClient, repo: dict[str, Any], http: GitHttpServer
) -> None:
    _put_secret(client)
    url = f"{http.url}/app.git"
    auth = "username: ada\n    password: \"{{ secret('GIT_TOKEN') }}\""
    source = f"""\
id: pinned
namespace: {NS}
tasks:
  - id: tag
    type: io.kestra.plugin.git.Clone
    url: {url}
    {auth}
    tag: v1
    directory: at-tag
  - id: commit
    type: io.kestra.plugin.git.Clone
    url: {url}
    {auth}
    commit: "{repo["first"][:10]}"
    noTags: true
    directory: at-commit
  - id: branch
    type: io.kestra.plugin.git.Clone
    url: {url}
    {auth}
    branch: feature
    depth: 2
    cloneAllBranches: false
    directory: feature
    trustedCaPemPath: /etc/ssl/certs/ca-certificates.crt
    gitConfig:
      core.fileMode: false
      user.name: Flowplane
"""
    put_flow(client, source)
    execution = run(client, NS, "pinned")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = {
        task: Path(row["outputs"]["directory"]) for task, row in task_runs(execution).items()
    }
    assert (outputs["tag"] / "README.md").read_text() == "version one\n"
    assert git(outputs["commit"], "rev-parse", "HEAD") == repo["first"]
    assert git(outputs["commit"], "tag", "--list") == ""  # noTags
    assert git(outputs["tag"], "tag", "--list") == "v1"
    assert (outputs["branch"] / "README.md").read_text() == "feature work\n"
    assert git(outputs["branch"], "rev-list", "--count", "HEAD") == "2"
    assert git(outputs["branch"], "branch", "--remotes") == "origin/feature"
    assert git(outputs["branch"], "config", "--local", "core.filemode") == "false"
    assert git(outputs["branch"], "config", "--local", "user.name") == "Flowplane"
    assert git(outputs["branch"], "config", "--local", "http.sslCAInfo") == (
        "/etc/ssl/certs/ca-certificates.crt"
    )
    _secret_nowhere(client, execution)
    # The credentials were asked for and sent by git itself, never a wrong guess.
    assert http.seen_authorizations == []


def test_no_proxy_bypasses_the_proxy_the_worker_is_given(
    client: TestClient, http: GitHttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put_secret(client)
    # A proxy nobody listens on: only a clone that bypasses it can succeed.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    clone = (
        "    type: io.kestra.plugin.git.Clone\n"
        f"    url: {http.url}/app.git\n"
        "    username: ada\n"
        "    password: \"{{ secret('GIT_TOKEN') }}\""
    )
    source = f"""\
id: proxied
namespace: {NS}
tasks:
  - id: direct
{clone}
    noProxy: true
    directory: direct
  - id: through_proxy
{clone}
    directory: proxied
    allowFailure: true
"""
    put_flow(client, source)
    execution = run(client, NS, "proxied")
    states = {task: row["state"] for task, row in task_runs(execution).items()}
    assert states == {"direct": "SUCCESS", "through_proxy": "WARNING"}, logs(
        client, execution["id"]
    )
    assert "127.0.0.1 port 9" in "\n".join(logs(client, execution["id"]))


def test_clone_submodules_fetches_them_with_the_same_credentials(
    client: TestClient, repo: dict[str, Any], http: GitHttpServer
) -> None:
    _put_secret(client)
    outer = make_repo(repo["path"].parent / "outer.git")
    git(
        outer,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "--quiet",
        f"file://{repo['path']}",
        "lib",
    )
    git(outer, "config", "--file", ".gitmodules", "submodule.lib.url", f"{http.url}/app.git")
    commit(outer, {"top.txt": "outer\n"}, "with a submodule")
    source = f"""\
id: nested
namespace: {NS}
tasks:
  - id: clone
    type: io.kestra.plugin.git.Clone
    url: {http.url}/outer.git
    username: ada
    password: "{{{{ secret('GIT_TOKEN') }}}}"
    cloneSubmodules: true
"""
    put_flow(client, source)
    execution = run(client, NS, "nested")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    directory = Path(task_runs(execution)["clone"]["outputs"]["directory"])
    assert (directory / "top.txt").read_text() == "outer\n"
    assert (directory / "lib" / "README.md").read_text() == "version two\n"
    _secret_nowhere(client, execution)


def test_a_failed_clone_names_the_problem_without_the_password(
    client: TestClient, http: GitHttpServer
) -> None:
    _put_secret(client)
    source = f"""\
id: missing
namespace: {NS}
tasks:
  - id: clone
    type: io.kestra.plugin.git.Clone
    url: {http.url}/app.git
    username: someone-else
    password: "{{{{ secret('GIT_TOKEN') }}}}"
"""
    put_flow(client, source)
    execution = run(client, NS, "missing")
    assert execution["state"] == "FAILED"
    assert "git clone failed" in "\n".join(logs(client, execution["id"]))
    _secret_nowhere(client, execution)


def test_clone_refuses_the_server_data_directory_and_command_transports(
    client: TestClient,
) -> None:
    data_dir = client.app.state.settings.data_dir  # type: ignore[attr-defined]
    source = f"""\
id: sneaky
namespace: {NS}
tasks:
  - id: data
    type: io.kestra.plugin.git.Clone
    url: file://{data_dir}/git
    allowFailure: true
  - id: ext
    type: io.kestra.plugin.git.Clone
    url: "ext::sh -c touch% /tmp/pwned"
"""
    put_flow(client, source)
    execution = run(client, NS, "sneaky")
    assert execution["state"] == "FAILED"
    text = "\n".join(logs(client, execution["id"]))
    assert "url points into the server's data directory" in text
    assert "transport helpers (such as ext::) are not allowed" in text
    assert not Path("/tmp/pwned").exists()  # noqa: S108 - the path the attack would write


def test_clone_refuses_what_it_cannot_honour() -> None:
    source = f"""\
id: keys
namespace: {NS}
tasks:
  - id: clone
    type: io.kestra.plugin.git.Clone
    url: git@example.com:org/repo.git
    privateKey: "-----BEGIN KEY-----"
"""
    with pytest.raises(InvalidFlowError, match="privateKey is not supported"):
        validate_flow(source)


def test_trigger_fires_once_per_new_head_commit(
    client: TestClient, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Outside the server's data directory (the client's tmp_path), which is refused.
    repo = make_repo(tmp_path_factory.mktemp("watched") / "repo")
    first = commit(repo, {"a.txt": "1"}, "one")
    source = f"""\
id: on_push
namespace: {NS}
tasks:
  - id: say
    type: Log
    message: "built {{{{ trigger.commit }}}} of {{{{ trigger.branch }}}}"
triggers:
  - id: push
    type: io.flowplane.plugin.git.Trigger
    url: file://{repo}
    branch: main
    interval: PT1H
"""
    put_flow(client, source)
    data_dir = client.app.state.settings.data_dir  # type: ignore[attr-defined]
    poller = PollingTriggers(engine, data_dir)
    now = utcnow()
    poller.run_pass(now)
    poller.run_pass(now + timedelta(hours=2))  # same head: no second run
    second = commit(repo, {"a.txt": "2"}, "two")
    poller.run_pass(now + timedelta(hours=4))
    items = client.get("/api/v1/executions", params={"namespace": NS, "flow_id": "on_push"}).json()
    assert sorted(item["trigger"]["commit"] for item in items) == sorted([first, second])
    for item in items:
        execution = wait_for_end(client, item["id"])
        assert execution["state"] == "SUCCESS"
        sha = item["trigger"]["commit"]
        assert f"built {sha} of main" in logs(client, item["id"])
        assert item["trigger"]["type"] == "io.flowplane.plugin.git.Trigger"


def test_trigger_reads_a_private_remote_over_http(
    client: TestClient, engine: Engine, repo: dict[str, Any], http: GitHttpServer
) -> None:
    _put_secret(client)
    source = f"""\
id: private
namespace: {NS}
tasks:
  - {{id: say, type: Log, message: "{{{{ trigger.commit }}}}"}}
triggers:
  - id: push
    type: git.Trigger
    url: {http.url}/app.git
    username: ada
    password: "{{{{ secret('GIT_TOKEN') }}}}"
    interval: PT1H
"""
    put_flow(client, source)
    data_dir = client.app.state.settings.data_dir  # type: ignore[attr-defined]
    PollingTriggers(engine, data_dir).run_pass(utcnow() + timedelta(hours=2))
    items = client.get("/api/v1/executions", params={"namespace": NS, "flow_id": "private"}).json()
    assert len(items) == 1
    # No branch given: the remote's default branch (HEAD), which is main.
    assert items[0]["trigger"]["commit"] == repo["second"]
    assert items[0]["trigger"]["branch"] == "main"
    _secret_nowhere(client, wait_for_end(client, items[0]["id"]))
