"""Pebble operators and Kestra filters in real flows, run by the embedded worker."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.services.test_engine import logs, put_flow, run

OPERATORS = """\
id: operators
namespace: demo
inputs:
  - id: region
    type: STRING
    defaults: eu-west
tasks:
  - id: tags
    type: Return
    format: "prod,eu"
  - id: branch
    type: If
    condition: >-
      {{ outputs.tags.value | split(',') contains 'eu'
      and inputs.region equals 'eu-west' }}
    then:
      - id: europe
        type: Log
        message: "europe {{ inputs.region ~ '/' ~ (inputs.missing ?? 'none') }}"
    else:
      - id: elsewhere
        type: Log
        message: elsewhere
  - id: checks
    type: Log
    message: >-
      defined={{ outputs.nope.value is defined }}
      notnull={{ outputs.tags.value is not null }}
      empty={{ '' is empty }}
      even={{ 4 is even }}
      cmp={{ 'b' > 'a' }}
      not={{ not false }}
      concat={{ 'a' ~ 'b' | upper }}
      pick={{ inputs.region contains 'eu' ? 'EU' : 'other' }}
      range={{ 1..3 }}
outputs:
  - id: picked
    type: STRING
    value: "{{ inputs.region contains 'us' ? 'US' : 'not-us' }}"
"""

FILTERS = """\
id: filters
namespace: demo
tasks:
  - id: generate
    type: Return
    format: '[{"name": "alpha", "value": 1}, {"name": "bravo", "value": 2}]'
  - id: each
    type: ForEach
    values: "{{ fromJson(outputs.generate.value) }}"
    tasks:
      - id: doubled
        type: Log
        message: >-
          {{ fromJson(taskrun.value).name }}={{
          fromJson(taskrun.value) | jq('.value * 2') | first }}
  - id: shape
    type: Return
    format: >-
      {{ 'report.2024.csv' | substringBeforeLast('.') }}|{{ 'a.b.c' | substringAfter('.') }}|{{
      'hello World' | capitalize }}|{{ 'test' | base64encode }}|{{
      [3, 1, 2] | rsort | join(',') }}|{{
      '2024-01-02T03:04:05Z' | dateAdd(1, 'DAYS') | date('yyyy-MM-dd') }}|{{
      {'a': 1} | merge({'b': 2}) | keys | join('') }}|{{ 'x y' | slugify }}|{{
      'v1.2' | replace({'[0-9]': '#'}, regexp=true) }}|{{ 'test' | md5 | abbreviate(6) }}
outputs:
  - id: shape
    type: STRING
    value: "{{ outputs.shape.value }}"
"""


def test_pebble_operators_decide_what_a_flow_runs(client: TestClient) -> None:
    put_flow(client, OPERATORS)
    execution = run(client, "demo", "operators")
    assert execution["state"] == "SUCCESS"
    lines = logs(client, execution["id"])
    assert "europe eu-west/none" in lines
    assert "elsewhere" not in lines
    checks = next(line for line in lines if line.startswith("defined="))
    assert checks.split() == [
        "defined=false",
        "notnull=true",
        "empty=true",
        "even=true",
        "cmp=true",
        "not=true",
        "concat=AB",
        "pick=EU",
        "range=[1,2,3]",
    ]
    assert execution["outputs"] == {"picked": "not-us"}


def test_the_other_branch_runs_when_contains_is_false(client: TestClient) -> None:
    put_flow(client, OPERATORS)
    execution = run(client, "demo", "operators", region="us-east")
    assert execution["state"] == "SUCCESS"
    lines = logs(client, execution["id"])
    assert "elsewhere" in lines
    assert execution["outputs"] == {"picked": "US"}


def test_kestra_filters_shape_task_values(client: TestClient) -> None:
    put_flow(client, FILTERS)
    execution = run(client, "demo", "filters")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    lines = logs(client, execution["id"])
    assert "alpha=2" in lines
    assert "bravo=4" in lines
    assert execution["outputs"]["shape"] == (
        "report.2024|b.c|Hello World|dGVzdA==|3,2,1|2024-01-03|ab|x-y|v#.#|098..."
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("{{ 'x' is shiny }}", "No test named 'shiny'"),
        ("{{ 3 contains 1 }}", "'contains' needs a string, a list or a map"),
        ("{{ 'x' | escapeChar('nope') }}", "escapeChar type must be one of"),
        ("{{ 1 | jq('repeat(1)') }}", "cost bound"),
    ],
)
def test_a_failing_expression_fails_the_task_naming_task_and_field(
    client: TestClient, message: str, reason: str
) -> None:
    source = (
        "id: broken\nnamespace: demo\ntasks:\n  - id: say\n    type: Log\n"
        f'    message: "{message}"\n'
    )
    put_flow(client, source)
    execution = run(client, "demo", "broken")
    assert execution["state"] == "FAILED"
    lines = logs(client, execution["id"])
    assert any("'say'" in line and "message" in line and reason in line for line in lines), lines


def test_flows_using_pebble_operators_validate() -> None:
    # Before the Pebble operators, the validator refused these flows outright.
    assert validate_flow(OPERATORS).id == "operators"
    assert validate_flow(FILTERS).id == "filters"


def test_a_broken_operator_is_still_refused_with_its_line() -> None:
    source = (
        "id: bad\nnamespace: demo\ntasks:\n  - id: say\n    type: Log\n"
        '    message: "{{ tags contains }}"\n'
    )
    with pytest.raises(InvalidFlowError) as raised:
        validate_flow(source)
    problem = raised.value.problems[0]
    assert problem.line == 6
    assert "invalid expression" in problem.message
