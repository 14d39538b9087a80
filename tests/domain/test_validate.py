"""Validation reports every problem with file, line, column and field path."""

from __future__ import annotations

import textwrap

import pytest

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError, Problem


def problems_of(source: str) -> list[Problem]:
    with pytest.raises(InvalidFlowError) as info:
        validate_flow(textwrap.dedent(source), file="backup.yaml")
    return info.value.problems


def rendered(source: str) -> list[str]:
    return [p.render() for p in problems_of(source)]


def test_schema_errors_are_all_reported_with_locations() -> None:
    lines = rendered(
        """\
        id: backup
        namespace: platform.ops
        tasks:
          - id: a
            type: Lgo
            message: hi
          - id: b
            type: io.kestra.plugin.core.log.Log
            mesage: hi
            retry:
              type: constant
              interval: PT1S
              maxAttempts: 0
        """
    )
    assert lines == [
        "backup.yaml:4:5: tasks[0]: unknown task type 'Lgo'; did you mean "
        "'io.kestra.plugin.core.log.Log'?",
        "backup.yaml:7:5: tasks[1].message: required property is missing",
        "backup.yaml:9:13: tasks[1].mesage: unknown property 'mesage'; did you mean 'message'?",
        "backup.yaml:13:20: tasks[1].retry.maxAttempts: must be ≥ 1",
    ]


def test_semantic_errors_are_all_reported() -> None:
    lines = rendered(
        """\
        id: backup
        namespace: platform.ops
        tasks:
          - id: a
            type: Log
            message: hi
          - id: a
            type: Return
          - id: d
            type: Dag
            tasks:
              - task: {id: x1, type: Return}
                dependsOn: [x2]
              - task: {id: x2, type: Return}
                dependsOn: [x1, x9]
        triggers:
          - id: s
            type: Schedule
            cron: '61 * * * *'
            timezone: Mars/Olympus
        """
    )
    assert lines == [
        "backup.yaml:7:9: tasks[1].id: task id 'a' is already used at tasks[0]; "
        "task ids are unique within a flow",
        "backup.yaml:12:7: tasks[2].tasks: dependency cycle: x1 → x2 → x1",
        "backup.yaml:15:25: tasks[2].tasks[1].dependsOn[1]: depends on 'x9', which is not "
        "a task of this Dag",
        "backup.yaml:19:11: triggers[0].cron: '61 * * * *' is not a valid cron expression "
        "(5 fields)",
        "backup.yaml:20:15: triggers[0].timezone: unknown time zone 'Mars/Olympus'",
    ]


def test_template_errors_point_inside_block_scalars() -> None:
    problems = problems_of(
        """\
        id: scripted
        namespace: platform.ops
        tasks:
          - id: run
            type: io.kestra.plugin.scripts.shell.Script
            script: |
              echo start
              echo {{ inputs.name }
              echo end
        """
    )
    assert len(problems) == 1
    assert problems[0].line == 8
    assert problems[0].path == "tasks[0].script"
    assert "invalid expression" in problems[0].message


def test_input_defaults_and_types_are_checked() -> None:
    lines = rendered(
        """\
        id: inputs
        namespace: platform.ops
        inputs:
          - id: count
            type: INT
            defaults: many
          - id: env
            type: SELECT
            values: [dev, prod]
            defaults: staging
          - id: list
            type: ARRAY
          - id: count
            type: STRING
        tasks:
          - id: a
            type: Log
            message: hi
        """
    )
    assert lines == [
        "backup.yaml:6:15: inputs[0].defaults: default 'many' is not an integer",
        "backup.yaml:10:15: inputs[1].defaults: default 'staging' is not one of the values "
        "['dev', 'prod']",
        "backup.yaml:12:11: inputs[2].type: an ARRAY input needs itemType",
        "backup.yaml:13:9: inputs[3].id: input id 'count' is given twice",
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("id: x\nnamespace: Bad.NS\ntasks: [{id: a, type: Log, message: m}]\n", "namespace"),
        ("id: 'bad id'\nnamespace: ns\ntasks: [{id: a, type: Log, message: m}]\n", "id"),
        ("id: x\nnamespace: ns\ntasks: []\n", "tasks: must not be empty"),
        ("id: x\nnamespace: ns\n", "tasks: required property is missing"),
        ("- a\n- b\n", "a flow must be a YAML mapping"),
        ("id: x\nid: y\n", "duplicate key 'id'"),
        ("id: [\n", "invalid YAML"),
        ("", "the document is empty"),
        ("id: x\n---\nid: y\n", "single YAML document"),
    ],
)
def test_malformed_documents(source: str, expected: str) -> None:
    assert any(expected in line for line in rendered(source))


def test_alias_bomb_is_refused_quickly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 10):
        prev = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        bomb += f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]\n"
    problems = problems_of(bomb)
    assert "expands to more than" in problems[0].message


def test_an_unknown_task_runner_gets_a_clear_error() -> None:
    problems = problems_of(
        """\
        id: x
        namespace: ns
        tasks:
          - id: run
            type: io.kestra.plugin.scripts.shell.Commands
            commands: [ls]
            taskRunner:
              type: io.kestra.plugin.ee.aws.runner.Batch
        """
    )
    assert problems[0].path == "tasks[0].taskRunner"
    assert problems[0].message.startswith(
        "taskRunner.type must be io.kestra.plugin.core.runner.Process, "
        "io.kestra.plugin.scripts.runner.docker.Docker or"
    )


def test_aliases_and_both_retry_spellings_are_accepted() -> None:
    flow = validate_flow(
        textwrap.dedent(
            """\
            id: x
            namespace: ns
            tasks:
              - id: a
                type: shell.Commands
                commands: [echo hi]
                retry: {type: exponential, interval: PT1S, maxInterval: PT10S, maxAttempt: 3}
              - id: b
                type: Log
                message: hi
                retry: {type: random, minInterval: PT1S, maxInterval: PT2S, maxAttempts: 2}
            """
        )
    )
    assert flow.spec.tasks[0].type == "io.kestra.plugin.scripts.shell.Commands"
    assert flow.spec.tasks[0].retry is not None
    assert flow.spec.tasks[0].retry.maxAttempts == 3
    assert flow.spec.tasks[1].type == "io.kestra.plugin.core.log.Log"
