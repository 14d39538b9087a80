"""Python ``dependencies``: a real uv install from a local wheel, cached and reused.

The wheel is built here (a one-module distribution written as a zip, as a
wheel is), and uv installs it with ``--no-index --find-links``: the worker's
``FLOWPLANE_PACKAGE_INSTALL_ARGS``. Nothing reaches the network.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from controlplane.api import create_app
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from controlplane.runners.dependencies import (
    COMPLETE,
    DependencyError,
    PackageSettings,
    environment_key,
    normalise,
    python_environment,
)
from controlplane.settings import Settings
from tests.conftest import ADMIN_TOKEN, bearer
from tests.services.test_engine import logs, put_flow, run, task_runs

PROBE = "flowplane_probe"


def _wheel(directory: Path, name: str, version: str, module: str) -> Path:
    """A pure-Python wheel holding ``name/__init__.py`` = ``module``, with its RECORD."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": module.encode(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"
        ).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A find-links folder with flowplane-probe 1.0 (``VALUE = 42``)."""
    directory = tmp_path_factory.mktemp("wheels")
    _wheel(directory, PROBE, "1.0", "VALUE = 42\n")
    return directory


def _packages(cache: Path, wheels: Path) -> PackageSettings:
    return PackageSettings(
        cache_dir=cache, install_args=("--no-index", "--find-links", str(wheels))
    )


@pytest.fixture
def envs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dependency cache of one test (outside its data directory)."""
    return tmp_path_factory.mktemp("envs")


@pytest.fixture
def client(engine: Engine, tmp_path: Path, envs: Path, wheels: Path) -> Iterator[TestClient]:
    """The API whose worker installs dependencies from ``wheels`` only, caching in ``envs``."""
    settings = Settings(
        database_url=str(engine.url),
        data_dir=tmp_path,
        poll_sources=False,
        admin_token=ADMIN_TOKEN,
        dependency_cache_dir=envs,
        package_install_args=["--no-index", "--find-links", str(wheels)],
    )
    app = create_app(settings, engine=engine)
    with TestClient(app, headers=bearer(ADMIN_TOKEN)) as test_client:
        yield test_client


_FLOW = """\
id: deps
namespace: demo
tasks:
  - id: probe
    type: python.Script
    dependencies: ["{{ 'flowplane-probe' }}==1.0"]
    script: |
      import os, sys, flowplane_probe
      print(f"uid={os.getuid()} prefix={sys.prefix}")
      print('::{"outputs": {"value": %d}}::' % flowplane_probe.VALUE)
"""


def test_a_script_imports_its_dependency_and_the_second_run_reuses_the_environment(
    client: TestClient, envs: Path
) -> None:
    put_flow(client, _FLOW)
    first = run(client, "demo", "deps")
    lines = logs(client, first["id"])
    assert first["state"] == "SUCCESS", lines
    assert task_runs(first)["probe"]["outputs"]["vars"] == {"value": 42}
    built = [line for line in lines if line.startswith("dependencies: built environment ")]
    assert len(built) == 1, lines
    key = built[0].split()[3]
    environment = envs / key
    # The script ran in the sandbox (as nobody) with the environment's interpreter.
    assert f"uid=65534 prefix={environment}" in lines
    marker = environment / COMPLETE
    stamps = (environment.stat().st_mtime_ns, marker.stat().st_mtime_ns)

    second = run(client, "demo", "deps")
    again = logs(client, second["id"])
    assert second["state"] == "SUCCESS", again
    assert f"dependencies: reused cached environment {key}" in again
    assert not any(line.startswith("dependencies: built") for line in again)
    assert (environment.stat().st_mtime_ns, marker.stat().st_mtime_ns) == stamps
    assert task_runs(second)["probe"]["outputs"]["vars"] == {"value": 42}


def test_a_missing_package_fails_the_task_with_uv_s_reason(client: TestClient, envs: Path) -> None:
    put_flow(
        client,
        "id: missing\nnamespace: demo\ntasks:\n"
        "  - {id: probe, type: python.Commands, dependencies: [flowplane-absent],"
        " commands: ['python -c pass']}\n",
    )
    execution = run(client, "demo", "missing")
    lines = logs(client, execution["id"])
    assert execution["state"] == "FAILED"
    failure = next(line for line in lines if line.startswith("installing the dependencies failed"))
    assert "flowplane-absent was not found in the provided package locations" in failure
    # The failed build left nothing that a later run would take for an environment.
    assert not [p for p in envs.iterdir() if (p / COMPLETE).exists()]


def test_without_the_cache_a_private_environment_is_built_and_removed(
    client: TestClient, envs: Path
) -> None:
    put_flow(
        client,
        "id: private\nnamespace: demo\ntasks:\n"
        "  - id: probe\n    type: python.Commands\n    dependencies: [flowplane-probe]\n"
        "    dependencyCacheEnabled: false\n"
        "    commands: ['python -c \"import flowplane_probe; print(flowplane_probe.VALUE)\"']\n",
    )
    execution = run(client, "demo", "private")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "42" in lines
    assert any(line.startswith("dependencies: built a private environment") for line in lines)
    assert not list(envs.glob("run-*"))
    assert not [p for p in envs.iterdir() if (p / COMPLETE).exists()]


def test_two_concurrent_runs_build_one_environment(envs: Path, wheels: Path) -> None:
    lines: list[str] = []
    start = threading.Barrier(2)
    found: list[Path] = []

    def install() -> None:
        start.wait()
        with python_environment(
            ["flowplane-probe==1.0"],
            python=Path(sys.executable),
            packages=_packages(envs, wheels),
            task_type="io.kestra.plugin.scripts.python.Script",
            log=lambda _level, message: lines.append(message),
        ) as environment:
            found.append(environment.path)

    threads = [threading.Thread(target=install) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(found) == 2
    assert found[0] == found[1]
    assert len([line for line in lines if line.startswith("dependencies: built")]) == 1, lines
    assert len([line for line in lines if line.startswith("dependencies: reused")]) == 1, lines


def test_requirements_are_normalised_into_one_key() -> None:
    assert normalise("Foo_Bar[b, A] >=2, <3") == "foo-bar[a,b]<3,>=2"
    assert normalise('pandas==2.2; python_version >= "3.10"') == (
        'pandas==2.2; python_version >= "3.10"'
    )
    same = environment_key(["requests", "Pandas<3,>=2"], "cpython 3.11.7")
    assert same == environment_key(["pandas>=2,<3", "requests", "requests"], "cpython 3.11.7")
    assert same != environment_key(["pandas>=2,<3", "requests"], "cpython 3.12.1")
    for refused in ("pkg @ https://example.com/pkg.whl", "-r /etc/passwd", "./local", "--pre x"):
        with pytest.raises(DependencyError, match="not a package requirement"):
            normalise(refused)


def test_a_worker_without_uv_names_the_extra(
    envs: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uv", None)  # what a runtime-only install looks like
    with (
        pytest.raises(DependencyError, match=r"needs the 'scripts' extra.*flowplane\[scripts\]"),
        python_environment(
            ["flowplane-probe"],
            python=Path(sys.executable),
            packages=_packages(envs, wheels),
            task_type="io.kestra.plugin.scripts.python.Script",
            log=lambda _level, _message: None,
        ),
    ):
        pass


def _problems(task: str) -> list[str]:
    source = f"id: p\nnamespace: demo\ntasks:\n  - {task}\n"
    with pytest.raises(InvalidFlowError) as info:
        validate_flow(source)
    return [problem.message for problem in info.value.problems]


def test_dependencies_are_refused_where_they_cannot_be_honoured() -> None:
    [message] = _problems(
        "{id: s, type: shell.Commands, dependencies: [requests], commands: [env]}"
    )
    assert message.startswith("dependencies is only for Python script tasks")
    [message] = _problems(
        "{id: k, type: python.Script, dependencies: [requests], script: pass,"
        " taskRunner: {type: Kubernetes}}"
    )
    assert message.startswith("dependencies needs the Process task runner")
    assert "install them in the image or in beforeCommands" in message
    [message] = _problems(
        "{id: u, type: python.Script, dependencies: ['x @ https://example.com/x.whl'],"
        " script: pass}"
    )
    assert "is not a package requirement" in message
    [message] = _problems("{id: v, type: python.Script, packageManager: PIP, script: pass}")
    assert message.startswith("packageManager PIP is not supported")
    # The Process runner is still the default, and named explicitly it takes only `type`.
    validate_flow(
        "id: p\nnamespace: demo\ntasks:\n  - {id: ok, type: python.Script, script: pass,"
        " dependencies: [requests], taskRunner: {type: Process}}\n"
    )
    [message] = _problems(
        "{id: o, type: shell.Commands, commands: [env],"
        " taskRunner: {type: io.kestra.plugin.core.runner.Process, version: '1'}}"
    )
    assert message.startswith("the Process task runner takes no options besides type")
