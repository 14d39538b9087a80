"""Plugins that reach outside systems from the worker never use the server's own identity.

JDBC tasks and triggers connect from the worker (or the server's polling
loop): they must not log in with the server's libpq environment, its home
directory files or a Unix socket, nor reach Flowplane's own database. These
tests run real flows against a real PostgreSQL server (127.0.0.1:5432, trust
auth) on an app whose own database is PostgreSQL too (``OWN_DB``), whatever
database the rest of the suite uses.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from controlplane.api import create_app
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from controlplane.plugins.api import TaskFailedError
from controlplane.plugins.jdbc.connection import isolated
from controlplane.runners.process import run_process
from controlplane.runners.sandbox import Sandbox, default_work_root
from controlplane.services.own_database import ensure_not_server_database
from controlplane.services.polling import PollingTriggers
from controlplane.settings import Settings
from controlplane.store.db import migrate
from controlplane.store.tables import utcnow
from tests.conftest import ADMIN_TOKEN, bearer
from tests.plugins import pg_source
from tests.plugins.fake_servers import Reply, Request, serve
from tests.plugins.git_repos import GitHttpServer, commit, make_repo
from tests.services.test_engine import logs, put_flow, run, task_runs

OWN_DB = "flowplane_b1_sec"
OWN_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{OWN_DB}"
NS = "security.jdbc"


@pytest.fixture(scope="module")
def own_engine() -> Iterator[Engine]:
    """Flowplane's own database: PostgreSQL, on the server the flows can reach."""
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (OWN_DB,)).fetchone():
            admin.execute(f'CREATE DATABASE "{OWN_DB}"')
    engine = create_engine(OWN_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate(engine)
    pg_source.ensure_database()
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def own_client(
    own_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The API on ``own_engine``."""
    settings = Settings(
        database_url=str(own_engine.url),
        data_dir=tmp_path_factory.mktemp("data"),
        poll_sources=False,
        admin_token=ADMIN_TOKEN,
    )
    app = create_app(settings, engine=own_engine)
    with TestClient(app, headers=bearer(ADMIN_TOKEN)) as client:
        yield client


def _query_flow(flow_id: str, url: str, sql: str = "SELECT 1 AS one") -> str:
    return f"""\
id: {flow_id}
namespace: {NS}
tasks:
  - id: q
    type: io.kestra.plugin.jdbc.postgresql.Query
    url: "{url}"
    username: postgres
    sql: "{sql}"
    fetchType: FETCH_ONE
"""


@pytest.mark.parametrize(
    "host",
    ["localhost", "127.0.0.1", "[::1]", "0.0.0.0"],  # noqa: S104 - a flow's host
)
def test_a_query_cannot_reach_flowplanes_own_database(own_client: TestClient, host: str) -> None:
    flow_id = "own" + str(abs(hash(host)) % 1000)
    put_flow(
        own_client,
        _query_flow(flow_id, f"jdbc:postgresql://{host}:5432/{OWN_DB}", "SELECT * FROM api_tokens"),
    )
    execution = run(own_client, NS, flow_id)
    assert execution["state"] == "FAILED"
    text_ = "\n".join(logs(own_client, execution["id"]))
    assert "is Flowplane's own database; a flow may not connect to it" in text_


def test_another_database_on_the_same_server_is_reachable(own_client: TestClient) -> None:
    put_flow(own_client, _query_flow("other", pg_source.JDBC_URL))
    execution = run(own_client, NS, "other")
    assert execution["state"] == "SUCCESS", logs(own_client, execution["id"])


def test_the_trigger_cannot_poll_flowplanes_own_database(
    own_client: TestClient, own_engine: Engine
) -> None:
    data_dir = own_client.app.state.settings.data_dir  # type: ignore[attr-defined]
    source = f"""\
id: watch_own
namespace: {NS}
tasks:
  - id: log
    type: Log
    message: fired
triggers:
  - id: own
    type: io.kestra.plugin.jdbc.postgresql.Trigger
    url: jdbc:postgresql://127.0.0.1/{OWN_DB}
    username: postgres
    sql: SELECT name FROM api_tokens
    fetchType: FETCH
    interval: PT1H
"""  # noqa: S608 - a flow in YAML, its SQL written by the test
    put_flow(own_client, source)
    own_client.post("/api/v1/tokens", json={"name": "someone", "role": "reviewer"})
    poller = PollingTriggers(own_engine, data_dir)
    assert poller.run_pass(utcnow() + timedelta(hours=2)) == 0
    items = own_client.get("/api/v1/executions", params={"namespace": NS, "flow_id": "watch_own"})
    assert items.json() == []


@pytest.mark.parametrize(
    "url",
    [
        f"jdbc:postgresql://127.0.0.1/{OWN_DB}?host=/var/run/postgresql",
        "postgresql:///postgres",
        "jdbc:postgresql://h/postgres?host=@abstract",
    ],
)
def test_a_unix_socket_is_refused(own_client: TestClient, url: str) -> None:
    flow_id = "sock" + str(abs(hash(url)) % 1000)
    put_flow(own_client, _query_flow(flow_id, url))
    execution = run(own_client, NS, flow_id)
    assert execution["state"] == "FAILED"
    assert "url must name a network host: a Unix socket" in "\n".join(
        logs(own_client, execution["id"])
    )


def test_the_servers_libpq_environment_is_not_used(
    own_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before the fix libpq took these from the worker's environment: session
    # options, the server's password, its application name. (Values harmless to
    # the app's own engine, which reads the same environment.)
    monkeypatch.setenv("PGOPTIONS", "-c work_mem=1234kB")
    monkeypatch.setenv("PGPASSWORD", "server-password")
    monkeypatch.setenv("PGAPPNAME", "server-app")
    put_flow(
        own_client,
        _query_flow(
            "env",
            pg_source.JDBC_URL,
            "SELECT current_setting('work_mem') AS mem, current_setting('application_name') AS app",
        ),
    )
    execution = run(own_client, NS, "env")
    assert execution["state"] == "SUCCESS", logs(own_client, execution["id"])
    row = task_runs(execution)["q"]["outputs"]["row"]
    assert row == {"mem": "4MB", "app": "flowplane"}


def test_pgservice_on_the_worker_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # PGSERVICE cannot be overridden by a connection parameter: refuse instead.
    monkeypatch.setenv("PGSERVICE", "flowplane")
    with pytest.raises(TaskFailedError, match="the worker's environment sets PGSERVICE"):
        isolated({"host": "db.example", "user": "app"})


def test_libpq_reads_no_file_of_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSFILE", "/root/.pgpass")
    monkeypatch.setenv("PGSSLKEY", "/root/.postgresql/postgresql.key")
    monkeypatch.setenv("PGHOSTADDR", "10.255.255.1")
    params = isolated({"host": "db.example", "user": "app", "dbname": "shop"})
    for name in ("passfile", "sslcert", "sslkey", "sslrootcert", "sslcrl"):
        assert params[name].startswith("/nonexistent/"), name
    assert params["hostaddr"] == ""
    assert params["password"] == ""
    assert params["gssencmode"] == "disable"
    # A flow naming its own files keeps them.
    assert isolated({"host": "h", "user": "u", "sslrootcert": "/etc/ca.pem"})["sslrootcert"] == (
        "/etc/ca.pem"
    )


def test_own_database_is_recognised_by_every_local_name(tmp_path: Path) -> None:
    engine = create_engine("postgresql+psycopg://flowplane@127.0.0.1/flowplane")
    for host in ("localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "::ffff:127.0.0.1"):  # noqa: S104
        with pytest.raises(TaskFailedError, match="Flowplane's own database"):
            ensure_not_server_database(engine, host, 5432, "flowplane")
    ensure_not_server_database(engine, "localhost", 5433, "flowplane")
    ensure_not_server_database(engine, "localhost", 5432, "shop")
    ensure_not_server_database(engine, "db.example", 5432, "flowplane")
    socket_engine = create_engine("postgresql+psycopg:///flowplane?host=/var/run/postgresql")
    with pytest.raises(TaskFailedError):
        ensure_not_server_database(socket_engine, "localhost", 5432, "flowplane")
    # A SQLite server has no address a flow could name.
    sqlite = create_engine(f"sqlite:///{tmp_path / 'flowplane.db'}")
    ensure_not_server_database(sqlite, "localhost", 5432, "flowplane")


# --- the setuid sandbox --------------------------------------------------------------


@pytest.fixture
def shared_work_dir() -> Iterator[Path]:
    """A working directory the sandbox user can reach (pytest's tmp is root-only)."""
    with tempfile.TemporaryDirectory(prefix="flowplane-nnp-", dir="/tmp") as name:
        root = Path(name)
        root.chmod(0o755)
        yield root


@pytest.mark.skipif(os.geteuid() != 0, reason="the setuid sandbox needs a root worker")
def test_a_setuid_file_planted_in_the_working_directory_gives_no_root(
    shared_work_dir: Path,
) -> None:
    # What a root container could leave in a shared WorkingDirectory: a setuid-root copy.
    data = shared_work_dir / "data"
    data.mkdir()
    work = shared_work_dir / "work"
    work.mkdir()
    planted = work / "id"
    shutil.copy("/usr/bin/id", planted)
    planted.chmod(0o4755)
    sandbox = Sandbox(data_dir=data)
    sandbox.prepare(work, "setuid")
    launch = sandbox.launch(
        ["sh", "-c", "grep NoNewPrivs /proc/self/status; ./id"], cwd=work, env={}, mode="setuid"
    )
    lines: list[str] = []
    result = run_process(
        launch.argv,
        cwd=work,
        env=launch.env,
        on_line=lambda _level, line: lines.append(line),
        user=launch.user,
        group=launch.group,
    )
    assert result.exit_code == 0, lines
    assert "NoNewPrivs:\t1" in lines
    (ids,) = [line for line in lines if line.startswith("uid=")]
    assert ids.startswith("uid=65534")
    assert "euid=0" not in ids


# --- the Docker runner -----------------------------------------------------------------

PRIVATE_IMAGE = "registry.example:5000/private/app:1"
DOCKER_TASK = f"""\
id: pull
namespace: {NS}
tasks:
  - id: script
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: {PRIVATE_IMAGE}
    commands: [id]
    taskRunner:
      type: io.kestra.plugin.scripts.runner.docker.Docker
"""


def test_a_flow_cannot_name_the_docker_engine() -> None:
    source = DOCKER_TASK + "      host: tcp://collector.example:2375\n"
    with pytest.raises(
        InvalidFlowError, match="the Docker engine is set on the worker with DOCKER_HOST"
    ):
        validate_flow(source)


@dataclass
class FakeEngine:
    """The Docker Engine API's answers to a pull, written from the API reference.

    ``GET /version``; ``GET /images/{name}/json`` answers 404 (not present);
    ``POST /images/create`` records its ``X-Registry-Auth`` header and reports
    a failed pull in its progress stream, as the engine does.
    """

    url: str = ""
    registry_auth: list[str | None] = field(default_factory=list)


@pytest.fixture
def fake_engine() -> Iterator[FakeEngine]:
    engine = FakeEngine()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = (json.dumps(body) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.endswith("/version"):
                self._answer(200, {"ApiVersion": "1.41", "Version": "20.10.0"})
            else:
                self._answer(404, {"message": "No such image"})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if "/images/create" in self.path:
                engine.registry_auth.append(self.headers.get("X-Registry-Auth"))
                self._answer(200, {"error": "pull refused by the test engine"})
            else:
                self._answer(404, {"message": "not here"})

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    engine.url = f"tcp://127.0.0.1:{server.server_address[1]}"
    yield engine
    server.shutdown()
    server.server_close()


def test_a_pull_never_sends_the_workers_registry_credentials(
    client: TestClient, fake_engine: FakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker's own login to the private registry, as `docker login` leaves it.
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    login = base64.b64encode(b"server:server-registry-pw").decode()
    (config_dir / "config.json").write_text(
        json.dumps({"auths": {"registry.example:5000": {"auth": login}}}), encoding="utf-8"
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("DOCKER_HOST", fake_engine.url)
    put_flow(client, DOCKER_TASK)
    execution = run(client, NS, "pull")
    assert execution["state"] == "FAILED"
    assert any("pull refused by the test engine" in line for line in logs(client, execution["id"]))
    (header,) = fake_engine.registry_auth
    assert header is not None
    sent = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)).decode()
    assert "server-registry-pw" not in sent
    assert json.loads(sent) == {}


# --- git ---------------------------------------------------------------------------------

SSH_RECORDER = """#!/bin/sh
# Stands in for ssh: records what git gave it, then fails as an unreachable host would.
{{ echo "ARGS $*"; env; }} > "{record}"
exit 255
"""


def test_git_runs_without_the_servers_environment_keys_or_agent(
    client: TestClient, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path_factory.mktemp("bin")
    record = bin_dir / "ssh.record"
    ssh = bin_dir / "ssh"
    ssh.write_text(SSH_RECORDER.format(record=record), encoding="utf-8")
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FLOWPLANE_ADMIN_TOKEN", "server-admin-token-value")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/server-agent.sock")
    source = f"""\
id: ssh_clone
namespace: {NS}
tasks:
  - id: clone
    type: io.kestra.plugin.git.Clone
    url: ssh://git@git.example/org/repo.git
"""
    put_flow(client, source)
    execution = run(client, NS, "ssh_clone")
    assert execution["state"] == "FAILED"
    seen = record.read_text(encoding="utf-8")
    assert "server-admin-token-value" not in seen
    assert "SSH_AUTH_SOCK" not in seen
    assert "GIT_CONFIG_NOSYSTEM=1" in seen
    assert f"GIT_CONFIG_GLOBAL={os.devnull}" in seen
    args = next(line for line in seen.splitlines() if line.startswith("ARGS "))
    for option in ("-F /dev/null", "IdentitiesOnly=yes", "IdentityFile=/dev/null"):
        assert option in args
    home = next(line for line in seen.splitlines() if line.startswith("HOME="))
    assert "flowplane-git-home-" in home


def test_git_ignores_the_servers_git_configuration(
    client: TestClient, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server user's ~/.gitconfig adds its own token to every HTTP request.
    server_home = tmp_path_factory.mktemp("server-home")
    (server_home / ".gitconfig").write_text(
        "[http]\n\textraHeader = Authorization: Bearer server-git-token\n", encoding="utf-8"
    )
    monkeypatch.setenv("HOME", str(server_home))
    root = tmp_path_factory.mktemp("served")
    make_repo(root / "app.git")
    commit(root / "app.git", {"a.txt": "1"}, "one")
    server = GitHttpServer(root, "ada", "flow-password")
    try:
        source = f"""\
id: http_clone
namespace: {NS}
tasks:
  - id: clone
    type: io.kestra.plugin.git.Clone
    url: {server.url}/app.git
    username: ada
    password: flow-password
"""
        put_flow(client, source)
        execution = run(client, NS, "http_clone")
        assert execution["state"] == "SUCCESS", logs(client, execution["id"])
        assert not any("server-git-token" in seen for seen in server.seen_authorizations)
    finally:
        server.close()


def _another_executions_repo(work_root: Path) -> Path:
    """A repository in another execution's working directory on this worker."""
    repo = make_repo(work_root / f"other-{os.getpid()}-{threading.get_ident()}" / "repo")
    commit(repo, {"secret.txt": "theirs"}, "theirs")
    return repo


def test_clone_refuses_other_executions_working_directories(client: TestClient) -> None:
    work_root = client.app.state.workers[0].sandbox.work_root_dir()  # type: ignore[attr-defined]
    work_root.mkdir(parents=True, exist_ok=True)
    repo = _another_executions_repo(work_root)
    try:
        for flow_id, url in (("by_path", str(repo)), ("by_url", f"file://{repo}")):
            source = f"""\
id: {flow_id}
namespace: {NS}
tasks:
  - id: clone
    type: io.kestra.plugin.git.Clone
    url: {url}
"""
            put_flow(client, source)
            execution = run(client, NS, flow_id)
            assert execution["state"] == "FAILED", (flow_id, logs(client, execution["id"]))
            assert any(
                "the worker's working directories" in line for line in logs(client, execution["id"])
            )
    finally:
        shutil.rmtree(repo.parent)


def test_the_git_trigger_refuses_the_data_dir_and_working_directories(
    client: TestClient, engine: Engine
) -> None:
    data_dir: Path = client.app.state.settings.data_dir  # type: ignore[attr-defined]
    inside_data = make_repo(data_dir / "planted")
    commit(inside_data, {"a.txt": "1"}, "one")
    # The embedded worker's: the trigger finds the same root from the data directory.
    work_root = client.app.state.workers[0].sandbox.work_root_dir()  # type: ignore[attr-defined]
    assert work_root == default_work_root(data_dir)
    work_root.mkdir(parents=True, exist_ok=True)
    other = _another_executions_repo(work_root)
    try:
        for flow_id, repo in (("watch_data", inside_data), ("watch_work", other)):
            source = f"""\
id: {flow_id}
namespace: {NS}
tasks:
  - id: say
    type: Log
    message: "{{{{ trigger.commit }}}}"
triggers:
  - id: push
    type: io.flowplane.plugin.git.Trigger
    url: file://{repo}
    interval: PT1H
"""
            put_flow(client, source)
        poller = PollingTriggers(engine, data_dir)
        assert poller.run_pass(utcnow() + timedelta(hours=2)) == 0
        assert client.get("/api/v1/executions", params={"namespace": NS}).json() == []
    finally:
        shutil.rmtree(other.parent)


@pytest.mark.parametrize("mode", ["host", "container:flowplane-db", "Container:abc"])
def test_a_container_cannot_share_another_network_namespace(mode: str) -> None:
    source = DOCKER_TASK + f"      networkMode: '{mode}'\n"
    with pytest.raises(InvalidFlowError, match="may not share the host's or another container's"):
        validate_flow(source)


def test_a_templated_shared_network_mode_is_refused_at_run_time(client: TestClient) -> None:
    source = (
        DOCKER_TASK.replace("id: pull", "id: netmode")
        + "      networkMode: \"{{ 'ho' ~ 'st' }}\"\n"
    )
    put_flow(client, source)
    execution = run(client, NS, "netmode")
    assert execution["state"] == "FAILED"
    assert any(
        "networkMode 'host' is refused: a task's container may not share" in line
        for line in logs(client, execution["id"])
    )


# --- OpenAI --------------------------------------------------------------------------------


def _chat_completion(request: Request) -> Reply:
    """POST /v1/chat/completions, answered as OpenAI's API reference shows it."""
    body = request.json()
    return Reply(
        200,
        {
            "id": "chatcmpl-sec1",
            "object": "chat.completion",
            "created": 1741569952,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok", "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
    )


def test_openai_sends_none_of_the_servers_account_settings(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-of-the-server")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_of_the_server")
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-of-the-server")
    with serve(_chat_completion) as api:
        source = f"""\
id: ask
namespace: {NS}
tasks:
  - id: chat
    type: io.kestra.plugin.openai.ChatCompletion
    apiKey: sk-flow-key
    baseUrl: "{api.url}/v1"
    model: gpt-4o-mini
    prompt: hello
"""
        put_flow(client, source)
        execution = run(client, NS, "ask")
        assert execution["state"] == "SUCCESS", logs(client, execution["id"])
        (request,) = api.requests
    sent = json.dumps(request.headers).lower()
    assert "bearer sk-flow-key" in sent
    for value in ("org-of-the-server", "proj_of_the_server", "sk-admin-of-the-server"):
        assert value not in sent
    assert "openai-organization" not in sent
    assert "openai-project" not in sent


def test_openai_custom_headers_on_the_worker_are_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer sk-server")
    source = f"""\
id: ask_headers
namespace: {NS}
tasks:
  - id: chat
    type: io.kestra.plugin.openai.ChatCompletion
    apiKey: sk-flow-key
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o-mini
    prompt: hello
"""
    put_flow(client, source)
    execution = run(client, NS, "ask_headers")
    assert execution["state"] == "FAILED"
    assert any(
        "the worker's environment sets OPENAI_CUSTOM_HEADERS" in line
        for line in logs(client, execution["id"])
    )
