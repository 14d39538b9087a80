"""The public Kestra flow set (corpus/kestra-public) and the script that measures it.

The set is data: every file must be a complete flow with its source named in
a header comment. The script's figures change as task types are added, so
this module checks that its counts add up, never what the share is.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT / "corpus" / "kestra-public"
SCRIPT = ROOT / "scripts" / "kestra_public_share.py"
VALIDS = ROOT.parent / "shared" / "corpus" / "kestra-valids"
NAME = re.compile(r"^[a-z0-9-]+__[A-Za-z0-9_.-]+\.yaml$")

FILES = sorted(PUBLIC.glob("*.yaml"))


def _body(path: Path) -> str:
    """The file without its header comment, whitespace-normalised, for duplicate checks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line.rstrip() for line in lines if not line.startswith("# Source:")).strip()


def test_the_set_is_within_the_intended_size() -> None:
    assert 100 <= len(FILES) <= 200, len(FILES)
    assert (PUBLIC / "README.md").is_file()


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_each_file_is_a_complete_flow_with_its_source(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    header = text.splitlines()[0]
    assert header.startswith("# Source: "), header
    assert "licence:" in header, header
    assert NAME.match(path.name), path.name
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    for key in ("id", "namespace", "tasks"):
        assert data.get(key), f"{path.name} has no {key}"
    assert path.name.endswith(f"__{data['id']}.yaml"), "the file name ends with the flow id"


def test_no_file_repeats_another_or_the_kestra_valids_corpus() -> None:
    bodies = [_body(p) for p in FILES]
    assert len(set(bodies)) == len(bodies), "two files hold the same flow"
    if VALIDS.is_dir():
        valids = {_body(p) for p in VALIDS.glob("*.y*ml")}
        assert not valids & set(bodies), "a flow of kestra-valids is repeated here"


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    """The script's machine output, validation only."""
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--only-validate", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def test_validation_counts_add_up(summary: dict[str, Any]) -> None:
    total = summary["total"]
    assert total == len(FILES)
    assert summary["ran"] is False
    assert summary["validated"] + summary["refused"] == total
    assert sum(n for _, n in summary["refusal_kinds"]) == summary["refused"]
    assert sum(n for _, n in summary["refusal_causes"]) == summary["refused"]
    assert sum(c["total"] for c in summary["by_source"].values()) == total
    assert sum(c["validated"] for c in summary["by_source"].values()) == summary["validated"]
    files = summary["files"]
    assert sorted(f["file"] for f in files) == [p.name for p in FILES]
    for entry in files:
        assert entry["run"] is None
        assert entry["validates"] == (entry["refusal"] is None), entry["file"]
        if entry["refusal"]:
            refusal = entry["refusal"]
            assert refusal["cause"] in refusal["all_causes"], entry["file"]
            assert re.match(r"corpus/kestra-public/.+\.yaml:\d+:\d+$", refusal["where"])


def _script() -> Any:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import kestra_public_share  # noqa: PLC0415 - a script, imported to test its rules
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return kestra_public_share


@pytest.mark.parametrize(
    ("lines", "types", "expected"),
    [
        (["task 'a': apiKey: secret 'OPENAI_API_KEY' is not available"], [], "external"),
        (["GET https://x.example failed: [Errno -2] Name or service not known"], [], "external"),
        (["could not reach the Docker engine at unix:///var/run/docker.sock"], [], "external"),
        (["task 'a': flow company.team/child does not exist"], [], "other"),
        (["Task failure"], ["io.kestra.plugin.core.execution.Fail"], "other"),
        (["'read' is undefined at line 1"], [], "other"),
    ],
)
def test_failure_classification(lines: list[str], types: list[str], expected: str) -> None:
    outcome, reason = _script().classify_failure(lines, types)
    assert outcome == expected, reason


def test_refusal_classification_names_the_type_and_the_owner() -> None:
    script = _script()
    data = {"tasks": [{"id": "a", "type": "io.kestra.plugin.core.http.Request", "options": {}}]}
    kind, cause = script.classify_refusal(
        "unknown task type 'io.x.Y'; did you mean 'io.x.Z'?", "tasks[0]", data
    )
    assert (kind, cause) == ("unknown task type", "unknown task type io.x.Y")
    kind, cause = script.classify_refusal(
        "unknown property 'basicAuthUser'", "tasks[0].options.basicAuthUser", data
    )
    assert kind == "property refused"
    assert cause == "property refused: io.kestra.plugin.core.http.Request options.basicAuthUser"
