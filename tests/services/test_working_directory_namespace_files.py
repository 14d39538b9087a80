"""``namespaceFiles`` on a WorkingDirectory: written into the shared folder before ``inputFiles``.

Namespace files go in through the API; the flows run through the engine and
the embedded worker, their scripts in the sandbox, as the script tasks' own
``namespaceFiles`` tests do (tests/services/test_namespace_files_scripts.py).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.services.test_engine import logs, put_flow, run, task_runs, wait_for_end
from tests.services.test_namespace_files_scripts import files_of, put_file
from tests.services.test_namespace_rights import allow

# A Python script that reports every file of the shared folder but itself.
_LIST_FILES = """\
          import json, os
          found = sorted(
              os.path.relpath(os.path.join(folder, name))
              for folder, _, names in os.walk(".") for name in names
              if name != "script.py" and "__pycache__" not in folder
          )
          print("::" + json.dumps({"outputs": {"files": found}}) + "::")
"""


def test_the_shared_folder_gets_the_selected_files_before_input_files(
    client: TestClient,
) -> None:
    for path, content in {
        "helpers.py": b"GREETING = 'hello from a namespace file'\n",
        "queries/count.sql": b"select count(*) from t\n",
        "queries/draft.sql": b"draft\n",
        "notes.txt": b"from the namespace\n",
        "README.md": b"# not selected\n",
    }.items():
        put_file(client, "demo", path, content)
    put_flow(
        client,
        "id: wd-ns\nnamespace: demo\ntasks:\n"
        "  - id: dir\n    type: WorkingDirectory\n"
        "    namespaceFiles:\n"
        "      include: [helpers.py, 'queries/**', notes.txt]\n"
        "      exclude: ['**draft.sql']\n"
        "    inputFiles:\n      notes.txt: from inputFiles\n"
        "    outputFiles: ['queries/*.sql']\n"
        "    tasks:\n"
        "      - id: py\n        type: python.Script\n        script: |\n"
        "          import helpers\n"
        "          print(helpers.GREETING)\n"
        "          print(open('notes.txt').read().strip())\n" + _LIST_FILES + ""
        "      - id: sh\n        type: shell.Commands\n"
        "        commands: ['cat queries/count.sql']\n",
    )
    execution = run(client, "demo", "wd-ns")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "hello from a namespace file" in lines
    # inputFiles are written after the namespace files: a file of both is inputFiles'.
    assert "from inputFiles" in lines
    assert "from the namespace" not in lines
    assert "select count(*) from t" in lines
    assert files_of(execution, "py") == ["helpers.py", "notes.txt", "queries/count.sql"]
    assert "namespaceFiles: 3 file(s) from demo" in lines
    # The folder's outputFiles see the namespace files as any other file of the folder.
    assert list(task_runs(execution)["dir"]["outputs"]["outputFiles"]) == ["queries/count.sql"]


def test_other_namespaces_need_their_permission_and_get_a_folder_each(
    client: TestClient,
) -> None:
    put_file(client, "team.lib", "lib.py", b"NAME = 'from team.lib'\n")
    put_file(client, "demo", "own.txt", b"own\n")
    put_flow(
        client,
        "id: wd-other\nnamespace: demo\ntasks:\n"
        "  - id: dir\n    type: WorkingDirectory\n"
        "    namespaceFiles:\n      namespaces: [team.lib, demo]\n"
        "      folderPerNamespace: true\n"
        "    tasks:\n"
        "      - id: py\n        type: python.Script\n        script: |\n"
        "          import sys\n"
        "          sys.path.insert(0, 'team.lib')\n"
        "          import lib\n"
        "          print(lib.NAME)\n" + _LIST_FILES,
    )
    refused = run(client, "demo", "wd-other")
    lines = logs(client, refused["id"])
    assert refused["state"] == "FAILED"
    assert lines == [
        "namespace team.lib does not allow flows from demo to read its namespace files "
        "(allowedNamespaces)"
    ]
    # The folder failed before any of its tasks ran.
    assert "py" not in task_runs(refused)

    allow(client, "team.lib", ["demo"])
    execution = run(client, "demo", "wd-other")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "from team.lib" in lines
    assert files_of(execution, "py") == ["demo/own.txt", "team.lib/lib.py"]


def test_a_resumed_folder_keeps_what_its_tasks_made_of_the_files(client: TestClient) -> None:
    # After a Pause the worker walks the folder again; the files its tasks changed stay.
    put_file(client, "demo", "state.txt", b"as stored\n")
    put_flow(
        client,
        "id: wd-pause\nnamespace: demo\ntasks:\n"
        "  - id: dir\n    type: WorkingDirectory\n    namespaceFiles: {include: [state.txt]}\n"
        "    tasks:\n"
        "      - {id: change, type: shell.Commands, commands: ['echo changed > state.txt']}\n"
        "      - {id: wait, type: Pause}\n"
        "      - {id: read, type: shell.Commands, commands: ['cat state.txt']}\n",
    )
    paused = run(client, "demo", "wd-pause")
    assert paused["state"] == "PAUSED", logs(client, paused["id"])
    resumed = client.post(f"/api/v1/executions/{paused['id']}/resume", json={})
    assert resumed.status_code == 200, resumed.text
    final = wait_for_end(client, paused["id"])
    lines = logs(client, paused["id"])
    assert final["state"] == "SUCCESS", lines
    assert "changed" in lines
    assert "as stored" not in lines
    # The bookkeeping stays out of the folder's outputs.
    assert task_runs(final)["dir"]["outputs"] == {}


def test_namespace_files_of_a_folder_are_validated_as_a_script_task_s() -> None:
    with pytest.raises(InvalidFlowError) as info:
        validate_flow(
            "id: p\nnamespace: demo\ntasks:\n"
            "  - id: dir\n    type: WorkingDirectory\n"
            "    namespaceFiles: {ifExists: REPLACE}\n"
            "    tasks: [{id: l, type: Log, message: m}]\n"
        )
    [problem] = info.value.problems
    assert "namespaceFiles.ifExists" in problem.path or "ifExists" in problem.message
