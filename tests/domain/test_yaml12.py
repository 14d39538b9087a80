"""Flows are read as YAML 1.2 (core schema), as Kestra reads them, and reading is bounded."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controlplane.cli import app
from controlplane.domain.parse import MAX_DEPTH, load_yaml, parse_document
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError


def value_of(scalar: str) -> object:
    return parse_document(f"v: {scalar}\n").data["v"]


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidFlowError) as caught:
        parse_document(text, file="flows/f.yaml")
    return [p.render() for p in caught.value.problems]


@pytest.mark.parametrize(
    "scalar", ["yes", "no", "Yes", "NO", "on", "off", "ON", "Off", "y", "n", "Y", "N"]
)
def test_yaml11_booleans_are_strings(scalar: str) -> None:
    assert value_of(scalar) == scalar


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("FALSE", False)],
)
def test_core_booleans(scalar: str, expected: bool) -> None:
    assert value_of(scalar) is expected


@pytest.mark.parametrize("scalar", ["~", "null", "Null", "NULL", ""])
def test_core_nulls(scalar: str) -> None:
    assert value_of(scalar) is None


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [("0o17", 15), ("017", 17), ("0x1F", 31), ("+12", 12), ("-5", -5), ("0", 0)],
)
def test_core_integers(scalar: str, expected: int) -> None:
    value = value_of(scalar)
    assert type(value) is int
    assert value == expected


@pytest.mark.parametrize(
    ("scalar", "expected"), [("1e3", 1000.0), (".5", 0.5), ("1.", 1.0), ("-.inf", -math.inf)]
)
def test_core_floats(scalar: str, expected: float) -> None:
    assert value_of(scalar) == expected


def test_nan() -> None:
    value = value_of(".NaN")
    assert isinstance(value, float)
    assert math.isnan(value)


@pytest.mark.parametrize(
    "scalar", ["1:30", "12:30:00", "1_000", "0b101", "2023-01-01", "=", "-0x1F", ".Nan"]
)
def test_yaml11_only_forms_are_strings(scalar: str) -> None:
    assert value_of(scalar) == scalar


def test_quoted_scalars_stay_strings() -> None:
    assert parse_document("a: 'true'\nb: \"12\"\nc: 'null'\n").data == {
        "a": "true",
        "b": "12",
        "c": "null",
    }


def test_keys_follow_the_same_schema() -> None:
    assert parse_document("on: 1\nyes: 2\ntrue: 3\n").data == {"on": 1, "yes": 2, True: 3}


def test_kestra_flow_with_yaml11_words_is_valid() -> None:
    source = (
        "id: yes\n"
        "namespace: platform.ops\n"
        "labels:\n"
        "  country: NO\n"
        "tasks:\n"
        "  - id: on\n"
        "    type: io.kestra.plugin.core.log.Log\n"
        "    message: off\n"
    )
    flow = validate_flow(source)
    assert flow.id == "yes"
    assert flow.spec.tasks[0].id == "on"


@pytest.mark.parametrize(
    ("scalar", "kind"),
    [("!!bool yes", "boolean"), ("!!float 1_0", "float"), ("!!int 1:30", "integer")],
)
def test_explicit_tags_follow_yaml12(scalar: str, kind: str) -> None:
    assert problems_of(f"id: x\nv: {scalar}\n") == [
        f"flows/f.yaml:2:4: invalid YAML value: {scalar.split()[1]!r} is not a YAML 1.2 {kind}"
    ]


def test_integer_too_long_for_python_is_a_problem() -> None:
    (problem,) = problems_of("v: !!int " + "9" * 5000 + "\n")
    assert problem.startswith("flows/f.yaml:1:4: invalid YAML value:")


def test_tags_json_cannot_carry_are_problems() -> None:
    assert problems_of("id: x\nv: !!binary aGVsbG8=\n") == [
        "flows/f.yaml:2:4: v: YAML tag !!binary is not supported"
    ]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("id: x\na: &a [*a]\n", "a[0]"),
        ("id: x\na: &a {b: *a}\n", "a.b"),
        ("id: x\na: &a {<<: *a}\n", "a"),
        ("id: x\na: &a\n  - b: [1, *a]\n", "a[0].b[1]"),
    ],
)
def test_recursive_alias_is_a_located_problem(text: str, path: str) -> None:
    (problem,) = problems_of(text)
    assert problem.startswith(f"flows/f.yaml:2:4: {path}: recursive alias")


def test_an_alias_used_twice_is_not_a_cycle() -> None:
    data = parse_document("a: &a [1, 2]\nb: [*a, *a]\nc: {<<: &m {x: 1}, y: *m}\n").data
    assert data == {"a": [1, 2], "b": [[1, 2], [1, 2]], "c": {"x": 1, "y": {"x": 1}}}


def test_alias_bomb_is_a_problem() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 9):
        prev, name = chr(96 + level), chr(97 + level)
        bomb += f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]\n"
    (problem,) = problems_of(bomb)
    assert "expands to more than" in problem


def test_deep_nesting_is_a_problem() -> None:
    deep = "a:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(MAX_DEPTH + 5))
    (problem,) = problems_of(deep)
    assert f"nests deeper than {MAX_DEPTH} levels" in problem


def test_load_yaml_reads_any_document_with_the_same_rules() -> None:
    assert load_yaml("[yes, on, 0o17, 1:30]") == ["yes", "on", 15, "1:30"]
    assert load_yaml("plain text") == "plain text"
    with pytest.raises(InvalidFlowError, match="recursive alias"):
        load_yaml("&a [*a]")


def test_cli_validate_prints_a_problem_for_a_recursive_alias(tmp_path: Path) -> None:
    flow = tmp_path / "loop.yaml"
    flow.write_text("id: loop\nnamespace: ns\ntasks: &t\n  - *t\n")
    result = CliRunner().invoke(app, ["validate", str(flow)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{flow}:3:8: tasks[0]: recursive alias" in result.stdout


def test_cli_validate_prints_a_problem_for_an_unreadable_path(tmp_path: Path) -> None:
    file = tmp_path / "flow.yaml"
    file.write_text("id: a\n")
    result = CliRunner().invoke(app, ["validate", str(file / "inner.yaml")])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{file / 'inner.yaml'}: cannot read: Not a directory" in result.stdout
