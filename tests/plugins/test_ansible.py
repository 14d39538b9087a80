"""AnsibleCLI runs the real ``ansible-playbook`` (ansible-core) against localhost.

The flows run through the API and the embedded worker. The playbook targets
``localhost`` with ``connection: local``, so every module really runs: it
writes a file the flow collects, sets a fact, and declares outputs with the
``kestra`` module; the callback's per-host results become the outputs.

The flows run under the suite's default sandbox (bubblewrap here: the
commands run as uid 65534, in a clean environment, with a private
``/dev/shm`` for Ansible's multiprocessing locks).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.services.test_engine import logs, put_flow, run, task_runs

RUNS: dict[str, str] = {
    "io.kestra.plugin.ansible.cli.AnsibleCLI": (
        "test_playbook_writes_a_file_sets_a_fact_and_outputs"
    ),
}

# Kestra renders inputFiles, so Ansible's own {{ }} sit in a raw block.
PLAYBOOK = """\
        {% raw %}
        - name: Configure the host
          hosts: localhost
          connection: local
          gather_facts: false
          tasks:
            - name: Write the greeting
              ansible.builtin.copy:
                dest: "{{ playbook_dir }}/greeting.txt"
                content: "hello {{ who }}\\n"
            - name: Remember the answer
              ansible.builtin.set_fact:
                answer: 42
            - name: Hand values to the flow
              kestra:
                outputs:
                  answer: "{{ answer }}"
                  greeted: "{{ who }}"
        {% endraw %}
"""


def _flow(flow_id: str, extra: str = "") -> str:
    return f"""\
id: {flow_id}
namespace: demo
tasks:
  - id: ansible
    type: io.kestra.plugin.ansible.cli.AnsibleCLI
    inputFiles:
      inventory.ini: |
        localhost ansible_connection=local
      playbook.yml: |
{PLAYBOOK}
    commands:
      - ansible-playbook -i inventory.ini -e who=ops playbook.yml
    outputFiles:
      - greeting.txt
      - "*.log"
{extra}  - id: use
    type: Log
    message: "answer={{{{ outputs.ansible.vars.outputs.answer }}}}"
"""


def test_playbook_writes_a_file_sets_a_fact_and_outputs(client: TestClient) -> None:
    put_flow(client, _flow("ansible", extra="    outputLogFile: true\n"))
    execution = run(client, "demo", "ansible")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "answer=42" in lines
    assert any("TASK [Write the greeting]" in line for line in lines)

    outputs = task_runs(execution)["ansible"]["outputs"]
    assert outputs["exitCode"] == 0
    assert outputs["vars"]["outputs"] == {"answer": 42, "greeted": "ops"}
    (playbook,) = outputs["playbooks"]
    assert outputs["vars"]["playbooks"] == outputs["playbooks"]
    (play,) = playbook["plays"]
    assert play["name"] == "Configure the host"
    tasks = {task["name"]: task for task in play["tasks"]}
    assert list(tasks) == ["Write the greeting", "Remember the answer", "Hand values to the flow"]
    (written,) = tasks["Write the greeting"]["hosts"]
    assert (written["host"], written["status"]) == ("localhost", "ok")
    assert written["result"]["changed"] is True
    assert written["result"]["dest"].endswith("/greeting.txt")
    (fact,) = tasks["Remember the answer"]["hosts"]
    assert fact["result"]["ansible_facts"] == {"answer": 42}
    assert tasks["Remember the answer"]["uid"] == "Configure the host | Remember the answer"
    assert tasks["Remember the answer"]["startedAt"] <= tasks["Remember the answer"]["endedAt"]

    # The file the copy module wrote, collected by outputFiles; and Ansible's log file.
    files = outputs["outputFiles"]
    assert Path(files["greeting.txt"]).read_text() == "hello ops\n"
    assert "Remember the answer" in Path(files["log"]).read_text()


def test_explicit_mode_keeps_only_declared_outputs(client: TestClient) -> None:
    config = (
        "    ansibleConfig: |\n      [defaults]\n      log_path = {{ workingDir }}/custom.log\n"
        "      callback_plugins = ./callback_plugins\n      callbacks_enabled = kestra_logger\n"
        "      library = ./library\n"
    )
    put_flow(client, _flow("ansible-explicit", extra="    outputsMode: EXPLICIT\n" + config))
    execution = run(client, "demo", "ansible-explicit")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = task_runs(execution)["ansible"]["outputs"]
    assert outputs["vars"]["outputs"] == {"answer": 42, "greeted": "ops"}
    hosts = [h for task in outputs["playbooks"][0]["plays"][0]["tasks"] for h in task["hosts"]]
    # Statuses stay; the results are reduced to `changed`.
    assert [h["result"] for h in hosts] == [
        {"changed": True},
        {"changed": False},
        {"changed": False},
    ]


def test_a_failing_play_fails_the_task(client: TestClient) -> None:
    source = """\
id: ansible-fail
namespace: demo
tasks:
  - id: ansible
    type: ansible.cli.AnsibleCLI
    inputFiles:
      playbook.yml: |
        - hosts: localhost
          connection: local
          gather_facts: false
          tasks:
            - ansible.builtin.fail: {msg: "no way"}
    commands:
      - ansible-playbook -i localhost, playbook.yml
"""
    put_flow(client, source)
    execution = run(client, "demo", "ansible-fail")
    lines = logs(client, execution["id"])
    assert execution["state"] == "FAILED"
    assert any("no way" in line for line in lines), lines
    assert "command exited with code 2" in lines


def test_playbooks_run_as_the_sandbox_user(client: TestClient) -> None:
    source = """\
id: ansible-who
namespace: demo
tasks:
  - id: ansible
    type: io.kestra.plugin.ansible.cli.AnsibleCLI
    inputFiles:
      playbook.yml: |
        - hosts: localhost
          connection: local
          gather_facts: false
          tasks:
            - {name: who, ansible.builtin.command: id -u, register: who}
            - kestra: {outputs: {uid: "{% raw %}{{ who.stdout }}{% endraw %}"}}
    commands:
      - ansible-playbook -i localhost, playbook.yml
"""
    put_flow(client, source)
    execution = run(client, "demo", "ansible-who")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert task_runs(execution)["ansible"]["outputs"]["vars"]["outputs"] == {"uid": "65534"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("autoInstallGalaxyRequirements: false", "autoInstallGalaxyRequirements is not supported"),
        ("docker: {image: x}", "docker is not supported"),
        (
            "ansibleConfig: x\n    containerImage: cytopia/ansible\n    taskRunner:\n"
            "      type: io.kestra.plugin.ee.kubernetes.runner.Kubernetes",
            "ansibleConfig needs the Process task runner",
        ),
    ],
)
def test_unsupported_properties_are_refused(extra: str, message: str) -> None:
    source = f"""\
id: ansible-refused
namespace: demo
tasks:
  - id: ansible
    type: io.kestra.plugin.ansible.cli.AnsibleCLI
    commands: [ansible --version]
    {extra}
"""
    with pytest.raises(InvalidFlowError, match=message):
        validate_flow(source)
