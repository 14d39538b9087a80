"""The sandbox policy and the process runner: modes, exposed paths, env, and the kill."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from controlplane.runners.process import run_process
from controlplane.runners.sandbox import Sandbox, SandboxError, resolve_mode
from controlplane.settings import Settings


def test_auto_prefers_bwrap_then_setuid_as_root() -> None:
    assert resolve_mode("auto", bwrap="/usr/bin/bwrap", is_root=False) == "bwrap"
    assert resolve_mode("auto", bwrap=None, is_root=True) == "setuid"
    assert resolve_mode("off", bwrap=None, is_root=False) == "off"


def test_no_isolation_available_refuses_with_the_fix() -> None:
    with pytest.raises(SandboxError, match=r"install bubblewrap.*FLOWPLANE_SANDBOX=off"):
        resolve_mode("auto", bwrap=None, is_root=False)
    with pytest.raises(SandboxError, match="bwrap` is not installed"):
        resolve_mode("bwrap", bwrap=None, is_root=True)
    with pytest.raises(SandboxError, match="needs the server to run as root"):
        resolve_mode("setuid", bwrap="/usr/bin/bwrap", is_root=False)
    with pytest.raises(SandboxError, match="choose one of"):
        resolve_mode("none", bwrap=None, is_root=True)


def test_from_settings_knows_the_data_dir(tmp_path: Path) -> None:
    sandbox = Sandbox.from_settings(Settings(data_dir=tmp_path, sandbox="setuid"))
    assert sandbox.mode == "setuid"
    assert sandbox.data_dir == tmp_path.resolve()


def test_environment_is_only_path_home_lang_and_the_task_env(tmp_path: Path) -> None:
    env = Sandbox().environment(tmp_path, {"GREETING": "hi"})
    assert set(env) == {"PATH", "HOME", "LANG", "GREETING"}
    assert env["HOME"] == str(tmp_path)


def test_exposed_paths_hold_the_interpreter_but_not_its_home() -> None:
    exposed = Sandbox().exposed_paths()
    interpreter = Path(sys.executable).resolve().parent.parent
    assert interpreter in exposed or any(interpreter.is_relative_to(p) for p in exposed)
    assert Path("/usr") in exposed
    for path in exposed:
        assert path != Path("/")
        assert path not in {Path("/root"), Path("/home"), Path("/etc"), Path(tempfile.gettempdir())}
        assert not path.is_relative_to("/etc/shadow")


def test_a_data_dir_under_an_exposed_path_is_refused(tmp_path: Path) -> None:
    inside_interpreter = Path(sys.executable).parent.parent / "flowplane-data"
    sandbox = Sandbox(mode="bwrap", data_dir=inside_interpreter)
    with pytest.raises(SandboxError, match="lies under"):
        sandbox.launch(["true"], cwd=tmp_path, env={}, mode="bwrap")


def test_a_work_dir_inside_the_data_dir_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for mode in ("bwrap", "setuid"):
        with pytest.raises(SandboxError, match="inside the data directory"):
            Sandbox(data_dir=tmp_path).launch(["true"], cwd=work, env={}, mode=mode)


def test_setuid_closes_the_data_dir_to_other_users(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    work = tmp_path / "work"
    work.mkdir()
    Sandbox(data_dir=data).launch(["true"], cwd=work, env={}, mode="setuid")
    assert data.stat().st_mode & 0o777 == 0o700


def test_setuid_refuses_an_interpreter_nobody_cannot_reach(tmp_path: Path) -> None:
    closed = tmp_path / "closed" / "bin"
    closed.mkdir(parents=True)
    (closed / "python").write_text("")
    (tmp_path / "closed").chmod(0o700)
    sandbox = Sandbox(python=closed / "python")
    with pytest.raises(SandboxError, match="cannot reach the interpreter"):
        sandbox.check_python("setuid")
    sandbox.check_python("bwrap")  # bwrap binds it in, whatever its parents' modes


def test_run_process_passes_only_the_given_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWPLANE_ADMIN_TOKEN", "fpt_must-not-leak")
    lines: list[str] = []
    result = run_process(
        ["/usr/bin/env"],
        cwd=tmp_path,
        env={"ONLY": "this"},
        on_line=lambda _level, text: lines.append(text),
    )
    assert result.exit_code == 0
    assert lines == ["ONLY=this"]


def available_modes() -> list[str]:
    if os.geteuid() != 0:
        return ["bwrap"]
    return ["bwrap", "setuid"]


@pytest.mark.parametrize("mode", available_modes())
def test_timeout_kills_the_whole_sandboxed_tree(mode: str, tmp_path: Path) -> None:
    if mode == "bwrap" and shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is missing: apt-get install -y bubblewrap")
    work = Path("/tmp/flowplane-work-test") / uuid.uuid4().hex  # noqa: S108 - outside tmp_path
    work.mkdir(parents=True)
    sandbox = Sandbox(mode=mode, data_dir=tmp_path)
    sandbox.prepare(work, mode)
    # A unique duration marks the sleepers; one of them leaves the process group.
    marker = f"3{uuid.uuid4().int % 1000}.5"
    escape = "setsid " if mode == "bwrap" else ""
    script = f"sleep {marker} & {escape}sleep {marker} & echo started; wait"
    launch = sandbox.launch(["/bin/sh", "-c", script], cwd=work, env={}, mode=mode)
    lines: list[str] = []
    result = run_process(
        launch.argv,
        cwd=work,
        env=launch.env,
        on_line=lambda _level, text: lines.append(text),
        should_stop=lambda: "started" in lines,
        user=launch.user,
        group=launch.group,
    )
    assert result.killed
    # The namespace dies with bwrap's init a moment after bwrap itself.
    deadline = time.monotonic() + 10
    while (survivors := _processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in survivors:
        os.kill(pid, 9)
    assert survivors == []
    shutil.rmtree(work)


def _processes_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(int(entry.name))
    return found
