"""Kestra's default task runner: ``containerImage`` with no ``taskRunner`` runs in Docker.

Kestra's script tasks run on its Docker runner unless a flow names another, so
public flows write ``containerImage: python:3.11-slim`` alone. Flowplane reads
such a task exactly as if ``taskRunner: {type: io.kestra.plugin.scripts.runner
.docker.Docker}`` were written (the stored source stays as written), while a
task with neither keeps the Process runner. The runs go through the engine
against the real Podman service of tests/runners/test_docker.py (its
``podman`` fixture), named by the worker's ``DOCKER_HOST``. Python
``dependencies`` are pip-installed in the container; no index is reachable
here, so the test builds a wheel and hands it over as a namespace file
(``PIP_FIND_LINKS``), into an image whose ``python3`` has pip, as
``python:3.x-slim``'s has.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.normalize import spec_digest
from controlplane.domain.tasktypes.scripts import DOCKER_RUNNER, DockerRunner
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.runners.test_docker import BASE_IMAGE, Podman, podman  # noqa: F401 - the fixture
from tests.services.test_engine import logs, put_flow, run, task_runs
from tests.services.test_namespace_files_scripts import put_file

# BASE_IMAGE with a virtual environment first on PATH: `python3 -m pip` works, as in
# the official python images (Debian's own python3 has no pip module).
PIP_IMAGE = "localhost/flowplane-test-pip:bookworm"
CONTAINERFILE = f"""\
FROM {BASE_IMAGE}
RUN python3 -m venv /opt/python
ENV PATH=/opt/python/bin:/usr/local/bin:/usr/bin:/bin
"""
WHEEL = "flowplane_probe-1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def pip_image(podman: Podman) -> Iterator[str]:  # noqa: F811 - the imported fixture
    """The pip image, built on the Podman service (no network needed) and removed after."""
    podman.client.images.build(
        fileobj=io.BytesIO(CONTAINERFILE.encode()), tag=PIP_IMAGE, rm=True, network_mode="none"
    )
    try:
        yield PIP_IMAGE
    finally:
        podman.client.images.remove(PIP_IMAGE, force=True)


def probe_wheel() -> bytes:
    """A one-module wheel, ``flowplane-probe 1.0``, written as the wheel format says."""
    files = {
        "flowplane_probe/__init__.py": b"ANSWER = 'probe installed in the container'\n",
        "flowplane_probe-1.0.dist-info/METADATA": (
            b"Metadata-Version: 2.1\nName: flowplane-probe\nVersion: 1.0\n"
        ),
        "flowplane_probe-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: flowplane-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
        writer.writerow([name, f"sha256={digest.decode()}", len(content)])
    writer.writerow(["flowplane_probe-1.0.dist-info/RECORD", "", ""])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr("flowplane_probe-1.0.dist-info/RECORD", record.getvalue())
    return buffer.getvalue()


def task_lines(client: TestClient, execution_id: str, task_id: str) -> list[str]:
    """The log lines of one task of a run."""
    lines = client.get(f"/api/v1/executions/{execution_id}/logs").json()
    return [line["message"] for line in lines if line["task_id"] == task_id]


# --- validation: the parsed model, not the source ------------------------------------------


def _task(source: str) -> object:
    return validate_flow(source).spec.tasks[0]


def test_an_image_without_a_runner_is_read_as_the_docker_runner_with_its_defaults() -> None:
    implicit = (
        "id: p\nnamespace: demo\ntasks:\n"
        "  - id: s\n    type: python.Script\n    containerImage: python:3.11-slim\n"
        "    script: print(1)\n"
    )
    explicit = implicit.replace(
        "    script:",
        "    taskRunner: {type: io.kestra.plugin.scripts.runner.docker.Docker}\n    script:",
    )
    runner = getattr(_task(implicit), "taskRunner", None)
    assert runner == DockerRunner(type=DOCKER_RUNNER)
    assert isinstance(runner, DockerRunner)
    assert runner.pullPolicy == "IF_NOT_PRESENT"
    assert runner.fileHandlingStrategy == "MOUNT"
    # The same flow as with the runner written out (plans compare this digest).
    assert spec_digest(validate_flow(implicit).spec) == spec_digest(validate_flow(explicit).spec)
    # Neither an image nor a runner: still the Process runner (no runner at all).
    plain = "id: p\nnamespace: demo\ntasks:\n  - {id: s, type: shell.Commands, commands: [env]}\n"
    assert getattr(_task(plain), "taskRunner", "absent") is None


def test_the_runner_checks_apply_as_to_an_explicit_docker_runner() -> None:
    # What the Docker runner takes, an image alone takes too.
    _task(
        "id: p\nnamespace: demo\ntasks:\n"
        "  - id: s\n    type: python.Commands\n    containerImage: python:3.11-slim\n"
        "    namespaceFiles: {enabled: true}\n    outputFiles: ['*.csv']\n"
        "    dependencies: [requests]\n    commands: [python main.py]\n"
    )
    # An explicit Process runner with an image is still refused, and so is an
    # explicit Kubernetes runner with dependencies.
    for task, message in (
        (
            "{id: s, type: shell.Commands, containerImage: ubuntu, commands: [env],"
            " taskRunner: {type: Process}}",
            "containerImage needs the Docker or Kubernetes task runner",
        ),
        (
            "{id: s, type: python.Script, containerImage: python, script: pass,"
            " dependencies: [requests], taskRunner: {type: Kubernetes}}",
            "dependencies needs the Process task runner or the Docker one, not "
            "io.kestra.plugin.ee.kubernetes.runner.Kubernetes",
        ),
        (
            "{id: s, type: python.Script, containerImage: python, script: pass,"
            " dependencies: ['x @ https://example.com/x.whl']}",
            "is not a package requirement",
        ),
    ):
        with pytest.raises(InvalidFlowError) as info:
            validate_flow(f"id: p\nnamespace: demo\ntasks:\n  - {task}\n")
        [problem] = info.value.problems
        assert message in problem.message


# --- runs against Podman ----------------------------------------------------------------


def test_an_image_alone_runs_in_a_container_and_no_image_on_the_worker(
    client: TestClient,
    podman: Podman,  # noqa: F811 - the imported fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", podman.url)
    source = (
        "id: default-runner\nnamespace: demo\ntasks:\n"
        "  - id: boxed\n    type: io.kestra.plugin.scripts.python.Script\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    outputFiles: [out.txt]\n"
        "    script: |\n"
        "      import os, sys\n"
        "      print('pid 1 runs the task:', 'script.py' in open('/proc/1/cmdline').read())\n"
        "      print('interpreter', sys.executable, 'uid', os.getuid())\n"
        "      open('out.txt', 'w').write('from the container')\n"
        "  - id: plain\n    type: io.kestra.plugin.scripts.python.Script\n"
        "    script: |\n"
        "      import sys\n"
        "      print('interpreter', sys.executable)\n"
    )
    put_flow(client, source)
    execution = run(client, "demo", "default-runner")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines

    boxed = task_lines(client, execution["id"], "boxed")
    assert f"created from {BASE_IMAGE}" in next(line for line in boxed if "created" in line)
    assert "pid 1 runs the task: True" in boxed
    # The image's python3, as the sandbox user (the worker runs as root here).
    assert "interpreter /usr/bin/python3 uid 65534" in boxed
    outputs = task_runs(execution)["boxed"]["outputs"]
    assert Path(outputs["outputFiles"]["out.txt"]).read_text(encoding="utf-8") == (
        "from the container"
    )
    assert podman.containers_of(execution["id"]) == []

    # The task with neither image nor runner ran on the worker: no container, its Python.
    plain = task_lines(client, execution["id"], "plain")
    assert not any("created from" in line for line in plain)
    [interpreter] = [line for line in plain if line.startswith("interpreter ")]
    assert interpreter != "interpreter /usr/bin/python3"

    # The stored flow is the source as written: no runner was added to it.
    stored = client.get("/api/v1/flows/demo/default-runner").json()["content"]
    assert stored == source
    assert "taskRunner" not in stored


def test_dependencies_are_installed_in_the_container_before_the_script(
    client: TestClient,
    podman: Podman,  # noqa: F811 - the imported fixture
    pip_image: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", podman.url)
    put_file(client, "demo", f"wheels/{WHEEL}", probe_wheel())
    source = (
        "id: deps\nnamespace: demo\ntasks:\n"
        "  - id: uses\n    type: python.Script\n"
        f"    containerImage: {pip_image}\n"
        "    namespaceFiles: {include: ['wheels/**']}\n"
        # No index here: pip finds the wheel in the working directory.
        "    env: {PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheels}\n"
        "    dependencies: ['Flowplane_Probe == 1.0']\n"
        "    beforeCommands: ['echo before sees $PYTHONPATH']\n"
        "    outputFiles: ['**']\n"
        "    script: |\n"
        "      import flowplane_probe, os\n"
        "      print(flowplane_probe.ANSWER, 'from', os.path.dirname(flowplane_probe.__file__))\n"
        "  - id: missing\n    type: python.Script\n    allowFailure: true\n"
        f"    containerImage: {pip_image}\n"
        "    failFast: false\n"
        "    env: {PIP_NO_INDEX: '1'}\n"
        "    dependencies: [flowplane-absent]\n"
        "    script: print('the script ran')\n"
        "  - id: smuggled\n    type: python.Script\n    allowFailure: true\n"
        f"    containerImage: {pip_image}\n"
        "    dependencies: [\"{{ 'x @ file:///etc/passwd' }}\"]\n"
        "    script: print('the script ran')\n"
    )
    put_flow(client, source)
    execution = run(client, "demo", "deps")
    lines = logs(client, execution["id"])
    runs = task_runs(execution)
    assert runs["uses"]["state"] == "SUCCESS", lines

    uses = task_lines(client, execution["id"], "uses")
    assert (
        "dependencies: flowplane-probe==1.0 are installed in the container with its pip "
        "(not cached between runs)" in uses
    )
    # Installed inside the container, first on PYTHONPATH, before beforeCommands ran.
    assert "before sees /tmp/flowplane-dependencies" in uses
    assert "probe installed in the container from /tmp/flowplane-dependencies/flowplane_probe" in (
        uses
    )
    # Nothing of the install is left in the working directory (`**` collects all of it).
    assert sorted(runs["uses"]["outputs"]["outputFiles"]) == ["script.py", f"wheels/{WHEEL}"]

    # pip's failure ends the script with its code, though failFast is false.
    missing = task_lines(client, execution["id"], "missing")
    assert runs["missing"]["state"] == "WARNING", missing
    assert "the script ran" not in missing
    assert "command exited with code 1" in missing
    assert any("flowplane-absent" in line for line in missing)

    # A requirement rendered from a template is checked as on the worker, before any container.
    smuggled = task_lines(client, execution["id"], "smuggled")
    assert runs["smuggled"]["state"] == "WARNING", smuggled
    assert any("is not a package requirement" in line for line in smuggled)
    assert not any("created from" in line for line in smuggled)
    assert podman.containers_of(execution["id"]) == []
