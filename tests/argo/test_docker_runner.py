"""``--runner docker`` keeps the image: the converted containers run in it, on a real Podman."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.argo import convert_source, to_yaml
from tests.runners.test_docker import BASE_IMAGE, Podman, podman  # noqa: F401 - the fixture
from tests.services.test_engine import logs, put_flow, run

WORKFLOW = f"""\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: in-image
spec:
  entrypoint: main
  templates:
    - name: main
      steps:
        - - name: count
            template: count
        - - name: show
            template: show
            arguments:
              parameters:
                - {{name: n, value: "{{{{steps.count.outputs.parameters.n}}}}"}}
    - name: count
      container:
        image: {BASE_IMAGE}
        command: [sh, -c]
        args: ["grep -c . /etc/debian_version > /tmp/n; cat /etc/debian_version"]
      outputs:
        parameters:
          - name: n
            valueFrom: {{path: /tmp/n}}
    - name: show
      inputs: {{parameters: [{{name: n}}]}}
      container:
        image: {BASE_IMAGE}
        command: [echo, "lines: {{{{inputs.parameters.n}}}}"]
"""


def test_converted_containers_run_in_their_image(
    client: TestClient,
    podman: Podman,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", podman.url)
    (flow,) = convert_source(WORKFLOW, file="in-image.yaml", namespace="demo", runner="docker")
    put_flow(client, to_yaml(flow))
    execution = run(client, "demo", "in-image")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = {r["task_id"]: r["outputs"] for r in execution["task_runs"]}
    # /etc/debian_version exists in the image, not on the worker's sandbox.
    assert outputs["count"]["vars"]["parameters"] == {"n": "1"}
    assert outputs["show"]["vars"]["result"] == "lines: 1"
    assert podman.containers_of(execution["id"]) == []
