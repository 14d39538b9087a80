"""Argo YAML files as plain values that remember where each field stands.

An Argo file may hold several documents (``---``); each is read with the
same YAML 1.2 scalars and bounds as a flow (``controlplane.domain.yaml12``),
and every mapping key and value is recorded under its field path, so a
refusal reads ``examples/x.yaml:14:7: spec.templates[2].daemon: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from controlplane.domain.parse import MAX_DEPTH, MAX_NODES, Path, format_path
from controlplane.domain.yaml12 import Yaml12Loader
from controlplane.errors import InvalidFlowError, Problem

ARGO_API_VERSION = "argoproj.io/v1alpha1"


@dataclass
class ArgoDocument:
    """One YAML document of an Argo file: its values, and where each field stands."""

    data: Any
    file: str
    index: int
    # Field path -> (line, column) of its key (or of the value, for list items).
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path) -> tuple[int | None, int | None]:
        """Line and column of ``path``, or of its nearest recorded ancestor."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), (None, None))

    def problem(self, path: Path, message: str) -> Problem:
        """A finding at ``path``, rendered ``file:line:col: path: message``."""
        line, column = self.locate(path)
        return Problem(message, format_path(path), line, column, self.file)


def is_argo_source(text: str) -> bool:
    """Whether ``text`` is an Argo Workflows manifest (``apiVersion: argoproj.io/...``).

    A cheap test on the text, so a flows repository can route its files
    before parsing them: the ``apiVersion`` line must name Argo's API group.
    """
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("apiVersion:"):
            value = stripped.split(":", 1)[1].strip().strip("'\"")
            if value.startswith("argoproj.io/"):
                return True
    return False


def load_documents(text: str, file: str) -> list[ArgoDocument]:
    """Every non-empty document of ``text``; a YAML error is an ``InvalidFlowError``."""
    if "\x00" in text:
        raise InvalidFlowError([Problem("source contains a NUL character", file=file)])
    loader = Yaml12Loader(text)
    documents: list[ArgoDocument] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            document = ArgoDocument(None, file, len(documents))
            document.data = _Builder(loader, document).build(node, (), 0)
            if document.data is not None:
                documents.append(document)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise InvalidFlowError(
            [
                Problem(
                    f"invalid YAML: {message}",
                    line=mark.line + 1 if mark else None,
                    column=mark.column + 1 if mark else None,
                    file=file,
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidFlowError([Problem(f"invalid YAML: {exc}", file=file)]) from None
    finally:
        loader.dispose()
    if not documents:
        raise InvalidFlowError([Problem("the file holds no YAML document", file=file)])
    return documents


class _Builder:
    """Builds plain values from a composed node, recording the position of every field."""

    def __init__(self, loader: Any, document: ArgoDocument) -> None:
        self.loader = loader
        self.document = document
        self.nodes = 0
        self.open_nodes: set[int] = set()

    def _stop(self, message: str, path: Path, node: yaml.Node) -> InvalidFlowError:
        mark = node.start_mark
        problem = Problem(
            message, format_path(path), mark.line + 1, mark.column + 1, self.document.file
        )
        return InvalidFlowError([problem])

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        """The plain value of ``node``; aliases that loop or explode stop the load."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self._stop(f"document expands to more than {MAX_NODES} YAML nodes", path, node)
        if depth > MAX_DEPTH:
            raise self._stop(f"document nests deeper than {MAX_DEPTH} levels", path, node)
        self.document.positions.setdefault(
            path, (node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if isinstance(node, yaml.ScalarNode):
            value = self.loader.construct_object(node)
            if value is not None and not isinstance(value, str | int | float):
                raise self._stop("YAML tags other than plain scalars are not supported", path, node)
            return value
        if id(node) in self.open_nodes:
            raise self._stop("recursive alias: the value contains itself", path, node)
        self.open_nodes.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)
                ]
            return self._mapping(node, path, depth)
        finally:
            self.open_nodes.discard(id(node))

    def _mapping(self, node: yaml.Node, path: Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = self.build(value_node, path, depth + 1)
                for source in merged if isinstance(merged, list) else [merged]:
                    if isinstance(source, dict):
                        for key, value in source.items():
                            result.setdefault(key, value)
                continue
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str | int | float | bool):
                raise self._stop("mapping keys must be plain scalars", path, key_node)
            name = str(key)
            if name in result:
                raise self._stop(f"duplicate key {name!r}", (*path, name), key_node)
            key_path = (*path, name)
            mark = key_node.start_mark
            self.document.positions[key_path] = (mark.line + 1, mark.column + 1)
            result[name] = self.build(value_node, key_path, depth + 1)
        return result
