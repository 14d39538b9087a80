"""Sandboxes started ahead of script tasks (runners.prestart): faster, and nothing else changes.

A running worker keeps one bwrap sandbox started ahead; the next script task
takes it, and a Python script runs in its already started interpreter. Each
test runs real flows through a real Worker, with and without the started
sandbox, and asserts that a task sees exactly what it sees in a sandbox of its
own (paths, ``__main__``, argv, environment, exit codes, tracebacks), that no
sandbox serves two tasks, and that none outlives the worker.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.plugins.scripts import tasks as script_tasks
from controlplane.runners.prestart import Prestarted, PrestartPool
from controlplane.runners.process import watch_process
from controlplane.runners.sandbox import Sandbox
from controlplane.services.executions import create_execution, get_execution
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.worker.worker import Worker
from controlplane.store.executions import logs_of

ENDED = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}

# What a script can tell of how it was started, printed as one output line.
INTROSPECT = """\
import json, os, sys
here = os.path.dirname(__file__)
work = os.path.dirname("{{ outputDir }}")
print("::" + json.dumps({"outputs": {
    "name": __name__,
    "file": __file__,
    "argv": sys.argv,
    "path0": sys.path[0],
    "cwd": os.path.realpath(os.getcwd()) == os.path.realpath(work),
    "input": open("data.txt").read(),
    "env": sorted(os.environ),
    "greeting": os.environ.get("GREETING"),
    "home_is_workdir": os.environ["HOME"] == work,
    "uid": os.getuid(),
    "spec": repr(globals().get("__spec__")),
    "main_is_me": sys.modules["__main__"].__dict__ is globals(),
}}) + "::")
open("{{ outputDir }}/made.txt", "w").write("from " + here)
"""


@pytest.fixture
def worker(engine: Engine, tmp_path: Path) -> Worker:
    if os.geteuid() != 0:
        pytest.skip("the bwrap sandbox is tested as root (the server's user in production)")
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is missing: apt-get install -y bubblewrap (.ci/run does)")
    sandbox = Sandbox(mode="bwrap", data_dir=tmp_path / "data", work_root=tmp_path / "work")
    return Worker(engine=engine, data_dir=tmp_path / "data", sandbox=sandbox)


@pytest.fixture
def cold_starts(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The command lines of script tasks that started a sandbox of their own."""
    started: list[list[str]] = []
    original = script_tasks.start_process

    def counted(argv: list[str], **kwargs: Any) -> Any:
        started.append(argv)
        return original(argv, **kwargs)

    monkeypatch.setattr(script_tasks, "start_process", counted)
    return started


def _run(engine: Engine, worker: Worker, flow_id: str) -> tuple[Any, list[str]]:
    execution = create_execution(engine, "demo", flow_id, inputs={})
    for _ in range(50):
        worker.run_once()
        detail = get_execution(engine, execution.id)
        if detail.execution.state in ENDED:
            break
    with Session(engine) as session:
        lines = [row.message for row in logs_of(session, execution.id)]
    return detail, lines


def _outputs(detail: Any) -> dict[str, dict[str, Any]]:
    return {run.task_id: run.outputs for run in detail.task_runs}


def _python_task(task_id: str, script: str, extra: str = "") -> str:
    body = "\n".join(f"      {line}" for line in script.splitlines())
    return (
        f"  - id: {task_id}\n    type: io.kestra.plugin.scripts.python.Script\n{extra}"
        f"    script: |\n{body}\n"
    )


def test_a_python_script_sees_what_it_sees_in_a_sandbox_of_its_own(
    engine: Engine, worker: Worker, cold_starts: list[list[str]]
) -> None:
    extra = (
        "    inputFiles: {data.txt: forty-two}\n"
        "    env: {GREETING: hello}\n"
        "    outputFiles: [made.txt]\n"
    )
    tasks = _python_task("first", INTROSPECT, extra) + _python_task("second", INTROSPECT, extra)
    put_flow(
        engine,
        "demo",
        "introspect",
        f"id: introspect\nnamespace: demo\ntasks:\n{tasks}",
        Provenance(),
    )

    cold, lines = _run(engine, worker, "introspect")
    assert cold.execution.state == "SUCCESS", lines
    assert len(cold_starts) == 2
    with worker.prestarting():
        warm, lines = _run(engine, worker, "introspect")
    assert len(cold_starts) == 2, "a task started its own sandbox while one was waiting"
    assert warm.execution.state == "SUCCESS", lines

    def seen(detail: Any) -> list[dict[str, Any]]:
        runs = sorted(detail.task_runs, key=lambda run: run.task_id)
        out = []
        for run in runs:
            values = dict(run.outputs["vars"])
            # The working directory's path names the task run; the rest must match.
            work = str(worker.sandbox.work_dir_for(detail.execution.id) / run.id / "work")
            values["file"] = values["file"].replace(work, "<work>")
            values["path0"] = values["path0"].replace(work, "<work>")
            out.append(values)
        return out

    assert seen(warm) == seen(cold)
    first = seen(warm)[0]
    assert first["name"] == "__main__"
    assert first["file"] == "<work>/script.py"
    assert first["argv"] == ["script.py"]
    assert first["path0"] == "<work>"
    assert first["cwd"] is True
    assert first["input"] == "forty-two"
    assert first["greeting"] == "hello"
    assert first["home_is_workdir"] is True
    assert first["uid"] == 65534
    assert first["main_is_me"] is True
    # The environment is the task's: the shell adds PWD, as `sh -c` does on the cold path.
    assert first["env"] == ["GREETING", "HOME", "LANG", "PATH", "PWD"]
    for run in warm.task_runs:
        assert set(run.outputs["outputFiles"]) == {"made.txt"}


def test_exit_codes_and_tracebacks_are_those_of_a_fresh_interpreter(
    engine: Engine, worker: Worker, cold_starts: list[list[str]]
) -> None:
    failing = (
        "import sys\n\ndef boom():\n    raise ValueError('the script failed here')\n\nboom()\n"
    )
    put_flow(
        engine,
        "demo",
        "raises",
        "id: raises\nnamespace: demo\ntasks:\n" + _python_task("py", failing),
        Provenance(),
    )
    put_flow(
        engine,
        "demo",
        "exits",
        "id: exits\nnamespace: demo\ntasks:\n"
        + _python_task("py", "import sys\nprint('leaving')\nsys.exit(3)\n"),
        Provenance(),
    )
    cold_raise, cold_raise_lines = _run(engine, worker, "raises")
    cold_exit, cold_exit_lines = _run(engine, worker, "exits")
    with worker.prestarting():
        warm_raise, warm_raise_lines = _run(engine, worker, "raises")
        warm_exit, warm_exit_lines = _run(engine, worker, "exits")
    assert len(cold_starts) == 2

    def normalized(detail: Any, lines: list[str]) -> list[str]:
        """The lines, with the ids that name this execution's directories replaced."""
        run_id = detail.task_runs[0].id
        return [
            line.replace(run_id, "<run>").replace(detail.execution.id, "<ex>") for line in lines
        ]

    for detail in (warm_raise, warm_exit):
        assert detail.execution.state == "FAILED"
    # The same lines, traceback included: it starts at the script, none of the launcher's frames.
    warm = normalized(warm_raise, warm_raise_lines)
    assert warm == normalized(cold_raise, cold_raise_lines)
    assert "ValueError: the script failed here" in warm
    assert any('/work/script.py", line 6, in <module>' in line for line in warm), warm
    assert any("command exited with code 1" in line for line in warm)
    warm = normalized(warm_exit, warm_exit_lines)
    assert warm == normalized(cold_exit, cold_exit_lines)
    assert "leaving" in warm
    assert any("command exited with code 3" in line for line in warm)


def test_no_sandbox_serves_two_tasks(
    engine: Engine, worker: Worker, cold_starts: list[list[str]]
) -> None:
    """What one task leaves in its sandbox (a file in /tmp, a process) no later task sees."""
    flow = """\
id: isolation
namespace: demo
tasks:
  - id: leave
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo left-behind > /tmp/planted
      - setsid sleep 60 > /dev/null 2>&1 < /dev/null &
      - echo "::{\\"outputs\\":{\\"work\\":\\"$(pwd)\\"}}::"
  - id: look
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - test ! -e /tmp/planted && echo no-planted-file
      - ps -eo comm= | grep -qx sleep || echo no-sleep-process
      - ls '{{ outputs.leave.vars.work }}' > /dev/null 2>&1 || echo no-earlier-workdir
  - id: py
    type: io.kestra.plugin.scripts.python.Script
    script: |
      import os
      print("planted" if os.path.exists("/tmp/planted") else "python-sees-no-planted-file")
"""
    put_flow(engine, "demo", "isolation", flow, Provenance())
    with worker.prestarting():
        detail, lines = _run(engine, worker, "isolation")
    assert detail.execution.state == "SUCCESS", lines
    assert cold_starts == []
    for expected in (
        "no-planted-file",
        "no-sleep-process",
        "no-earlier-workdir",
        "python-sees-no-planted-file",
    ):
        assert expected in lines


def test_a_shared_working_directory_starts_its_own_and_keeps_the_waiting_one(
    engine: Engine, worker: Worker, cold_starts: list[list[str]]
) -> None:
    flow = """\
id: shared
namespace: demo
tasks:
  - id: dir
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: write
        type: io.kestra.plugin.scripts.shell.Commands
        commands: [echo shared > note.txt]
      - id: read
        type: io.kestra.plugin.scripts.python.Script
        script: print(open("note.txt").read().strip() + "-read")
  - id: after
    type: io.kestra.plugin.scripts.shell.Commands
    commands: [echo after-ran]
"""
    put_flow(engine, "demo", "shared", flow, Provenance())
    with worker.prestarting():
        detail, lines = _run(engine, worker, "shared")
    assert detail.execution.state == "SUCCESS", lines
    assert "shared-read" in lines
    assert "after-ran" in lines
    # The first task found the shared directory empty and took the waiting sandbox; the
    # second found the note in it and started its own; the last took the next waiting one.
    assert len(cold_starts) == 1
    assert cold_starts[0][-1].endswith("python script.py")


def test_a_timeout_kills_a_task_in_a_started_sandbox(
    engine: Engine, worker: Worker, cold_starts: list[list[str]]
) -> None:
    put_flow(
        engine,
        "demo",
        "slow",
        "id: slow\nnamespace: demo\ntasks:\n"
        + _python_task("py", "import time\ntime.sleep(60)\n", "    timeout: PT1S\n"),
        Provenance(),
    )
    started = time.monotonic()
    with worker.prestarting():
        detail, lines = _run(engine, worker, "slow")
    assert detail.execution.state == "FAILED"
    assert any("timed out after PT1S" in line for line in lines), lines
    assert time.monotonic() - started < 30
    assert cold_starts == []


@pytest.fixture
def pool(worker: Worker) -> Iterator[PrestartPool]:
    started = PrestartPool(worker.sandbox)
    yield started
    started.close()


def _waiting(pool: PrestartPool) -> Prestarted:
    """The sandbox the pool's thread started (its process exists; it may still be starting)."""
    deadline = time.monotonic() + 10
    while pool.waiting is None:
        assert time.monotonic() < deadline, "no sandbox was started"
        time.sleep(0.001)
    return pool.waiting


def test_a_task_that_comes_while_its_sandbox_starts_waits_for_it(
    pool: PrestartPool, tmp_path: Path
) -> None:
    """The slot is renamed only once bwrap has bound it (it binds by name)."""
    _waiting(pool)
    working_dir = tmp_path / "work" / "run" / "task" / "work"
    working_dir.mkdir(parents=True)
    taken = pool.claim(working_dir)
    assert taken is not None
    (working_dir / "script.py").write_text("print('ran in', __file__)\n")
    env = {"PATH": "/usr/bin:/bin"}
    process = taken.send({"cwd": str(working_dir), "env": env, "script": "script.py"})
    lines: list[str] = []
    result = watch_process(process, on_line=lambda _level, line: lines.append(line))
    assert result.exit_code == 0, lines
    assert lines == [f"ran in {working_dir}/script.py"]


def test_closing_ends_the_waiting_sandbox_and_removes_its_slot(pool: PrestartPool) -> None:
    waiting = _waiting(pool)
    assert waiting.process.poll() is None
    assert waiting.slot.is_dir()
    pool.close()
    assert waiting.process.returncode is not None
    assert not waiting.slot.exists()
    # A closed pool starts no more.
    assert pool.closed
    assert pool.waiting is None


def test_the_worker_s_stop_ends_its_waiting_sandbox(worker: Worker) -> None:
    with worker.prestarting():
        pool = worker.sandbox.pool
        assert pool is not None
        waiting = _waiting(pool)
        assert waiting.process.poll() is None
    assert worker.sandbox.pool is None
    assert waiting.process.returncode is not None
    assert not waiting.slot.exists()


def test_a_sandbox_that_died_waiting_is_replaced(
    engine: Engine, worker: Worker, cold_starts: list[list[str]]
) -> None:
    put_flow(
        engine,
        "demo",
        "one",
        "id: one\nnamespace: demo\ntasks:\n" + _python_task("py", "print('ran')\n"),
        Provenance(),
    )
    with worker.prestarting():
        pool = worker.sandbox.pool
        assert pool is not None
        assert _waiting(pool).wait_started(10) == "started"
        first = _waiting(pool).process
        os.killpg(first.pid, 9)
        first.wait()
        detail, lines = _run(engine, worker, "one")
        assert detail.execution.state == "SUCCESS", lines
        assert "ran" in lines
        # That task started its own; a new sandbox waits for the next.
        assert len(cold_starts) == 1
        assert _waiting(pool).process.poll() is None


def test_a_command_that_cannot_run_is_reported_as_a_shell_would(
    engine: Engine, worker: Worker, cold_starts: list[list[str]]
) -> None:
    put_flow(
        engine,
        "demo",
        "noshell",
        "id: noshell\nnamespace: demo\ntasks:\n"
        "  - id: sh\n    type: io.kestra.plugin.scripts.shell.Commands\n"
        "    interpreter: [/no/such/shell, -c]\n    commands: [echo never]\n",
        Provenance(),
    )
    with worker.prestarting():
        detail, lines = _run(engine, worker, "noshell")
    assert detail.execution.state == "FAILED"
    assert cold_starts == []
    assert "/no/such/shell: No such file or directory" in lines
    assert any("command exited with code 127" in line for line in lines), lines


def test_a_sandbox_that_cannot_start_turns_the_pool_off(worker: Worker, tmp_path: Path) -> None:
    """Each task then starts its own (and fails with bwrap's reason), not one more broken one."""
    missing = tmp_path / "no-such-python" / "bin" / "python3"
    broken = PrestartPool(dataclasses.replace(worker.sandbox, python=missing))
    try:
        first = _waiting(broken)
        working_dir = tmp_path / "work" / "run" / "task" / "work"
        working_dir.mkdir(parents=True)
        assert broken.claim(working_dir) is None
        assert first.process.returncode is not None
        assert broken.closed
        assert broken.waiting is None
        assert broken.claim(working_dir) is None
        # The working directory is left as it was, for the task's own sandbox.
        assert working_dir.is_dir()
    finally:
        broken.close()


def test_sandboxes_outlive_the_parallel_branches_that_took_one(
    engine: Engine, worker: Worker, cold_starts: list[list[str]]
) -> None:
    """bwrap --die-with-parent follows the thread that started it: the pool's own thread.

    Had a branch's thread started the next sandbox, it would end with the
    branch, and the task after the Parallel would find it dead.
    """
    flow = """\
id: branches
namespace: demo
tasks:
  - id: both
    type: io.kestra.plugin.core.flow.Parallel
    tasks:
      - id: left
        type: io.kestra.plugin.scripts.shell.Commands
        commands: [echo left-ran]
      - id: right
        type: io.kestra.plugin.scripts.shell.Commands
        commands: [echo right-ran]
  - id: after
    type: io.kestra.plugin.scripts.python.Script
    script: print("after-ran")
"""
    put_flow(engine, "demo", "branches", flow, Provenance())
    with worker.prestarting():
        detail, lines = _run(engine, worker, "branches")
    assert detail.execution.state == "SUCCESS", lines
    assert {"left-ran", "right-ran", "after-ran"} <= set(lines)
    assert cold_starts == []
