"""Every real Kestra flow in the corpus either validates or fails on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError

# The files Flowplane refuses, and the words their one error must contain.
# Keep docs/compatibility.md in step with this table.
EXPECTED_FAILURES = {
    "for-each-item.yaml": "ForEachItem is not supported",
    "for-each-item-failed.yaml": "ForEachItem is not supported",
    "sla-execution-condition.yaml": "sla is not supported",
    "sla-max-duration-fail.yaml": "sla is not supported",
    "flowable-with-parent-fail.yaml": "invalid expression: unexpected '%'",
    "inputs.yaml": "a required FILE input is not supported",
}


def corpus_files() -> list[Path]:
    from tests.conftest import CORPUS  # noqa: PLC0415 - parametrization needs it at collection

    return sorted(CORPUS.glob("*.y*ml"))


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_flow(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    if path.name in EXPECTED_FAILURES:
        with pytest.raises(InvalidFlowError) as info:
            validate_flow(source, file=path.name)
        assert len(info.value.problems) == 1
        problem = info.value.problems[0]
        assert EXPECTED_FAILURES[path.name] in problem.message
        assert problem.line is not None
    else:
        flow = validate_flow(source, file=path.name)
        assert flow.spec.tasks or flow.spec.triggers


def test_corpus_rate_is_at_least_ninety_percent(corpus: Path) -> None:
    files = sorted(corpus.glob("*.y*ml"))
    assert len(files) == 95
    valid = 0
    for path in files:
        try:
            validate_flow(path.read_text(encoding="utf-8"))
            valid += 1
        except InvalidFlowError:
            pass
    assert valid == len(files) - len(EXPECTED_FAILURES)
    assert valid / len(files) >= 0.9
