from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from controlplane.cli import app

runner = CliRunner()


def test_validate_reports_file_line_col_and_exits_1(tmp_path: Path) -> None:
    good = tmp_path / "flows" / "good.yaml"
    good.parent.mkdir()
    good.write_text("id: good\nnamespace: ns\ntasks:\n  - {id: a, type: Log, message: hi}\n")
    bad = tmp_path / "flows" / "bad.yml"
    bad.write_text("id: bad\nnamespace: ns\ntasks:\n  - id: a\n    type: Log\n")
    result = runner.invoke(app, ["validate", str(tmp_path / "flows")])
    assert result.exit_code == 1
    assert f"{bad}:4:5: tasks[0].message: required property is missing" in result.stdout
    assert str(good) not in result.stdout


def test_validate_passes_valid_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("id: good\nnamespace: ns\ntasks:\n  - {id: a, type: Log, message: hi}\n")
    result = runner.invoke(app, ["validate", str(good)])
    assert result.exit_code == 0, result.output


def test_validate_refuses_non_utf8_and_missing_files(tmp_path: Path) -> None:
    odd = tmp_path / "odd.yaml"
    odd.write_bytes(b"id: \xff\n")
    result = runner.invoke(app, ["validate", str(odd), str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "not valid UTF-8" in result.stdout
    assert "no such file" in result.stdout


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("flowplane ")
