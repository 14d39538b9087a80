from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyrage
import pytest
from typer.testing import CliRunner

from controlplane.cli import app
from tests import live_server
from tests.live_server import free_port
from tests.services.test_gitops import commit, git

REFERENCING_FLOW = """\
id: uses
namespace: platform.ops
tasks:
  - id: log
    type: Log
    message: "{{ secret('TOKEN') }}"
"""

runner = CliRunner()


def test_validate_reports_file_line_col_and_exits_1(tmp_path: Path) -> None:
    good = tmp_path / "flows" / "good.yaml"
    good.parent.mkdir()
    good.write_text("id: good\nnamespace: ns\ntasks:\n  - {id: a, type: Log, message: hi}\n")
    bad = tmp_path / "flows" / "bad.yml"
    bad.write_text("id: bad\nnamespace: ns\ntasks:\n  - id: a\n    type: Log\n")
    result = runner.invoke(app, ["validate", str(tmp_path / "flows")])
    assert result.exit_code == 1
    assert f"{bad}:4:5: tasks[0].message: required property is missing" in result.stdout
    assert str(good) not in result.stdout


def test_validate_passes_valid_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("id: good\nnamespace: ns\ntasks:\n  - {id: a, type: Log, message: hi}\n")
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.output


def test_validate_refuses_non_utf8_and_missing_files(tmp_path: Path) -> None:
    odd = tmp_path / "odd.yaml"
    odd.write_bytes(b"id: \xff\n")
    result = runner.invoke(app, ["validate", str(odd), str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "not valid UTF-8" in result.stdout
    assert "no such file" in result.stdout


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("flowplane ")


# --- commands that talk to a real server process -------------------------------------

ADMIN = "fpt_cli-test-admin"


@contextmanager
def server_process(
    data_dir: Path, *extra: str, env_extra: dict[str, str] | None = None
) -> Iterator[str]:
    """``flowplane server`` in a subprocess; yields its URL once /healthz answers.

    Its stdout and stderr go to ``server-<port>.log`` beside ``data_dir``.
    """
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data_dir),
        "FLOWPLANE_ADMIN_TOKEN": ADMIN,
        "FLOWPLANE_POLL_SOURCES": "false",
        "FLOWPLANE_SCHEDULER": "false",
        **(env_extra or {}),
    }
    command = [str(Path(sys.executable).parent / "flowplane"), "server", "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--workers", "0", *extra]
    url = f"http://127.0.0.1:{port}"
    log_path = data_dir.parent / f"server-{port}.log"
    with live_server.server_process(command, env, log_path, probe=f"{url}/healthz", seconds=60):
        yield url


def api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)


def test_secrets_encrypt_sync_and_review_through_the_cli(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, {"flows/platform.ops/uses.yaml": REFERENCING_FLOW}, "flow")
    data_dir = tmp_path / "data"
    with server_process(data_dir) as url, api(url) as client:
        values = tmp_path / "values.yaml"
        values.write_text("TOKEN: t-Qx91-unique\n")
        sealed = repo / "secrets" / "platform.ops.age"
        command = ["secrets", "encrypt", str(values), "-o", str(sealed)]
        # The server made its identity on first start; a directory without one is refused
        # (encrypting to a made-up key would only fail later, on the server).
        assert (data_dir / "identity.age").exists()
        empty = runner.invoke(app, [*command, "--data-dir", str(tmp_path / "elsewhere")])
        assert empty.exit_code == 2
        assert "no server identity" in empty.output
        recipient = runner.invoke(app, ["secrets", "recipient", "--data-dir", str(data_dir)])
        assert recipient.stdout.startswith("age1")
        encrypted = runner.invoke(app, [*command, "--recipient", recipient.stdout.strip()])
        assert encrypted.exit_code == 0, encrypted.output
        from_dir = runner.invoke(app, [*command, "--data-dir", str(data_dir)])
        assert from_dir.exit_code == 0, from_dir.output
        from_server = runner.invoke(
            app, [*command, "--server", url], env={"FLOWPLANE_TOKEN": ADMIN}
        )
        assert from_server.exit_code == 0, from_server.output
        assert recipient.stdout.strip() in from_server.output
        assert b"t-Qx91-unique" not in sealed.read_bytes()
        commit(repo, {}, "secret")
        body = {"url": f"file://{repo}", "approval": "approval"}
        assert client.put("/api/v1/sources/flows", json=body).status_code == 201

        env = {"FLOWPLANE_TOKEN": ADMIN}
        unauthenticated = runner.invoke(app, ["sync", "flows", "--server", url])
        assert unauthenticated.exit_code == 2
        assert "401" in unauthenticated.output
        synced = runner.invoke(app, ["sync", "flows", "--server", url], env=env)
        assert synced.exit_code == 0, synced.output
        assert "+ secret platform.ops/TOKEN: added (sensitive)" in synced.output
        plan_id = client.get("/api/v1/plans").json()[0]["id"]
        assert f"plan {plan_id} (sync): pending" in synced.output

        approved = runner.invoke(
            app, ["plans", "approve", plan_id, "--comment", "ok", "--server", url], env=env
        )
        assert approved.exit_code == 0, approved.output
        assert f"plan {plan_id} (sync): applied" in approved.output
        secret = client.get("/api/v1/namespaces/platform.ops/secrets/TOKEN").json()
        assert secret["origin"] == "git:flows"
        assert client.get("/api/v1/plans").json()[0]["approvals"][0]["comment"] == "ok"

        renamed = REFERENCING_FLOW.replace("id: log", "id: say")
        commit(repo, {"flows/platform.ops/uses.yaml": renamed}, "2")
        runner.invoke(app, ["sync", "flows", "--server", url], env=env)
        second = client.get("/api/v1/plans").json()[0]
        rejected = runner.invoke(app, ["plans", "reject", second["id"], "--server", url], env=env)
        assert rejected.exit_code == 0, rejected.output
        assert "rejected" in rejected.output


def test_secrets_encrypt_to_a_given_recipient_and_refuses_non_strings(tmp_path: Path) -> None:
    identity = pyrage.x25519.Identity.generate()
    out = tmp_path / "ns.age"
    done = runner.invoke(
        app,
        ["secrets", "encrypt", "-", "-o", str(out), "--recipient", str(identity.to_public())],
        input="A: one\nB: two\n",
    )
    assert done.exit_code == 0, done.output
    assert pyrage.decrypt(out.read_bytes(), [identity]) == b"A: one\nB: two\n"
    refused = runner.invoke(
        app,
        ["secrets", "encrypt", "-", "-o", str(tmp_path / "x.age"), "--recipient", "age1bad"],
        input="A: 5\n",
    )
    assert refused.exit_code == 1
    assert "the value of 'A' is a int, not a string" in refused.output


def test_server_watch_applies_a_directory_on_change(tmp_path: Path) -> None:
    work = tmp_path / "work"
    flow_file = work / "flows" / "platform.ops" / "uses.yaml"
    flow_file.parent.mkdir(parents=True)
    flow_file.write_text(REFERENCING_FLOW.replace("{{ secret('TOKEN') }}", "first"))
    with server_process(tmp_path / "data", "--watch", str(work)) as url, api(url) as client:
        live = client.get("/api/v1/flows/platform.ops/uses").json()
        assert (live["revision"], live["origin"]) == (1, f"local:{work.resolve()}")
        flow_file.write_text(REFERENCING_FLOW.replace("{{ secret('TOKEN') }}", "second"))
        deadline = time.monotonic() + 30
        while client.get("/api/v1/flows/platform.ops/uses").json()["revision"] == 1:
            if time.monotonic() > deadline:
                pytest.fail("the watched change was never applied")
            time.sleep(0.1)
        assert "second" in client.get("/api/v1/flows/platform.ops/uses").json()["content"]
        local = client.get("/api/v1/plans", params={"source_id": "local"}).json()
        assert {p["kind"] for p in local} == {"local"}


PROCESS_FLOW = "id: hello\nnamespace: demo\ntasks:\n  - {id: t, type: Return, format: hi}\n"


def _run_to_end(client: httpx.Client) -> dict[str, object]:
    run = client.post("/api/v1/executions/demo/hello", json={})
    assert run.status_code == 201, run.text
    deadline = time.monotonic() + 60
    while True:
        body = client.get(f"/api/v1/executions/{run.json()['id']}").json()
        if body["state"] == "SUCCESS" or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def _worker_pids(data_dir: Path) -> list[int]:
    """Processes running `controlplane.cli worker` with ``data_dir`` in their environment."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        marker = f"FLOWPLANE_DATA_DIR={data_dir.resolve()}".encode()
        if command[-2:-1] == [b"worker"] and marker in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


def test_the_server_runs_its_workers_as_processes_and_starts_again_one_that_died(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    # `server_process` passes --workers 0: only a worker process can run anything here.
    with server_process(data_dir, "--worker-processes", "1") as url, api(url) as client:
        put = client.put("/api/v1/flows/demo/hello", json={"content": PROCESS_FLOW})
        assert put.status_code == 201, put.text
        assert _run_to_end(client)["state"] == "SUCCESS"
        (first,) = _worker_pids(data_dir)
        os.kill(first, 9)
        assert _run_to_end(client)["state"] == "SUCCESS"
        (second,) = _worker_pids(data_dir)
        assert second != first
    assert _worker_pids(data_dir) == []  # the server stopped its worker on the way out


def test_the_worker_processes_end_with_a_server_killed_outright(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with server_process(data_dir, "--worker-processes", "1"):
        deadline = time.monotonic() + 60
        while not _worker_pids(data_dir):
            assert time.monotonic() < deadline, "no worker process started"
            time.sleep(0.1)
        (worker,) = _worker_pids(data_dir)
        status = Path(f"/proc/{worker}/status").read_text()
        server = int(status.split("PPid:")[1].split()[0])
        os.kill(server, 9)  # no shutdown: its stop() never runs
        deadline = time.monotonic() + 30
        while _worker_pids(data_dir):
            assert time.monotonic() < deadline, "the worker outlived its server"
            time.sleep(0.1)
