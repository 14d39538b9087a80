"""The Docker task runner, end to end through the engine, against a real Podman service.

Podman serves the Docker Engine API on a socket in a temp dir (``podman system
service``); the runner talks to it with the official ``docker`` SDK, as it would
to Docker. The containers are real: they run with runc, get the memory limit in
their cgroup, see the working directory at the same path as the worker, and are
killed and removed on timeout. No registry is reachable here, so the image is a
Debian rootfs built once per machine (mmdebstrap), as scripts/image-smoke does;
the registry tests serve the Distribution API from a local HTTP server in this
module. See docs/docker.md for what this proves and what it does not.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import BaseModel

from controlplane.domain.tasktypes.scripts import (
    DockerCpu,
    DockerCredentials,
    DockerMemory,
    DockerRunner,
)
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.services.test_engine import logs, put_flow, run, task_runs, wait_for_end

BASE_IMAGE = "localhost/flowplane-base:bookworm"
LABEL = "flowplane.io/execution-id"
INSTALL_HINT = (
    "the Docker runner tests need {tool}: .ci/run installs podman, runc and mmdebstrap "
    "before the tests (apt-get install -y podman runc mmdebstrap)"
)
# runc, not crun (this machine's hybrid cgroups); rlimits at or below the machine's,
# which has no CAP_SYS_RESOURCE (see ../shared/container-recipe.md).
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
"""


@dataclass
class Podman:
    url: str
    client: Any
    registry: Registry

    def containers_of(self, execution_id: str) -> list[Any]:
        """The containers a run left behind (found by the label the runner sets)."""
        return self.client.containers.list(all=True, filters={"label": f"{LABEL}={execution_id}"})


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(INSTALL_HINT.format(tool=tool))
    return path


def _build_base_image(work: Path, env: dict[str, str]) -> None:
    """The Debian rootfs image scripts/image-smoke builds, imported once per machine."""
    _require("mmdebstrap")
    rootfs = work / "rootfs.tar"
    subprocess.run(
        [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            "--include=python3,python3-venv,git,ca-certificates",
            "bookworm",
            str(rootfs),
        ],
        check=True,
        timeout=1200,
    )
    subprocess.run(
        ["podman", "import", "--quiet", str(rootfs), BASE_IMAGE],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    rootfs.unlink()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """A Podman service on a private socket, with the base image and a local registry."""
    for tool in ("podman", "runc"):
        _require(tool)
    work = tmp_path_factory.mktemp("podman")
    (work / "containers.conf").write_text(CONTAINERS_CONF, encoding="utf-8")
    registry = Registry(port=_free_port())
    # The test registry speaks plain HTTP; Podman must be told so before it starts.
    (work / "registries.conf").write_text(
        f'[[registry]]\nlocation = "127.0.0.1:{registry.port}"\ninsecure = true\n',
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(work / "containers.conf"),
        "CONTAINERS_REGISTRIES_CONF": str(work / "registries.conf"),
    }
    exists = subprocess.run(["podman", "image", "exists", BASE_IMAGE], env=env, check=False)
    if exists.returncode != 0:
        _build_base_image(work, env)
    socket_path = work / "podman.sock"
    with (work / "service.log").open("wb") as log:
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"unix://{socket_path}"
    client = None
    try:
        registry.serve_image_of(BASE_IMAGE, env)
        _wait_for_socket(socket_path, service, work / "service.log")
        client = docker.DockerClient(base_url=url, timeout=30)
        yield Podman(url=url, client=client, registry=registry)
    finally:
        if client is not None:
            # A test that failed before removing what it pulled leaves no tag behind.
            with contextlib.suppress(docker.errors.DockerException):
                client.images.remove(registry.image)
            client.close()
        registry.close()
        service.terminate()
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait(timeout=15)


def _wait_for_socket(path: Path, service: subprocess.Popen[bytes], log: Path) -> None:
    """Until the service accepts connections on ``path``; fail with its log if it exits."""
    deadline = time.monotonic() + 30
    while True:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(path))
            except OSError:
                pass
            else:
                return
        if service.poll() is not None or time.monotonic() > deadline:
            text = log.read_text(encoding="utf-8", errors="replace")
            pytest.fail(f"podman system service did not start: {text}")
        time.sleep(0.1)


# --- a registry, written from the OCI Distribution API reference ------------------------


@dataclass
class Registry:
    """``/v2/`` with HTTP Basic auth, serving one image: the base image under ``flowplane/base``.

    The image's layer is the base image's own (an uncompressed layer, by its
    diff id), so Podman finds it in local storage and only the manifest and
    config travel; the test checks which blobs were fetched.
    """

    port: int
    username: str = "robot"
    password: str = "s3cret-pull-password"  # noqa: S105 - the test registry's own
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifest: bytes = b""
    server: ThreadingHTTPServer | None = None

    @property
    def image(self) -> str:
        """The reference a flow names to pull from this registry."""
        return f"127.0.0.1:{self.port}/flowplane/base:v1"

    def serve_image_of(self, local_image: str, env: dict[str, str]) -> None:
        """Describe ``local_image`` as a registry manifest and start serving it."""
        inspect = subprocess.run(
            ["podman", "image", "inspect", local_image],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        layers = json.loads(inspect.stdout)[0]["RootFS"]["Layers"]
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": layers},
            }
        ).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.blobs[config_digest] = config
        self.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer,
                        # Podman reuses the local layer by digest and never reads this.
                        "size": 1,
                    }
                    for layer in layers
                ],
            }
        ).encode()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), _registry_handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _registry_handler(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self) -> None:
            header = self.headers.get("Authorization")
            registry.requests.append((self.command, self.path, header or ""))
            if not registry.authorized(header):
                challenge = {"WWW-Authenticate": 'Basic realm="flowplane-test"'}
                self._answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', challenge)
                return
            if self.path == "/v2/":
                self._answer(200, b"{}", {"Content-Type": "application/json"})
                return
            if self.path == "/v2/flowplane/base/manifests/v1":
                digest = "sha256:" + hashlib.sha256(registry.manifest).hexdigest()
                self._answer(
                    200,
                    registry.manifest,
                    {
                        "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                        "Docker-Content-Digest": digest,
                    },
                )
                return
            prefix = "/v2/flowplane/base/blobs/"
            blob = registry.blobs.get(self.path.removeprefix(prefix))
            if self.path.startswith(prefix) and blob is not None:
                self._answer(200, blob, {"Content-Type": "application/octet-stream"})
                return
            self._answer(404, b'{"errors":[{"code":"NOT_FOUND"}]}', {})

        do_GET = do_HEAD = _serve  # noqa: N815

    return Handler


# --- helpers --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _workers_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's DOCKER_HOST names the Podman service (a flow cannot name an engine)."""
    if "podman" in request.fixturenames:
        monkeypatch.setenv("DOCKER_HOST", request.getfixturevalue("podman").url)


def flow(flow_id: str, task: str, runner: str = "") -> str:
    """A flow of one script task on the Docker runner (``task`` and ``runner`` are YAML lines)."""
    return (
        f"id: {flow_id}\nnamespace: demo\ntasks:\n  - id: script\n{task}"
        f"    taskRunner:\n      type: io.kestra.plugin.scripts.runner.docker.Docker\n"
        f"{runner}"
    )


def start(client: TestClient, flow_id: str) -> str:
    """Queue a run without waiting; its id."""
    response = client.post(f"/api/v1/executions/demo/{flow_id}", json={"inputs": {}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# --- the tests ------------------------------------------------------------------------


PYTHON_SCRIPT = """\
import json, os, sys
with open("data.txt") as f:
    rows = f.read().split()
print(f"{os.environ['GREETING']} from uid {os.getuid()} in {os.getcwd()}")
# PID 1 of the container is the task's own shell: proof it is not the worker's host.
print("pid 1 runs the task:", "script.py" in open("/proc/1/cmdline").read())
print("a warning", file=sys.stderr)
with open("out.txt", "w") as f:
    f.write("rows=" + str(len(rows)))
print("::" + json.dumps({"outputs": {"rows": len(rows), "image": "bookworm"}}) + "::")
"""


def test_python_script_runs_in_a_container_with_env_files_and_outputs(
    client: TestClient, podman: Podman
) -> None:
    script = "\n".join(f"      {line}" for line in PYTHON_SCRIPT.splitlines())
    task = (
        "    type: io.kestra.plugin.scripts.python.Script\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    env: {GREETING: hello}\n"
        "    inputFiles:\n      data.txt: |\n        a\n        b\n        c\n"
        "    outputFiles: [out.txt]\n"
        f"    script: |\n{script}\n"
    )
    source = flow("py", task, "      pullPolicy: NEVER\n")
    source += '  - id: use\n    type: Log\n    message: "rows={{ outputs.script.vars.rows }}"\n'
    put_flow(client, source)
    execution = run(client, "demo", "py")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines

    outputs = task_runs(execution)["script"]["outputs"]
    assert outputs["exitCode"] == 0
    assert outputs["vars"] == {"rows": 3, "image": "bookworm"}
    assert Path(outputs["outputFiles"]["out.txt"]).read_text(encoding="utf-8") == "rows=3"
    assert "rows=3" in lines
    # Not root: the sandbox user, who owns the bind-mounted working directory.
    greeting = next(line for line in lines if line.startswith("hello from uid"))
    assert greeting.startswith("hello from uid 65534 in /")
    assert "pid 1 runs the task: True" in lines
    assert "a warning" in lines
    warning = next(
        line
        for line in client.get(f"/api/v1/executions/{execution['id']}/logs").json()
        if line["message"] == "a warning"
    )
    assert warning["level"] == "WARN"
    assert not any(line.startswith("::") for line in lines)
    assert any("created from localhost/flowplane-base:bookworm" in line for line in lines)
    assert podman.containers_of(execution["id"]) == []


def test_non_zero_exit_fails_the_task_through_the_workers_docker_host(
    client: TestClient, podman: Podman, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No `host:` in the flow: the worker's DOCKER_HOST names the engine.
    monkeypatch.setenv("DOCKER_HOST", podman.url)
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    commands:\n      - echo before\n      - exit 3\n      - echo never\n"
    )
    put_flow(client, flow("fails", task))
    execution = run(client, "demo", "fails")
    lines = logs(client, execution["id"])
    assert execution["state"] == "FAILED"
    assert "before" in lines
    assert "never" not in lines
    assert "command exited with code 3" in lines
    assert podman.containers_of(execution["id"]) == []


def test_missing_image_fails_naming_it(client: TestClient, podman: Podman) -> None:
    absent = "docker.io/flowplane-test/absent-image:never"
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {absent}\n"
        "    commands: [echo hi]\n"
    )
    put_flow(client, flow("absent", task))
    execution = run(client, "demo", "absent")
    assert execution["state"] == "FAILED"
    lines = logs(client, execution["id"])
    # The default policy, IF_NOT_PRESENT, tried the pull; the engine's reason follows.
    assert f"pulling image {absent}" in lines
    message = next(line for line in lines if line.startswith("image "))
    prefix = f"image {absent!r} is not present on the Docker host and could not be pulled: "
    assert message.startswith(prefix)
    assert message.removeprefix(prefix).strip()

    put_flow(client, flow("absent", task, "      pullPolicy: NEVER\n"))
    execution = run(client, "demo", "absent")
    assert execution["state"] == "FAILED"
    assert f"image {absent!r} is not present on the Docker host, and pullPolicy is NEVER" in logs(
        client, execution["id"]
    )


def test_limits_user_entrypoint_and_hosts_reach_the_container(
    client: TestClient, podman: Podman
) -> None:
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    commands:\n"
        # cgroup v1 (this machine) or v2: the limit the kernel enforces.
        "      - cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
        " || cat /sys/fs/cgroup/memory.max\n"
        '      - echo "user $(id -u):$(id -g)" && touch written-by-the-user\n'
        '      - echo "entrypoint $VIA_ENTRYPOINT"\n'
        "      - getent hosts db.internal\n"
    )
    runner = (
        "      memory:\n"
        "        memory: 64MB\n"
        "        memorySwap: 64MB\n"
        "        memoryReservation: 32MB\n"
        "        memorySwappiness: 10\n"
        "        oomKillDisable: true\n"
        "      cpu: {cpus: 0.5}\n"
        "      shmSize: 32m\n"
        "      user: '1000:1000'\n"
        "      entryPoint: [/usr/bin/env, VIA_ENTRYPOINT=yes]\n"
        "      extraHosts: ['db.internal:10.1.2.3']\n"
        "      delete: false\n"
    )
    put_flow(client, flow("limits", task, runner))
    execution = run(client, "demo", "limits")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert str(64 * 1024**2) in lines
    # The working directory was handed to the numeric user, who could write in it.
    assert "user 1000:1000" in lines
    assert "entrypoint yes" in lines
    assert any(line.split() == ["10.1.2.3", "db.internal"] for line in lines), lines
    # delete: false leaves the container to inspect.
    (container,) = podman.containers_of(execution["id"])
    try:
        host_config = container.attrs["HostConfig"]
        assert host_config["Memory"] == 64 * 1024**2
        assert host_config["MemorySwap"] == 64 * 1024**2
        assert host_config["MemoryReservation"] == 32 * 1024**2
        assert host_config["MemorySwappiness"] == 10
        assert host_config["OomKillDisable"] is True
        assert host_config["NanoCpus"] == 500_000_000
        assert host_config["ShmSize"] == 32 * 1024**2
        assert container.attrs["Config"]["User"] == "1000:1000"
        labels = container.attrs["Config"]["Labels"]
        assert labels["flowplane.io/task-id"] == "script"
        assert labels["flowplane.io/flow-id"] == "limits"
    finally:
        container.remove(force=True)


def test_timeout_stops_the_container_within_its_grace_and_removes_it(
    client: TestClient, podman: Podman
) -> None:
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    timeout: PT2S\n"
        "    commands:\n"
        "      - trap 'echo got SIGTERM; exit 143' TERM\n"
        "      - echo started\n"
        "      - sleep 120 & wait\n"
    )
    # With a grace period the container is sent SIGTERM first, and may clean up.
    put_flow(client, flow("slow", task, "      killGracePeriod: PT10S\n"))
    execution = run(client, "demo", "slow")
    lines = logs(client, execution["id"])
    assert execution["state"] == "FAILED"
    assert "started" in lines
    assert "got SIGTERM" in lines
    assert "timed out after PT2S" in lines
    assert any(line.endswith(" removed") and line.startswith("container ") for line in lines)
    assert podman.containers_of(execution["id"]) == []


def test_kill_stops_and_removes_the_container(client: TestClient, podman: Podman) -> None:
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    commands: [echo started, sleep 120]\n"
    )
    put_flow(client, flow("killed", task))
    execution_id = start(client, "killed")
    deadline = time.monotonic() + 30
    while "started" not in logs(client, execution_id):
        assert time.monotonic() < deadline, logs(client, execution_id)
        time.sleep(0.1)
    assert [c.status for c in podman.containers_of(execution_id)] == ["running"]
    response = client.post(f"/api/v1/executions/{execution_id}/kill")
    assert response.status_code == 200, response.text
    execution = wait_for_end(client, execution_id)
    assert execution["state"] == "KILLED"
    assert podman.containers_of(execution_id) == []


def test_volume_strategy_copies_files_in_and_out(client: TestClient, podman: Podman) -> None:
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    inputFiles: {in.txt: copied}\n"
        "    outputFiles: ['**/*.txt']\n"
        "    commands:\n"
        '      - mkdir -p sub && cat in.txt > sub/out.txt && echo " back" >> sub/out.txt\n'
        '      - echo "owner $(id -u) $(stat -c %u .)"\n'
        '      - echo "interfaces $(ls /sys/class/net)"\n'
    )
    runner = "      fileHandlingStrategy: VOLUME\n      networkMode: none\n      delete: false\n"
    put_flow(client, flow("volume", task, runner))
    execution = run(client, "demo", "volume")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    files = task_runs(execution)["script"]["outputs"]["outputFiles"]
    assert Path(files["sub/out.txt"]).read_text(encoding="utf-8") == "copied back\n"
    assert "owner 65534 65534" in lines
    assert "interfaces lo" in lines  # networkMode: none
    (container,) = podman.containers_of(execution["id"])
    try:
        # Copied, not mounted: nothing of the worker's filesystem is bound in.
        assert not container.attrs["HostConfig"].get("Binds")
        assert not [m for m in container.attrs.get("Mounts", []) if m.get("Type") == "bind"]
    finally:
        container.remove(force=True)


def test_volume_copy_back_writes_through_no_link(
    client: TestClient, podman: Podman, tmp_path: Path
) -> None:
    # An earlier task of a shared directory plants a link; the worker (root here)
    # copying the container's files back must not write through it.
    target = tmp_path / "server-file"
    target.write_text("original", encoding="utf-8")
    source = f"""\
id: planted
namespace: demo
tasks:
  - id: wd
    type: WorkingDirectory
    tasks:
      - id: plant
        type: shell.Commands
        commands: ["ln -s {target} out.txt"]
      - id: script
        type: shell.Commands
        containerImage: {BASE_IMAGE}
        commands: ["echo overwritten > out.txt"]
        taskRunner:
          type: io.kestra.plugin.scripts.runner.docker.Docker
          fileHandlingStrategy: VOLUME
"""
    put_flow(client, source)
    execution = run(client, "demo", "planted")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert target.read_text(encoding="utf-8") == "original"
    assert any(line.startswith("'out.txt' was not copied back") for line in lines), lines


def test_secret_env_reaches_the_container_and_never_the_log(
    client: TestClient, podman: Podman
) -> None:
    value = "Docker-S3cret-Value"
    response = client.put("/api/v1/namespaces/demo/secrets/TOKEN", json={"value": value})
    assert response.status_code in {200, 201}, response.text
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    env:\n      T: \"{{ secret('TOKEN') }}\"\n"
        "    commands:\n"
        f'      - test "$T" = {value} && echo same\n'
        '      - echo "$T"\n'
    )
    put_flow(client, flow("secret", task))
    execution = run(client, "demo", "secret")
    body = client.get(f"/api/v1/executions/{execution['id']}/logs").text
    assert execution["state"] == "SUCCESS", body
    assert "same" in logs(client, execution["id"])
    assert value not in body


def test_credentials_are_sent_with_the_pull(client: TestClient, podman: Podman) -> None:
    registry = podman.registry
    task = (
        "    type: io.kestra.plugin.scripts.python.Commands\n"
        f"    containerImage: {registry.image}\n"
        "    commands: [\"python -c 'print(6 * 7)'\"]\n"
    )

    def pull_with(credentials: str) -> tuple[str, list[str]]:
        runner = f"      pullPolicy: ALWAYS\n      credentials: {credentials}\n"
        put_flow(client, flow("pull", task, runner))
        execution = run(client, "demo", "pull")
        return execution["state"], logs(client, execution["id"])

    registry.requests.clear()
    state, lines = pull_with(f"{{username: {registry.username}, password: wrong-password}}")
    assert state == "FAILED"
    refused = next(line for line in lines if line.startswith("image "))
    assert refused.startswith(f"image {registry.image!r} is not present on the Docker host")
    assert refused.endswith("unauthorized")  # the registry's answer to the wrong password
    assert "wrong-password" not in "\n".join(lines)
    sent = [r[2] for r in registry.requests if "/manifests/" in r[1]]
    assert sent[-1] == "Basic " + base64.b64encode(b"robot:wrong-password").decode()

    # Credentials for another registry are not sent to this one.
    registry.requests.clear()
    secret = f"{registry.username}:{registry.password}"
    auth = base64.b64encode(secret.encode()).decode()
    state, lines = pull_with(f"{{auth: {auth}, registry: registry.example.com}}")
    assert state == "FAILED"
    sent = [r[2] for r in registry.requests if "/manifests/" in r[1]]
    assert sent
    assert not any(registry.authorized(header) for header in sent)

    registry.requests.clear()
    state, lines = pull_with(f"{{auth: {auth}, registry: 127.0.0.1:{registry.port}}}")
    assert state == "SUCCESS", lines
    assert "42" in lines
    assert registry.password not in "\n".join(lines)
    sent = [r[2] for r in registry.requests if "/manifests/" in r[1]]
    assert sent
    assert registry.authorized(sent[-1])
    podman.client.images.remove(registry.image)


def test_docker_config_auths_are_used_for_the_pull(client: TestClient, podman: Podman) -> None:
    registry = podman.registry
    registry.requests.clear()
    # Kestra's documented form: username and password under the registry's key.
    entry = {"username": registry.username, "password": registry.password}
    config = json.dumps({"auths": {f"http://127.0.0.1:{registry.port}": entry}})
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {registry.image}\n"
        "    commands: [echo pulled-with-config]\n"
    )
    runner = f"      pullPolicy: ALWAYS\n      config: '{config}'\n"
    put_flow(client, flow("config", task, runner))
    execution = run(client, "demo", "config")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "pulled-with-config" in lines
    assert any(registry.authorized(r[2]) for r in registry.requests if "/manifests/" in r[1])
    podman.client.images.remove(registry.image)


# --- the property table of docs/docker.md ----------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "docker.md"
NESTED: dict[str, type[BaseModel]] = {
    "credentials": DockerCredentials,
    "cpu": DockerCpu,
    "memory": DockerMemory,
}


def runner_properties() -> set[str]:
    """Every property of the runner model, nested ones as ``memory.memory``."""
    names = set()
    for name in DockerRunner.model_fields:
        nested = NESTED.get(name)
        names.update({f"{name}.{sub}" for sub in nested.model_fields} if nested else {name})
    return names


def table_rows() -> dict[str, tuple[str, str, str]]:
    """``property: (status, proof or message, refused value)`` from docs/docker.md."""
    section = DOC.read_text(encoding="utf-8").split("\n## Properties\n", 1)[1]
    lines = [line for line in section.split("\n## ", 1)[0].splitlines() if line.startswith("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 5, line
        prop, _default, status, proof, value = cells
        assert prop not in rows, f"{prop} is listed twice"
        rows[prop] = (status, proof, value)
    return rows


def test_property_table_matches_the_runner_model() -> None:
    rows = table_rows()
    assert set(rows) == runner_properties()
    tests = {name for name in globals() if name.startswith("test_")}
    for prop, (status, proof, value) in rows.items():
        assert status in {"honoured", "refused"}, prop
        if status == "honoured":
            assert proof in tests, f"{prop}: no test {proof}"
            continue
        runner: dict[str, Any] = {"type": "Docker"}
        head, _, sub = prop.partition(".")
        runner[head] = {sub: yaml.safe_load(value)} if sub else yaml.safe_load(value)
        task = {
            "id": "t",
            "type": "shell.Commands",
            "containerImage": "alpine",
            "commands": ["id"],
            "taskRunner": runner,
        }
        source = yaml.safe_dump({"id": "f", "namespace": "demo", "tasks": [task]})
        with pytest.raises(InvalidFlowError) as info:
            validate_flow(source)
        messages = [problem.message for problem in info.value.problems]
        assert any(m.startswith(proof) or proof in m for m in messages), (prop, messages)
    assert sum(status == "refused" for status, _, _ in rows.values()) >= 5


def test_a_refused_property_is_refused_by_the_api(client: TestClient) -> None:
    task = "    type: shell.Commands\n    containerImage: alpine\n    commands: [id]\n"
    source = flow("refused", task, "      volumes: ['/etc:/host-etc']\n")
    response = client.put("/api/v1/flows/demo/refused", json={"content": source})
    assert response.status_code == 422
    assert "volumes is not supported: a flow may not mount paths" in response.text


def test_namespace_files_reach_the_container(client: TestClient, podman: Podman) -> None:
    answer = client.put(
        "/api/v1/namespaces/demo/files/lib/greet.txt",
        json={"content_base64": base64.b64encode(b"from the namespace").decode()},
    )
    assert answer.status_code in {200, 201}, answer.text
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    namespaceFiles: {enabled: true, include: ['**.txt']}\n"
        "    commands:\n      - cat lib/greet.txt\n"
    )
    put_flow(client, flow("nsfiles", task, "      pullPolicy: NEVER\n"))
    execution = run(client, "demo", "nsfiles")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "from the namespace" in lines


def test_a_container_gains_no_privileges_even_as_root(client: TestClient, podman: Podman) -> None:
    # Root in the container (allowed with VOLUME) has no capability and cannot gain any.
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    commands: [\"grep -E '^(NoNewPrivs|CapEff)' /proc/self/status\", 'id -u']\n"
    )
    runner = "      user: '0'\n      fileHandlingStrategy: VOLUME\n      pullPolicy: NEVER\n"
    put_flow(client, flow("noprivs", task, runner))
    execution = run(client, "demo", "noprivs")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "NoNewPrivs:\t1" in lines
    assert "CapEff:\t0000000000000000" in lines
    assert "0" in lines


@pytest.mark.parametrize("user", ["0", "root", "0:0", "root:root"])
def test_root_is_refused_on_a_mounted_working_directory(
    client: TestClient, podman: Podman, user: str
) -> None:
    task = (
        "    type: io.kestra.plugin.scripts.shell.Commands\n"
        f"    containerImage: {BASE_IMAGE}\n"
        "    commands: [id -u]\n"
    )
    put_flow(client, flow("rootmount", task, f"      user: '{user}'\n      pullPolicy: NEVER\n"))
    execution = run(client, "demo", "rootmount")
    assert execution["state"] == "FAILED"
    assert any(
        "is refused with fileHandlingStrategy MOUNT" in line
        for line in logs(client, execution["id"])
    )
    assert podman.containers_of(execution["id"]) == []
