"""Argo Workflows manifests converted into Flowplane flows (pure: text in, flows out).

``convert_sources`` takes one or more Argo files and returns a flow per
document (and per self-calling template), or raises ``InvalidFlowError``
listing every construct it cannot express as ``file:line:col: path:
message``; it never drops a field silently (``schema.py`` says what each
field becomes). ``docs/argo.md`` has the whole mapping.
"""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.domain.argo.base import RUNNERS
from controlplane.domain.argo.convert import ConvertedFlow, convert_documents
from controlplane.domain.argo.documents import ARGO_API_VERSION, is_argo_source, load_documents
from controlplane.domain.argo.emit import dump_spec, header, to_yaml
from controlplane.errors import InvalidFlowError, Problem

__all__ = [
    "ARGO_API_VERSION",
    "RUNNERS",
    "ConvertedFlow",
    "convert_source",
    "convert_sources",
    "dump_spec",
    "header",
    "is_argo_source",
    "to_yaml",
]


def convert_sources(
    sources: Sequence[tuple[str, str]], *, namespace: str | None = None, runner: str = "process"
) -> list[ConvertedFlow]:
    """Flows of every ``(file name, text)`` source, converted together.

    Files converted together may reference each other's WorkflowTemplates
    (``templateRef``, ``workflowTemplateRef``). Raises ``InvalidFlowError``
    with every problem of every file when anything cannot be converted.
    """
    documents = []
    problems: list[Problem] = []
    for file, text in sources:
        try:
            documents.extend(load_documents(text, file))
        except InvalidFlowError as exc:
            problems.extend(exc.problems)
    flows, found = convert_documents(documents, namespace=namespace, runner=runner)
    problems.extend(found)
    if problems:
        raise InvalidFlowError(problems)
    ids: dict[tuple[str, str], ConvertedFlow] = {}
    for flow in flows:
        key = (flow.namespace, flow.flow_id)
        if key in ids:
            other = ids[key]
            problems.append(
                Problem(
                    f"flow {flow.namespace}/{flow.flow_id} is also converted from "
                    f"{other.file} (document {other.document + 1})",
                    "metadata.name",
                    file=flow.file,
                )
            )
        ids[key] = flow
    if problems:
        raise InvalidFlowError(problems)
    return flows


def convert_source(
    text: str, *, file: str, namespace: str | None = None, runner: str = "process"
) -> list[ConvertedFlow]:
    """Flows of one Argo file (see ``convert_sources``)."""
    return convert_sources([(file, text)], namespace=namespace, runner=runner)
