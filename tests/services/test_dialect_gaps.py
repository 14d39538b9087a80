"""Kestra dialect gaps found by running the public flows (docs/kestra-public.md), closed.

Each test runs a flow through the engine and checks its outcome: nested
dotted input ids, ``{{ outputDir }}``, Kestra's ``outputFiles`` globs,
``read()`` and ``range()``, the calendar functions in a flow, ``LoopUntil``,
FILE inputs refused at validation, and the "did you mean" hint.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.services.test_engine import logs, put_flow, run, task_runs


def test_dotted_input_ids_are_nested_as_in_kestra(client: TestClient) -> None:
    source = """\
id: nested
namespace: demo
inputs:
  - id: request.name
    type: STRING
  - id: request.days
    type: INT
    defaults: 3
tasks:
  - id: say
    type: io.kestra.plugin.core.debug.Return
    format: "{{ inputs.request.name }} for {{ inputs.request.days }} days ({{ inputs['request.name'] }})"
"""
    put_flow(client, source)
    execution = run(client, "demo", "nested", **{"request.name": "Ada"})
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert task_runs(execution)["say"]["outputs"]["value"] == "Ada for 3 days (Ada)"


def test_output_dir_files_become_output_files_and_read_returns_them(client: TestClient) -> None:
    # The blueprints' shapes: a script writes to {{ outputDir }}, a Log reads it back.
    source = """\
id: outdir
namespace: demo
tasks:
  - id: shell
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - mkdir -p {{ outputDir }}/sub
      - printf 'from shell' > {{ outputDir }}/myfile.txt
      - printf 'nested' > "$(pwd)/$(basename {{ outputDir }})/sub/deep.txt"
  - id: python
    type: io.kestra.plugin.scripts.python.Script
    script: |
      with open("{{ outputDir }}/py.txt", "w") as f:
          f.write("from python")
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "read: {{ read(outputs.shell.outputFiles['myfile.txt']) }}"
  - id: back
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read(outputs.python.outputFiles['py.txt']) }}|{{ read(outputs.shell.outputFiles['sub/deep.txt']) }}"
"""
    put_flow(client, source)
    execution = run(client, "demo", "outdir")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    runs = task_runs(execution)
    shell_files = runs["shell"]["outputs"]["outputFiles"]
    assert sorted(shell_files) == ["myfile.txt", "sub/deep.txt"]
    assert Path(shell_files["myfile.txt"]).read_text(encoding="utf-8") == "from shell"
    assert list(runs["python"]["outputs"]["outputFiles"]) == ["py.txt"]
    assert "read: from shell" in lines
    assert runs["back"]["outputs"]["value"] == "from python|nested"


def test_output_files_globs_match_as_in_kestra(client: TestClient) -> None:
    # blueprints/parallel-files: `out/**` names every file under out/, at any depth.
    source = """\
id: globs
namespace: demo
tasks:
  - id: bash
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    outputFiles:
      - out/**
      - "*.csv"
    commands:
      - mkdir -p out/deeper
      - echo one > out/output1.txt
      - echo two > out/deeper/output2.txt
      - echo a,b > top.csv
      - echo c,d > out/nested.csv
  - id: copy
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    inputFiles:
      deep.txt: "{{ outputs.bash.outputFiles['out/deeper/output2.txt'] }}"
    commands:
      - cat deep.txt
  - id: log
    type: io.kestra.plugin.core.log.Log
    message: "{{ read(outputs.bash.outputFiles['out/nested.csv']) | trim }}"
"""
    put_flow(client, source)
    execution = run(client, "demo", "globs")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    files = task_runs(execution)["bash"]["outputs"]["outputFiles"]
    # `*.csv` stays at the top (Java's `*` never crosses a folder); out/nested.csv comes from out/**.
    assert sorted(files) == ["out/deeper/output2.txt", "out/nested.csv", "out/output1.txt", "top.csv"]
    assert Path(files["out/output1.txt"]).read_text(encoding="utf-8") == "one\n"
    # A file output given as an input file is copied in (Kestra copies its URI's file).
    assert "two" in lines
    assert "c,d" in lines


def test_range_is_pebbles_and_feeds_a_for_each(client: TestClient) -> None:
    # blueprints/subflow-for-each-value: `range(1, 400)` is 1..400, as a list.
    source = """\
id: ranges
namespace: demo
tasks:
  - id: each
    type: io.kestra.plugin.core.flow.ForEach
    values: "{{ range(1, 3) }}"
    tasks:
      - id: item
        type: io.kestra.plugin.core.debug.Return
        format: "item {{ taskrun.value }}"
  - id: stepped
    type: io.kestra.plugin.core.debug.Return
    format: "{{ range(0, 10, 5) }} {{ range(3, 1, -1) | join('-') }} {{ range(1, 400) | length }}"
"""
    put_flow(client, source)
    execution = run(client, "demo", "ranges")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    items = sorted(
        r["outputs"]["value"] for r in execution["task_runs"] if r["task_id"] == "item"
    )
    assert items == ["item 1", "item 2", "item 3"]
    assert task_runs(execution)["stepped"]["outputs"]["value"] == "[0,5,10] 3-2-1 400"
