"""Kestra dialect gaps found by running the public flows (docs/kestra-public.md), closed.

Each test runs a flow through the engine and checks its outcome: nested
dotted input ids, ``{{ outputDir }}``, Kestra's ``outputFiles`` globs,
``read()`` and ``range()``, the calendar functions in a flow, ``LoopUntil``,
FILE inputs refused at validation, and the "did you mean" hint.
"""

from __future__ import annotations

from pathlib import Path

import pytest
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
    format: >-
      {{ inputs.request.name }} for {{ inputs.request.days }} days
      ({{ inputs['request.name'] }})
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
    format: >-
      {{ read(outputs.python.outputFiles['py.txt']) }}|{{
      read(outputs.shell.outputFiles['sub/deep.txt']) }}
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
    # `*.csv` stays at the top (Java's `*` never crosses a folder); out/** takes out/nested.csv.
    expected = ["out/deeper/output2.txt", "out/nested.csv", "out/output1.txt", "top.csv"]
    assert sorted(files) == expected
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
    items = sorted(r["outputs"]["value"] for r in execution["task_runs"] if r["task_id"] == "item")
    assert items == ["item 1", "item 2", "item 3"]
    assert task_runs(execution)["stepped"]["outputs"]["value"] == "[0,5,10] 3-2-1 400"


def test_calendar_functions_decide_in_a_flow(client: TestClient) -> None:
    # The current blueprints' schedule helpers, in an If as a `when:` would use them.
    source = """\
id: calendar
namespace: demo
inputs:
  - id: day
    type: STRING
tasks:
  - id: facts
    type: io.kestra.plugin.core.debug.Return
    format: >-
      {{ dayOfWeek(inputs.day) }} {{ dayOfMonth(inputs.day) }}/{{ monthOfYear(inputs.day) }}
      {{ hourOfDay(inputs.day) }}h weekend={{ isWeekend(inputs.day) }}
  - id: first_monday
    type: io.kestra.plugin.core.flow.If
    condition: >-
      {{ isDayWeekInMonth(inputs.day, 'MONDAY', 'FIRST') and hourOfDay(inputs.day) < 17 }}
    then:
      - id: yes
        type: io.kestra.plugin.core.log.Log
        message: first Monday, office hours
    else:
      - id: no
        type: io.kestra.plugin.core.log.Log
        message: another day
"""
    put_flow(client, source)
    monday = run(client, "demo", "calendar", day="2025-01-06T14:30:00+02:00")
    assert monday["state"] == "SUCCESS", logs(client, monday["id"])
    assert task_runs(monday)["facts"]["outputs"]["value"] == "MONDAY 6/1 14h weekend=false"
    assert "first Monday, office hours" in logs(client, monday["id"])
    sunday = run(client, "demo", "calendar", day="2025-01-12T09:00:00Z")
    assert task_runs(sunday)["facts"]["outputs"]["value"] == "SUNDAY 12/1 9h weekend=true"
    assert "another day" in logs(client, sunday["id"])


def test_read_takes_namespace_files_and_refuses_other_paths(client: TestClient) -> None:
    response = client.put(
        "/api/v1/namespaces/demo/files/scripts/greeting.txt",
        json={"content": "hello from the namespace"},
    )
    assert response.status_code in {200, 201}, response.text
    source = """\
id: reader
namespace: demo
tasks:
  - id: own
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('scripts/greeting.txt') }}|{{ read('/scripts/greeting.txt') }}"
  - id: server_file
    type: io.kestra.plugin.core.debug.Return
    format: "{{ read('/etc/hostname') }}"
"""
    put_flow(client, source)
    execution = run(client, "demo", "reader")
    lines = logs(client, execution["id"])
    value = task_runs(execution)["own"]["outputs"]["value"]
    assert value == "hello from the namespace|hello from the namespace"
    assert execution["state"] == "FAILED"
    assert any(
        "read('/etc/hostname'): not a file of this execution nor a namespace file of demo" in line
        for line in lines
    ), lines


def test_loop_until_is_wait_for_under_kestras_current_name(client: TestClient) -> None:
    # Kestra's plugin example for io.kestra.plugin.core.flow.LoopUntil, as published.
    source = """\
id: loop_until
namespace: demo
tasks:
  - id: loop
    type: io.kestra.plugin.core.flow.LoopUntil
    condition: "{{ outputs.return.value == '4' }}"
    checkFrequency:
      interval: PT0S
    tasks:
      - id: return
        type: io.kestra.plugin.core.debug.Return
        format: "{{ outputs.loop.iterationCount }}"
"""
    put_flow(client, source)
    execution = run(client, "demo", "loop_until")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    returns = [r for r in execution["task_runs"] if r["task_id"] == "return"]
    assert [r["outputs"]["value"] for r in returns] == ["1", "2", "3", "4"]
    assert task_runs(execution)["loop"]["outputs"]["iterationCount"] == 4


def test_file_inputs_are_refused_at_validation_not_at_every_start() -> None:
    source = """\
id: input-file
namespace: company.team
inputs:
  - id: text_file
    type: FILE
tasks:
  - id: read_file
    type: io.kestra.plugin.core.log.Log
    message: "{{ inputs.text_file }}"
"""
    with pytest.raises(InvalidFlowError) as caught:
        validate_flow(source)
    assert "a required FILE input is not supported" in str(caught.value)
    # An optional one stays valid: the run starts without it.
    validate_flow(source.replace("type: FILE", "type: FILE\n    required: false"))


def test_did_you_mean_never_suggests_the_same_name() -> None:
    # `payload` is a property of other types (SlackIncomingWebhook), not of TeamsExecution.
    source = """\
id: hint
namespace: company.team
tasks:
  - id: send
    type: io.kestra.plugin.notifications.teams.TeamsExecution
    url: https://example.com/hook
    payload: "{}"
  - id: typo
    type: io.kestra.plugin.core.log.Log
    mesage: hi
"""
    with pytest.raises(InvalidFlowError) as caught:
        validate_flow(source)
    text = str(caught.value)
    assert "unknown property 'payload'" in text
    assert "did you mean 'payload'" not in text
    assert "unknown property 'mesage'; did you mean 'message'?" in text


def test_for_each_over_paths_keeps_each_values_outputs(client: TestClient) -> None:
    # Values holding "/" (file paths) once broke the run key that names each iteration.
    source = """\
id: paths
namespace: demo
tasks:
  - id: each
    type: ForEach
    values: ["/data/a.csv", "/data/b.csv"]
    tasks:
      - id: name
        type: Return
        format: "{{ taskrun.value }}"
  - id: last
    type: Log
    message: "{{ outputs.name['/data/b.csv'].value }}"
"""
    put_flow(client, source)
    execution = run(client, "demo", "paths")
    lines = logs(client, execution["id"])
    assert execution["state"] == "SUCCESS", lines
    assert "/data/b.csv" in lines
