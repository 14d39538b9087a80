"""At least 80% of Argo's own examples convert; the rest are refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.domain.argo import convert_source, to_yaml
from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from tests.argo.corpus import REFUSED, corpus_files


def test_at_least_80_percent_of_the_corpus_converts() -> None:
    files = corpus_files()
    assert len(files) == 60
    converted = []
    for path in files:
        try:
            convert_source(path.read_text(), file=path.name, namespace="argo.corpus")
        except InvalidFlowError:
            continue
        converted.append(path.name)
    assert len(converted) / len(files) >= 0.8, len(converted)
    assert sorted({p.name for p in files} - set(converted)) == sorted(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_refused_example_names_the_construct_and_where(name: str) -> None:
    path = next(p for p in corpus_files() if p.name == name)
    with pytest.raises(InvalidFlowError) as caught:
        convert_source(path.read_text(), file=f"corpus/{name}", namespace="argo.corpus")
    rendered = [problem.render() for problem in caught.value.problems]
    assert any(REFUSED[name] in line for line in rendered), rendered
    for line in rendered:
        # file:line:col: path: message
        assert line.startswith(f"corpus/{name}:"), line
        assert line.split(":")[1].isdigit(), line
        assert line.split(":")[2].isdigit(), line


@pytest.mark.parametrize(
    "path", [p for p in corpus_files() if p.name not in REFUSED], ids=lambda p: p.name
)
def test_every_converted_example_is_a_valid_flow_naming_its_source(path: Path) -> None:
    flows = convert_source(path.read_text(), file=f"corpus/{path.name}", namespace="argo.corpus")
    for flow in flows:
        text = to_yaml(flow)
        assert text.startswith("# Converted from Argo Workflows")
        assert f"# Source: corpus/{path.name} (document {flow.document + 1}:" in text
        validated = validate_flow(text, file=f"{flow.flow_id}.yaml")
        assert (validated.namespace, validated.id) == ("argo.corpus", flow.flow_id)
