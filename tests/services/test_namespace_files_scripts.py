"""Script tasks and their working directory: ``namespaceFiles``, ``inputFiles`` as one string,
and ``beforeCommands`` in the script's shell.

Namespace files go in through the API, as an editor or Terraform puts them;
the flows run through the engine, their scripts in the sandbox.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from controlplane.runners.namespace_files import PathFilter
from tests.services.test_engine import logs, put_flow, run, task_runs
from tests.services.test_namespace_rights import allow

# A Python script that reports every file of its working directory but itself.
_LIST_FILES = """\
      import json, os
      found = sorted(
          os.path.relpath(os.path.join(folder, name))
          for folder, _, names in os.walk(".") for name in names
          if name != "script.py" and "__pycache__" not in folder
      )
      print("::" + json.dumps({"outputs": {"files": found}}) + "::")
"""
_CSV = bytes(range(256))  # not UTF-8: files keep their bytes


def put_file(client: TestClient, namespace: str, path: str, content: bytes) -> None:
    """Store a namespace file through the API."""
    response = client.put(
        f"/api/v1/namespaces/{namespace}/files/{path}",
        json={"content_base64": base64.b64encode(content).decode()},
    )
    assert response.status_code in {200, 201}, response.text


def files_of(execution: dict[str, Any], task_id: str) -> list[str]:
    """The working-directory listing a ``_LIST_FILES`` task printed."""
    return list(task_runs(execution)[task_id]["outputs"]["vars"]["files"])


def test_namespace_files_are_copied_by_include_and_exclude(client: TestClient) -> None:
    for path, content in {
        "helpers.py": b"GREETING = 'hello from a namespace file'\n",
        "scripts/etl.py": b"pass\n",
        "scripts/sub/query.sql": b"select 1\n",
        "data/raw.csv": _CSV,
        "README.md": b"# readme\n",
    }.items():
        put_file(client, "demo", path, content)
    put_flow(
        client,
        "id: ns-files\nnamespace: demo\ntasks:\n"
        "  - id: picked\n    type: python.Script\n"
        "    namespaceFiles:\n      enabled: true\n"
        "      include: ['scripts/**', helpers.py, '**.csv']\n      exclude: ['**.sql']\n"
        "    script: |\n"
        "      import helpers\n"
        "      print(helpers.GREETING)\n"
        "      assert open('data/raw.csv', 'rb').read() == bytes(range(256))\n"
        + _LIST_FILES
        + "  - id: everything\n    type: python.Script\n    namespaceFiles: {}\n"
        "    script: |\n" + _LIST_FILES + "  - id: disabled\n    type: python.Script\n"
        "    namespaceFiles: {enabled: false}\n    script: |\n" + _LIST_FILES + "  - id: none\n"
        "    type: python.Script\n    script: |\n" + _LIST_FILES,
    )
    execution = run(client, "demo", "ns-files")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "hello from a namespace file" in lines
    assert files_of(execution, "picked") == ["data/raw.csv", "helpers.py", "scripts/etl.py"]
    assert "namespaceFiles: 3 file(s) from demo" in lines
    assert files_of(execution, "everything") == [
        "README.md",
        "data/raw.csv",
        "helpers.py",
        "scripts/etl.py",
        "scripts/sub/query.sql",
    ]
    assert files_of(execution, "disabled") == []
    assert files_of(execution, "none") == []


def test_other_namespaces_need_their_permission_and_get_a_folder_each(
    client: TestClient,
) -> None:
    put_file(client, "team.lib", "lib.py", b"NAME = 'lib'\n")
    put_file(client, "team.lib", "shared.txt", b"from team.lib\n")
    put_file(client, "demo", "shared.txt", b"from demo\n")
    put_flow(
        client,
        "id: ns-other\nnamespace: demo\ntasks:\n"
        "  - id: merged\n    type: python.Script\n"
        "    namespaceFiles: {namespaces: [team.lib, demo]}\n"
        "    script: |\n      print(open('shared.txt').read().strip())\n" + _LIST_FILES + ""
        "  - id: foldered\n    type: python.Script\n"
        "    namespaceFiles: {namespaces: [team.lib, demo], folderPerNamespace: true}\n"
        "    script: |\n" + _LIST_FILES,
    )
    refused = run(client, "demo", "ns-other")
    assert refused["state"] == "FAILED"
    assert any(
        "namespace team.lib does not allow flows from demo to read its namespace files" in line
        for line in logs(client, refused["id"])
    )

    allow(client, "team.lib", ["demo"])
    execution = run(client, "demo", "ns-other")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    # The same path in a later namespace wins, as in Kestra.
    assert "from demo" in lines
    assert files_of(execution, "merged") == ["lib.py", "shared.txt"]
    assert files_of(execution, "foldered") == [
        "demo/shared.txt",
        "team.lib/lib.py",
        "team.lib/shared.txt",
    ]


def test_if_exists_keeps_replaces_or_refuses_a_file_already_there(client: TestClient) -> None:
    put_file(client, "demo", "conf.txt", b"from the namespace\n")
    read = "    commands: ['cat conf.txt']\n"
    put_flow(
        client,
        "id: ns-exists\nnamespace: demo\ntasks:\n"
        "  - id: shared\n    type: WorkingDirectory\n    tasks:\n"
        "      - {id: local, type: shell.Commands, commands: ['echo local > conf.txt']}\n"
        "      - id: ignore\n        type: shell.Commands\n"
        "        namespaceFiles: {ifExists: IGNORE}\n    " + read + ""
        "      - id: warn\n        type: shell.Commands\n"
        "        namespaceFiles: {ifExists: WARN}\n    " + read + ""
        "      - id: fail\n        type: shell.Commands\n        allowFailure: true\n"
        "        namespaceFiles: {ifExists: FAIL}\n    " + read + ""
        "      - id: overwrite\n        type: shell.Commands\n"
        "        namespaceFiles: {}\n    " + read,
    )
    execution = run(client, "demo", "ns-exists")
    lines = logs(client, execution["id"])
    runs = task_runs(execution)
    assert runs["fail"]["state"] == "WARNING", lines
    assert lines.count("local") == 2
    assert "namespace file 'conf.txt' already exists; the existing one is kept" in lines
    assert any("(namespaceFiles.ifExists: FAIL)" in line for line in lines)
    assert lines.count("from the namespace") == 1
    assert runs["overwrite"]["state"] == "SUCCESS"


def test_input_files_as_one_string_render_to_a_map(client: TestClient) -> None:
    put_flow(
        client,
        "id: input-string\nnamespace: demo\ntasks:\n"
        "  - id: make\n    type: OutputValues\n"
        "    values:\n      files: {a.txt: 'hello {{ flow.id }}', sub/b.json: {k: 1}}\n"
        "  - id: from-output\n    type: shell.Commands\n"
        '    inputFiles: "{{ outputs.make.values.files }}"\n'
        "    commands: ['cat a.txt', 'echo', 'cat sub/b.json']\n"
        "  - id: from-json\n    type: python.Script\n"
        '    inputFiles: \'{"t.txt": "{{ "{{ 1 + 1 }}" }}", "id.txt": "{{ flow.id }}"}\'\n'
        "    script: print(open('t.txt').read(), open('id.txt').read())\n"
        "  - id: not-a-map\n    type: shell.Commands\n    allowFailure: true\n"
        "    inputFiles: \"{{ [1, 2] }}\"\n    commands: ['true']\n",
    )
    execution = run(client, "demo", "input-string")
    lines = logs(client, execution["id"])
    assert task_runs(execution)["from-output"]["state"] == "SUCCESS", lines
    assert "hello input-string" in lines
    assert json.loads(next(line for line in lines if line.startswith("{"))) == {"k": 1}
    # Contents that came out of the rendered map are not rendered a second time.
    assert "{{ 1 + 1 }} input-string" in lines
    assert task_runs(execution)["not-a-map"]["state"] == "WARNING"
    assert (
        "inputFiles given as one string must render to a JSON map of file names to contents"
        in lines
    )


def test_before_commands_run_in_the_script_s_shell_before_it(client: TestClient) -> None:
    put_flow(
        client,
        "id: before\nnamespace: demo\ntasks:\n"
        "  - id: py\n    type: python.Script\n"
        "    beforeCommands: ['export STEP=before', 'echo first']\n"
        "    script: |\n      import os\n      print('then ' + os.environ['STEP'])\n",
    )
    execution = run(client, "demo", "before")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert lines.index("first") < lines.index("then before")


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        ([], [], ["README.md", "data/a.csv", "main.py", "scripts/etl.py", "scripts/sub/q.sql"]),
        (["scripts/**"], [], ["scripts/etl.py", "scripts/sub/q.sql"]),
        # Java's glob: `*` stays in one folder and paths start with `/`, `**` crosses folders.
        (["*.py"], [], []),
        (["**.py"], [], ["main.py", "scripts/etl.py"]),
        (["/scripts/*.py"], [], ["scripts/etl.py"]),
        (["etl.py"], [], ["scripts/etl.py"]),
        ([], ["**.sql", "README.md"], ["data/a.csv", "main.py", "scripts/etl.py"]),
        (["**.{py,md}"], ["main.py"], ["README.md", "scripts/etl.py"]),
        (["regex:.*\\.csv"], [], ["data/a.csv"]),
        (["**/[!m]*.py"], [], ["scripts/etl.py"]),
    ],
)
def test_globs_match_as_kestra_s(
    include: list[str], exclude: list[str], expected: list[str]
) -> None:
    paths = ["README.md", "data/a.csv", "main.py", "scripts/etl.py", "scripts/sub/q.sql"]
    wanted = PathFilter(include, exclude)
    assert [p for p in paths if wanted(p)] == expected


def test_namespace_files_need_the_process_runner() -> None:
    source = (
        "id: p\nnamespace: demo\ntasks:\n  - {id: k, type: shell.Commands, commands: [env],"
        " namespaceFiles: {include: [a]}, taskRunner: {type: Kubernetes}}\n"
    )
    with pytest.raises(InvalidFlowError) as info:
        validate_flow(source)
    [problem] = info.value.problems
    assert problem.message.startswith("namespaceFiles is not supported with the")
    validate_flow(source.replace("include: [a]", "enabled: false"))
