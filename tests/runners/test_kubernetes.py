"""The Kubernetes runner, end to end through the engine, against API contracts.

There is no cluster here: a real HTTP server answers with the Pod and Status
objects a Kubernetes API server returns (tests/runners/contracts/, written from
the API reference, not recorded), and checks the
requests the runner makes. See docs/kubernetes.md for what this does and does not prove.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.tasktypes import scripts
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from controlplane.runners import kubernetes
from tests.runners.tls import make_pki

NAMESPACE = "flowplane-jobs"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"


def flow(url: str, commands: list[str], *, extra: str = "", runner: str = "") -> str:
    lines = "\n".join(f"      - {command}" for command in commands)
    return f"""\
id: k8s
namespace: demo
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    containerImage: alpine:3.20
    env:
      GREETING: hello
    commands:
{lines}
{extra}    taskRunner:
      type: io.kestra.plugin.ee.kubernetes.runner.Kubernetes
      namespace: {NAMESPACE}
      pullPolicy: IfNotPresent
      serviceAccountName: flowplane-runner
      nodeSelector:
        pool: batch
      labels:
        team: data
      resources:
        request:
          cpu: 100m
          memory: 64Mi
      config:
        masterUrl: {url}
        oauthToken: s3cret-token
{runner}  - id: use
    type: Log
    message: "answer={{{{ outputs.sh.vars.answer }}}}"
"""


def run(client: TestClient, source: str) -> tuple[dict[str, Any], list[str]]:
    response = client.put("/api/v1/flows/demo/k8s", json={"content": source})
    assert response.status_code in {200, 201}, response.text
    response = client.post(
        "/api/v1/executions/demo/k8s", params={"wait": True, "timeout": 60}, json={"inputs": {}}
    )
    assert response.status_code == 201, response.text
    execution = response.json()
    logs = client.get(f"/api/v1/executions/{execution['id']}/logs").json()
    return execution, [line["message"] for line in logs]


def test_success_streams_the_log_sets_outputs_and_deletes_the_pod(
    client: TestClient, kube: Any
) -> None:
    server = kube("success")
    commands = ['echo "$GREETING from the pod"', "'echo ''::{\"outputs\":{\"answer\":42}}::'''"]
    execution, logs = run(client, flow(server.url, commands))

    assert execution["state"] == "SUCCESS", logs
    assert server.unexpected == []
    calls = server.calls()
    assert calls[0] == f"POST {PODS}"
    assert f"GET {PODS}/{{name}}/log" in calls
    assert calls[-1] == f"DELETE {PODS}/{{name}}"
    # The status is polled until the pod has ended, through every phase of the contract.
    assert calls.count(f"GET {PODS}/{{name}}") == 3
    log_request = next(r for r in server.requests if r.path.endswith("/log"))
    assert log_request.query == {"container": ["main"], "follow": ["true"]}
    assert all(r.headers["authorization"] == "Bearer s3cret-token" for r in server.requests)
    delete = server.requests[-1]
    assert "gracePeriodSeconds" not in delete.query

    pod = server.pod()
    assert pod["apiVersion"] == "v1"
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["namespace"] == NAMESPACE
    assert pod["metadata"]["name"].startswith("k8s-sh-")
    labels = pod["metadata"]["labels"]
    assert labels["team"] == "data"
    assert labels["flowplane.io/flow-id"] == "k8s"
    assert labels["flowplane.io/execution-id"] == execution["id"]
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "flowplane-runner"
    assert spec["nodeSelector"] == {"pool": "batch"}
    (container,) = spec["containers"]
    assert container["name"] == "main"
    assert container["image"] == "alpine:3.20"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert 'echo "$GREETING from the pod"' in container["command"][2]
    assert container["workingDir"] == "/kestra/working-dir"
    assert {"name": "GREETING", "value": "hello"} in container["env"]
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "64Mi"}}

    # The contract's log: plain lines become task logs, the outputs line becomes outputs.
    assert "hello from the pod" in logs
    assert "bye" in logs
    assert not any(line.startswith("::{") for line in logs)
    assert "answer=42" in logs
    (sh,) = [run for run in execution["task_runs"] if run["task_id"] == "sh"]
    assert sh["outputs"] == {"exitCode": 0, "vars": {"answer": 42, "who": "pod"}}


def test_failed_pod_fails_the_task_with_its_exit_code(client: TestClient, kube: Any) -> None:
    server = kube("failure")
    execution, logs = run(client, flow(server.url, ["test -f input.txt || exit 3"]))

    assert execution["state"] == "FAILED"
    assert "no input found" in logs
    assert "command exited with code 3" in logs
    assert not any(line.startswith("answer=") for line in logs)
    assert server.calls()[-1] == f"DELETE {PODS}/{{name}}"
    assert server.unexpected == []


def test_timeout_deletes_the_pod_at_once(client: TestClient, kube: Any) -> None:
    server = kube("timeout")
    execution, logs = run(client, flow(server.url, ["sleep 3600"], extra="    timeout: PT2S\n"))

    assert execution["state"] == "FAILED"
    assert "sleeping" in logs
    assert "timed out after 2s" in logs
    calls = server.calls()
    assert calls[-1] == f"DELETE {PODS}/{{name}}"
    assert server.requests[-1].query == {"gracePeriodSeconds": ["0"]}
    assert any(line.startswith("pod flowplane-jobs/k8s-sh-") and "deleted" in line for line in logs)
    assert server.unexpected == []


def test_timeout_deletes_the_pod_even_with_delete_false(client: TestClient, kube: Any) -> None:
    server = kube("timeout")
    source = flow(
        server.url, ["sleep 3600"], extra="    timeout: PT1S\n", runner="      delete: false\n"
    )
    execution, _ = run(client, source)

    assert execution["state"] == "FAILED"
    assert server.calls()[-1] == f"DELETE {PODS}/{{name}}"


def test_delete_false_keeps_the_finished_pod(client: TestClient, kube: Any) -> None:
    server = kube("success")
    source = flow(server.url, ["echo hi"], runner="      delete: false\n")
    execution, _ = run(client, source)

    assert execution["state"] == "SUCCESS"
    assert not [call for call in server.calls() if call.startswith("DELETE")]


def test_forbidden_create_is_a_clear_task_failure(client: TestClient, kube: Any) -> None:
    server = kube("forbidden")
    execution, logs = run(client, flow(server.url, ["echo hi"]))

    assert execution["state"] == "FAILED"
    assert server.calls() == [f"POST {PODS}"]
    (message,) = [line for line in logs if "could not create a pod" in line]
    assert message.startswith(f"could not create a pod in namespace {NAMESPACE}: 403 Forbidden: ")
    assert 'cannot create resource "pods"' in message


def test_unreachable_api_is_a_clear_task_failure(client: TestClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    execution, logs = run(client, flow(f"http://127.0.0.1:{port}", ["echo hi"]))

    assert execution["state"] == "FAILED"
    assert any(line.startswith(f"could not create a pod in namespace {NAMESPACE}") for line in logs)


def test_pod_script_writes_input_files_and_runs_the_script(
    client: TestClient, kube: Any, tmp_path: Path
) -> None:
    server = kube("success")
    source = f"""\
id: k8s
namespace: demo
tasks:
  - id: sh
    type: io.kestra.plugin.scripts.shell.Script
    containerImage: alpine:3.20
    inputFiles:
      data/in.txt: "it's {{{{ flow.id }}}}"
    script: |
      echo "read: $(cat data/in.txt)"
    taskRunner:
      type: Kubernetes
      namespace: {NAMESPACE}
      config:
        masterUrl: {server.url}
"""
    execution, logs = run(client, source)
    assert execution["state"] == "SUCCESS", logs
    command = server.pod()["spec"]["containers"][0]["command"]
    assert server.pod()["spec"]["containers"][0]["image"] == "alpine:3.20"
    # Kestra's default pull policy.
    assert server.pod()["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    # The command is what a container's shell would run: run it here, in an empty dir.
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout == "read: it's k8s\n"
    assert (tmp_path / "script.sh").is_file()


@pytest.mark.parametrize(
    ("spelling", "stored"),
    [
        ("io.kestra.plugin.ee.kubernetes.runner.Kubernetes", scripts.KUBERNETES_RUNNER),
        ("io.kestra.plugin.kubernetes.runner.Kubernetes", scripts.KUBERNETES_RUNNER),
        ("Kubernetes", scripts.KUBERNETES_RUNNER),
        ("Process", scripts.PROCESS_RUNNER),
    ],
)
def test_runner_names_are_stored_in_full(spelling: str, stored: str) -> None:
    source = f"""\
        id: x
        namespace: ns
        tasks:
          - id: a
            type: shell.Commands
            commands: [ls]
            taskRunner:
              type: {spelling}
        """
    task = validate_flow(textwrap.dedent(source)).spec.tasks[0]
    assert isinstance(task, scripts.ShellCommands)
    assert task.taskRunner is not None
    assert task.taskRunner.type == stored


def test_kestra_pull_policy_spelling_is_kubernetes_spelling() -> None:
    source = """\
        id: x
        namespace: ns
        tasks:
          - id: a
            type: shell.Commands
            commands: [ls]
            taskRunner: {type: Kubernetes, pullPolicy: IF_NOT_PRESENT}
        """
    task = validate_flow(textwrap.dedent(source)).spec.tasks[0]
    assert isinstance(task, scripts.ShellCommands)
    assert isinstance(task.taskRunner, scripts.KubernetesRunner)
    assert task.taskRunner.pullPolicy == "IfNotPresent"


def test_output_files_are_refused_with_the_kubernetes_runner() -> None:
    source = """\
        id: x
        namespace: ns
        tasks:
          - id: a
            type: shell.Commands
            commands: [ls]
            outputFiles: [out.txt]
            taskRunner: {type: Kubernetes}
        """
    with pytest.raises(InvalidFlowError) as info:
        validate_flow(textwrap.dedent(source))
    assert "outputFiles is not supported with the Kubernetes task runner" in str(info.value)


def test_pod_names_and_label_values_fit_kubernetes_rules() -> None:
    name = kubernetes.pod_name("My_Flow.with-a-very-long-name-" + "x" * 80 + "-task")
    assert len(name) <= 63
    assert name == name.lower()
    assert name[0].isalnum()
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    assert kubernetes.label_value("-a b/c_" + "d" * 80) == "a-b-c_" + "d" * 57


def test_client_certificate_data_authenticates_to_an_api_server_that_requires_one(
    client: TestClient, kube: Any, tmp_path: Path
) -> None:
    """caCertData, clientCertData and clientKeyData, base64 as in a kubeconfig, over TLS."""
    pki = make_pki(tmp_path)
    server = kube("success", tls=pki.server_context())

    def data(pem: str) -> str:
        return base64.b64encode(pem.encode()).decode()

    runner = (
        f"        caCertData: {data(pki.ca_pem)}\n"
        f"        clientCertData: {data(pki.client_cert_pem)}\n"
        f"        clientKeyData: {data(pki.client_key_pem)}\n"
    )
    execution, logs = run(client, flow(server.url, ["echo hi"], runner=runner))

    assert execution["state"] == "SUCCESS", logs
    assert server.calls()[0] == f"POST {PODS}"
