"""What a script task's start reuses: the cached bwrap command line, and the exit watch.

The part of the bwrap command line that no task changes is built once per
sandbox policy; every launch must still come out as a policy built afresh
would make it, for its own working directory only. The process runner sees
an exit through a pidfd, with the polling wait as fallback: both must give
the same results, and kill on timeout and on stop.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.runners import process
from controlplane.runners.process import run_process
from controlplane.runners.sandbox import Sandbox, SandboxError


def _bwrap_launch(sandbox: Sandbox, cwd: Path, venv: Path | None = None) -> list[str]:
    return sandbox.launch(["/bin/true"], cwd=cwd, env={}, mode="bwrap", venv=venv).argv


def _binds(argv: list[str]) -> list[str]:
    """The read-write binds of a bwrap command line."""
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--bind"]


def test_each_launch_equals_a_fresh_policy_s_whatever_ran_before(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first, second = tmp_path / "work" / "run-1", tmp_path / "other" / "deep" / "run-2"
    venv = tmp_path / "venvs" / "abc"
    for directory in (first, second, venv):
        directory.mkdir(parents=True)
    cached = Sandbox(mode="bwrap", data_dir=data)
    runs = [(first, None), (second, venv), (first, None), (second, None), (first, venv)]
    for cwd, env_dir in runs:
        fresh = Sandbox(mode="bwrap", data_dir=data)
        argv = _bwrap_launch(cached, cwd, env_dir)
        assert argv == _bwrap_launch(fresh, cwd, env_dir)
        # Only this run's working directory is writable; the other run's is not there at all.
        assert _binds(argv) == [str(cwd)]
        other = second if cwd == first else first
        assert str(other) not in argv
        # Its parents are created (0755) by this launch too, not assumed from an earlier one.
        assert ["--perms", "0755", "--dir", str(cwd.parent)] == argv[
            argv.index(str(cwd.parent)) - 3 : argv.index(str(cwd.parent)) + 1
        ]


def test_the_fixed_part_is_built_once_per_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Sandbox] = []
    original = Sandbox.exposed_paths

    def counted(self: Sandbox) -> list[Path]:
        calls.append(self)
        return original(self)

    monkeypatch.setattr(Sandbox, "exposed_paths", counted)
    sandbox = Sandbox(mode="bwrap", data_dir=tmp_path / "data")
    for _ in range(3):
        _bwrap_launch(sandbox, tmp_path)
    assert len(calls) == 1
    # Another policy (here: no network) builds its own, and says so on its command line.
    closed = dataclasses.replace(sandbox, network=False)
    assert "--unshare-net" not in _bwrap_launch(sandbox, tmp_path)
    assert "--unshare-net" in _bwrap_launch(closed, tmp_path)
    assert len(calls) == 2


def test_a_refusal_is_not_cached(tmp_path: Path) -> None:
    exposed = Sandbox().python.absolute().parent.parent
    sandbox = Sandbox(mode="bwrap", data_dir=exposed / "flowplane-data")
    for _ in range(2):
        with pytest.raises(SandboxError, match="lies under"):
            _bwrap_launch(sandbox, tmp_path)


def test_a_venv_holding_the_data_dir_is_refused_after_a_cached_launch(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "data").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    sandbox = Sandbox(mode="bwrap", data_dir=venv / "data")
    _bwrap_launch(sandbox, work)
    with pytest.raises(SandboxError, match="lies under"):
        _bwrap_launch(sandbox, work, venv)


@pytest.fixture
def work_dirs() -> Iterator[list[Path]]:
    """Two working directories outside tmp_path, which nobody cannot traverse."""
    root = Path("/tmp/flowplane-work-test") / uuid.uuid4().hex  # noqa: S108 - outside tmp_path
    dirs = [root / "run-1" / "work", root / "run-2" / "work"]
    for directory in dirs:
        directory.mkdir(parents=True)
    yield dirs
    shutil.rmtree(root)


def test_runs_of_one_cached_policy_see_nothing_of_each_other(
    work_dirs: list[Path], tmp_path: Path
) -> None:
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is missing: apt-get install -y bubblewrap")
    sandbox = Sandbox(mode="bwrap", data_dir=tmp_path / "data")
    first, second = work_dirs
    script = f"touch /tmp/from-$RUN here-$RUN; ls /tmp {first} {second}; echo pid $$; id -u"
    seen: dict[str, list[str]] = {}
    for run, cwd in (("one", first), ("two", second)):
        sandbox.prepare(cwd, "bwrap")
        launch = sandbox.launch(["/bin/sh", "-c", script], cwd=cwd, env={"RUN": run}, mode="bwrap")
        lines: list[str] = []
        run_process(
            launch.argv,
            cwd=cwd,
            env=launch.env,
            on_line=lambda _level, text, into=lines: into.append(text),
        )
        seen[run] = lines
    # Each run sees its own directory and not the other's, and a /tmp of its own.
    assert "here-one" in seen["one"]
    assert "here-two" in seen["two"]
    assert any(str(second) in line and "No such file" in line for line in seen["one"])
    assert any(str(first) in line and "No such file" in line for line in seen["two"])
    assert "from-one" not in seen["two"]
    assert "from-two" in seen["two"]
    # The PID namespace is new each time: the shell has the same small pid in both.
    assert "pid 2" in seen["one"]
    assert "pid 2" in seen["two"]
    if os.geteuid() == 0:
        assert "65534" in seen["one"]
        assert "65534" in seen["two"]


@pytest.fixture(params=["pidfd", "polled"])
def exit_watch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each process test with the pidfd watch and with the polling fallback."""
    if request.param == "polled":

        def no_pidfd(_pid: int) -> int:
            raise OSError("pidfd_open unavailable")

        monkeypatch.setattr(process.os, "pidfd_open", no_pidfd)
    return str(request.param)


def _open_fds() -> set[str]:
    return {entry.name for entry in Path("/proc/self/fd").iterdir()}


def test_exit_code_lines_and_outputs_come_back(exit_watch: str, tmp_path: Path) -> None:
    before = _open_fds()
    lines: list[tuple[str, str]] = []
    script = 'echo hello; echo oops >&2; echo \'::{"outputs": {"n": 7}}::\'; exit 3'
    result = run_process(
        ["/bin/sh", "-c", script],
        cwd=tmp_path,
        env={},
        on_line=lambda level, text: lines.append((level, text)),
    )
    assert result.exit_code == 3
    assert result.outputs == {"n": 7}
    assert sorted(lines) == [("INFO", "hello"), ("WARN", "oops")]
    assert not result.timed_out
    assert not result.killed
    # The pidfd (and the pipes) are closed again.
    assert _open_fds() == before


def test_a_signal_ends_the_result_as_before(exit_watch: str, tmp_path: Path) -> None:
    result = run_process(["/bin/sh", "-c", "kill -TERM $$"], cwd=tmp_path, env={}, on_line=print)
    assert result.exit_code == -15
    assert result.signal == 15


def test_timeout_and_stop_still_kill(exit_watch: str, tmp_path: Path) -> None:
    timed = run_process(["sleep", "30"], cwd=tmp_path, env={}, on_line=print, timeout=0.3)
    assert timed.timed_out
    assert timed.exit_code == -9
    stopped = run_process(
        ["sleep", "30"], cwd=tmp_path, env={}, on_line=print, should_stop=lambda: True
    )
    assert stopped.killed
    assert not stopped.timed_out
    assert stopped.exit_code == -9


def test_a_process_that_ends_before_the_watch_starts_is_seen(
    exit_watch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = process._exit_watch

    def late(started: object) -> object:
        assert isinstance(started, process.subprocess.Popen)
        # Let the process exit (and stay a zombie, unreaped) before the watch opens.
        os.waitid(os.P_PID, started.pid, os.WEXITED | os.WNOWAIT)
        return original(started)

    monkeypatch.setattr(process, "_exit_watch", late)
    result = run_process(["/bin/sh", "-c", "exit 5"], cwd=tmp_path, env={}, on_line=print)
    assert result.exit_code == 5
