"""Script tasks run sandboxed: a flow author reaches none of the server's secrets or files.

The attacker is an ``editor`` token scoped to ``sandbox.*``: it may write and run
flows there, so it can run any shell command in a script task. Through the API it
tries what a real attacker tried (the server's environment, other processes'
``/proc/*/environ``, the data directory, the age identity, the database file);
a marker echoed by the same script proves it did run. The limits are checked
through a real worker whose sandbox has small limits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.api import create_app
from controlplane.plugins.scripts import tasks as script_tasks
from controlplane.runners.sandbox import Sandbox
from controlplane.services.executions import create_execution, get_execution
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.secrets import IDENTITY_FILE
from controlplane.services.worker.worker import Worker
from controlplane.settings import Settings
from controlplane.store.executions import logs_of
from tests.conftest import ADMIN_TOKEN, bearer, token_headers

MODES = ["bwrap", "setuid"]
MARKER = "sandboxed-script-ran-4f1c"
# A Python that uid 65534 can reach on any Debian host; the venv may sit under /root.
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _require(mode: str) -> None:
    if mode in {"bwrap", "setuid"} and os.geteuid() != 0:
        pytest.skip(f"the {mode} sandbox is tested as root (the server's user in production)")
    if mode == "bwrap" and shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is missing: apt-get install -y bubblewrap (.ci/run does)")


@pytest.fixture(params=MODES)
def sandboxed(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path) -> Iterator[Any]:
    """The API (as the ``client`` fixture builds it) with the sandbox mode forced."""
    mode = request.param
    _require(mode)
    settings = Settings(
        database_url=str(engine.url),
        data_dir=tmp_path,
        poll_sources=False,
        admin_token=ADMIN_TOKEN,
        sandbox=mode,
    )
    with TestClient(create_app(settings, engine=engine), headers=bearer(ADMIN_TOKEN)) as client:
        yield client, tmp_path, mode


@pytest.fixture
def server_like_process() -> Iterator[int]:
    """A root process whose environment holds the admin token, as the server's does."""
    process = subprocess.Popen(["sleep", "120"], env={"FLOWPLANE_ADMIN_TOKEN": ADMIN_TOKEN})
    yield process.pid
    process.kill()
    process.wait()


def run_as(client: TestClient, headers: dict[str, str], source: str) -> dict[str, Any]:
    flow_id = source.split("id: ", 1)[1].split("\n", 1)[0]
    response = client.put(
        f"/api/v1/flows/sandbox.team/{flow_id}", json={"content": source}, headers=headers
    )
    assert response.status_code in {200, 201}, response.text
    response = client.post(
        f"/api/v1/executions/sandbox.team/{flow_id}",
        params={"wait": True, "timeout": 60},
        json={"inputs": {}},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def log_lines(client: TestClient, execution_id: str) -> list[str]:
    response = client.get(f"/api/v1/executions/{execution_id}/logs")
    return [line["message"] for line in response.json()]


def commands_flow(flow_id: str, commands: list[str], env: dict[str, str] | None = None) -> str:
    lines = "\n".join(f"      - {_quote(c)}" for c in commands)
    env_block = "".join(f"\n      {k}: {_quote(v)}" for k, v in (env or {}).items())
    return (
        f"id: {flow_id}\nnamespace: sandbox.team\ntasks:\n"
        f"  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    commands:\n{lines}\n" + (f"    env:{env_block}\n" if env else "")
    )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def test_script_reaches_no_server_secret_or_file(
    sandboxed: Any,
    engine: Engine,
    server_like_process: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, data_dir, mode = sandboxed
    # Under bwrap the server's worker runs the script in the sandbox it started
    # ahead (runners.prestart); a task starting its own would show up here.
    own_starts: list[list[str]] = []
    original_start = script_tasks.start_process

    def counted(argv: list[str], **kwargs: Any) -> Any:
        own_starts.append(argv)
        return original_start(argv, **kwargs)

    monkeypatch.setattr(script_tasks, "start_process", counted)
    # The server's own environment, as `flowplane server` started from a unit file has it.
    monkeypatch.setenv("FLOWPLANE_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("FLOWPLANE_DATABASE_URL", str(engine.url))
    identity = data_dir / IDENTITY_FILE
    assert "AGE-SECRET-KEY" in identity.read_text()
    # On SQLite the database is a file the script must not read; on PostgreSQL
    # (the CI database pass) its URL lives only in the server's environment.
    sqlite = engine.url.get_backend_name() == "sqlite"
    database = Path(str(engine.url.database)) if sqlite else data_dir / "no-database-file"
    if sqlite:
        assert database.read_bytes().startswith(b"SQLite format 3")

    editor = token_headers(client, "mallory", role="editor", namespaces=("sandbox.*",))
    attack = [
        f"echo {MARKER}",
        """echo '::{"outputs":{"ran":"yes"}}::'""",
        "env",
        "cat /proc/*/environ 2>&1 | tr '\\0' '\\n'",
        f"cat /proc/{server_like_process}/environ 2>&1 | tr '\\0' '\\n'",
        "cat /proc/1/environ 2>&1 | tr '\\0' '\\n'",
        f"ls -1a {data_dir} 2>&1",
        f"cat {identity} 2>&1",
        f"head -c 100 {database} 2>&1",
        "ls /proc 2>&1 | tr '\\n' ' '",
    ]
    # Failing commands must not end the script: each one is an attempt.
    attack = [f"{command} || true" for command in attack]
    execution = run_as(client, editor, commands_flow("steal", attack))
    lines = log_lines(client, execution["id"])
    seen = "\n".join(lines) + repr(execution)

    assert MARKER in lines, lines
    assert execution["state"] == "SUCCESS", "\n".join(lines)
    task = next(r for r in execution["task_runs"] if r["task_id"] == "sh")
    assert task["outputs"]["vars"] == {"ran": "yes"}
    assert ADMIN_TOKEN not in seen
    assert "FLOWPLANE_" not in seen
    assert "AGE-SECRET-KEY" not in seen
    assert "SQLite format 3" not in seen
    # A listing of the data directory would show the identity file's name on a line.
    assert IDENTITY_FILE not in lines
    assert len(own_starts) == (0 if mode == "bwrap" else 1)


def test_environment_is_path_home_lang_and_the_task_env(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWPLANE_ADMIN_TOKEN", ADMIN_TOKEN)
    editor = token_headers(client, "erin", role="editor", namespaces=("sandbox.*",))
    commands = [
        "echo $(env | cut -d= -f1 | sort)",
        'test "$HOME" = "$(pwd)" && echo home-is-workdir',
        "echo greeting=$GREETING",
        "id -u; id -g; id -un",
    ]
    execution = run_as(client, editor, commands_flow("env", commands, {"GREETING": "hi"}))
    lines = log_lines(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    # The shell itself adds PWD; everything else is what the sandbox gave.
    assert set(lines[0].split()) - {"PWD"} == {"GREETING", "HOME", "LANG", "PATH"}
    assert lines[1:] == ["home-is-workdir", "greeting=hi", "65534", "65534", "nobody"]


def test_python_script_runs_and_writes_output_files(client: TestClient) -> None:
    editor = token_headers(client, "pia", role="editor", namespaces=("sandbox.*",))
    source = """\
id: py
namespace: sandbox.team
tasks:
  - id: py
    type: io.kestra.plugin.scripts.python.Script
    inputFiles:
      data.txt: "21"
    outputFiles: ["result.txt"]
    script: |
      import json, os
      value = int(open("data.txt").read()) * 2
      open("result.txt", "w").write(str(value))
      print(f"uid={os.getuid()}")
      print("::" + json.dumps({"outputs": {"value": value}}) + "::")
"""
    execution = run_as(client, editor, source)
    lines = log_lines(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "uid=65534" in lines
    outputs = execution["task_runs"][0]["outputs"]
    assert outputs["vars"] == {"value": 42}
    assert Path(outputs["outputFiles"]["result.txt"]).read_text() == "42"


def test_output_file_links_are_not_followed(client: TestClient, tmp_path: Path) -> None:
    editor = token_headers(client, "lou", role="editor", namespaces=("sandbox.*",))
    identity = tmp_path / IDENTITY_FILE
    source = commands_flow("links", [f"ln -s {identity} stolen.txt", "echo fine > ok.txt"])
    source += '    outputFiles: ["*.txt"]\n'
    execution = run_as(client, editor, source)
    assert execution["state"] == "SUCCESS", log_lines(client, execution["id"])
    files = execution["task_runs"][0]["outputs"]["outputFiles"]
    assert set(files) == {"ok.txt"}


# The limits, through a real worker whose sandbox has small ones.


def run_with(sandbox: Sandbox, engine: Engine, data_dir: Path, source: str) -> tuple[str, str]:
    """Run the flow to its end; its state and its log text."""
    put_flow(engine, "sandbox.team", "limits", source, Provenance())
    worker = Worker(engine=engine, data_dir=data_dir, sandbox=sandbox)
    execution = create_execution(engine, "sandbox.team", "limits", inputs={})
    for _ in range(20):
        worker.run_once()
        detail = get_execution(engine, execution.id)
        if detail.execution.state in {"SUCCESS", "FAILED", "KILLED"}:
            with Session(engine) as session:
                lines = [row.message for row in logs_of(session, execution.id)]
            return detail.execution.state, "\n".join(lines)
    pytest.fail("the execution did not end")


def limited(mode: str, data_dir: Path, **limits: int) -> Sandbox:
    _require(mode)
    python = SYSTEM_PYTHON if mode == "setuid" else Sandbox().python
    return Sandbox(mode=mode, data_dir=data_dir, python=python, **limits)


@pytest.mark.parametrize("mode", MODES)
def test_cpu_burner_is_killed_by_the_cpu_limit(mode: str, engine: Engine, tmp_path: Path) -> None:
    sandbox = limited(mode, tmp_path, cpu_seconds=1)
    # The timeout is only a safety net: the CPU limit must end the task first.
    source = commands_flow("limits", ["while :; do :; done"]) + "    timeout: PT60S\n"
    state, logs = run_with(sandbox, engine, tmp_path, source)
    assert state == "FAILED"
    assert "the sandbox limits CPU time to 1 s" in logs, logs
    assert "timed out" not in logs


@pytest.mark.parametrize("mode", MODES)
def test_memory_limit_refuses_a_huge_allocation(mode: str, engine: Engine, tmp_path: Path) -> None:
    sandbox = limited(mode, tmp_path, memory_bytes=512 * 1024**2)
    source = """\
id: limits
namespace: sandbox.team
tasks:
  - id: hog
    type: io.kestra.plugin.scripts.python.Script
    script: |
      print("allocating")
      blob = bytearray(2 * 1024**3)
      print("allocated", len(blob))
"""
    state, logs = run_with(sandbox, engine, tmp_path, source)
    assert state == "FAILED"
    assert "allocating" in logs, logs
    assert "MemoryError" in logs
    assert "allocated" not in logs.replace("allocating", "")
