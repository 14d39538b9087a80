"""YAML to Python values, keeping where every value stands in the text.

Flow errors must name a line and column, so we compose the YAML node graph
ourselves instead of calling ``yaml.safe_load``: each mapping value and
sequence item is recorded in a ``SourceMap`` under its field path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from controlplane.errors import InvalidFlowError, Problem

PathElement = str | int
Path = tuple[PathElement, ...]

# Expanded nodes allowed in one document. A real flow of a thousand tasks has
# tens of thousands; an alias bomb has billions and is stopped here.
MAX_NODES = 200_000

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FlowLoader(_Loader):  # type: ignore[misc]
    """SafeLoader without the YAML 1.1 timestamp rule.

    Kestra reads ``after: 2023-01-01`` as the string it looks like; a Python
    ``date`` would change the value's meaning and break JSON round-trips.
    """


_FlowLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}


def format_path(path: Path) -> str:
    """Render ``("tasks", 2, "retry")`` as ``tasks[2].retry``."""
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        else:
            out += f".{element}" if out else str(element)
    return out


@dataclass
class SourceMap:
    """Field path → (line, column), both 1-based."""

    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    # Block scalars (``|`` and ``>``) start their text on the line after the mark.
    block_scalars: set[Path] = field(default_factory=set)

    def locate(self, path: Path) -> tuple[int, int] | None:
        """Position of ``path``, or of its nearest recorded ancestor."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.positions.get((), None)


@dataclass(frozen=True)
class ParsedDocument:
    """A YAML mapping with the positions of its values."""

    data: dict[str, Any]
    source_map: SourceMap


class _Builder:
    """Walks the composed node graph into plain values, recording positions."""

    def __init__(self, loader: Any, file: str | None) -> None:
        self.loader = loader
        self.file = file
        self.nodes = 0
        self.source_map = SourceMap()
        self.problems: list[Problem] = []

    def problem(self, message: str, path: Path, node: yaml.Node) -> None:
        self.problems.append(
            Problem(
                message,
                format_path(path),
                node.start_mark.line + 1,
                node.start_mark.column + 1,
                self.file,
            )
        )

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidFlowError(
                [
                    Problem(
                        f"document expands to more than {MAX_NODES} YAML nodes "
                        "(nested aliases?); refusing to load it",
                        format_path(path),
                        node.start_mark.line + 1,
                        node.start_mark.column + 1,
                        self.file,
                    )
                ]
            )
        self.source_map.positions.setdefault(
            path, (node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if isinstance(node, yaml.ScalarNode):
            if node.style in {"|", ">"}:
                self.source_map.block_scalars.add(path)
            return self.loader.construct_object(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._build_mapping(node, path)
        self.problem("unsupported YAML node", path, node)  # pragma: no cover - yaml has 3 kinds
        return None

    def _build_mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = self.build(value_node, path)
                sources = merged if isinstance(merged, list) else [merged]
                for source in sources:
                    if isinstance(source, dict):
                        for k, v in source.items():
                            result.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem("mapping keys must be plain scalars", path, key_node)
                continue
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str | int | float | bool) and key is not None:
                self.problem("mapping keys must be plain scalars", path, key_node)
                continue
            if key in result:
                self.problem(f"duplicate key {key!r}", (*path, str(key)), key_node)
                continue
            result[key] = self.build(value_node, (*path, str(key) if key is not None else "null"))
        return result


def parse_document(text: str, *, file: str | None = None) -> ParsedDocument:
    """Parse one YAML mapping; raise ``InvalidFlowError`` with located problems."""
    if "\x00" in text:
        raise InvalidFlowError([Problem("source contains a NUL character", file=file)])
    loader = _FlowLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        if "expected a single document" in message:
            message = "expected a single YAML document, found several (remove '---')"
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
    if root is None:
        raise InvalidFlowError([Problem("the document is empty", file=file)])
    builder = _Builder(loader, file)
    try:
        data = builder.build(root, ())
    except yaml.YAMLError as exc:  # a scalar that fails to construct, e.g. a bad !!int
        raise InvalidFlowError([Problem(f"invalid YAML value: {exc}", file=file)]) from None
    if builder.problems:
        raise InvalidFlowError(builder.problems)
    if not isinstance(data, dict):
        raise InvalidFlowError(
            [
                Problem(
                    f"a flow must be a YAML mapping, not a {type(data).__name__}",
                    line=root.start_mark.line + 1,
                    column=root.start_mark.column + 1,
                    file=file,
                )
            ]
        )
    return ParsedDocument(data, builder.source_map)
