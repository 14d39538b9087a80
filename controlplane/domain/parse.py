"""YAML to Python values, keeping where every value stands in the text.

Flow errors must name a line and column, so we compose the YAML node graph
ourselves instead of calling ``yaml.safe_load``: each mapping value and
sequence item is recorded in a ``SourceMap`` under its field path.

Scalars are read as YAML 1.2 (``controlplane.domain.yaml12``), as Kestra reads
them. Walking the graph ourselves also bounds it: an alias that contains
itself, a document that expands past ``MAX_NODES`` (an alias bomb) or nests
past ``MAX_DEPTH`` is a located problem, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from controlplane.domain.yaml12 import Yaml12Loader
from controlplane.errors import InvalidFlowError, Problem

PathElement = str | int
Path = tuple[PathElement, ...]

# Expanded nodes allowed in one document. A real flow of a thousand tasks has
# tens of thousands; an alias bomb has billions and is stopped here.
MAX_NODES = 200_000
# Nesting allowed in one document. Real flows nest a few dozen levels at most;
# every later stage (validation, normalization, JSON) recurses, so a document
# nested thousands deep must stop here rather than as a RecursionError there.
MAX_DEPTH = 100


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
    """Walks the composed node graph into plain values, recording positions.

    An alias is the very node it names, so the graph can hold a cycle
    (``a: &a [*a]``); ``open_nodes`` holds the collections being built, and
    meeting one of them again is a cycle.
    """

    def __init__(self, loader: Any, file: str | None) -> None:
        self.loader = loader
        self.file = file
        self.nodes = 0
        self.open_nodes: set[int] = set()
        self.source_map = SourceMap()
        self.problems: list[Problem] = []

    def located(self, message: str, path: Path, node: yaml.Node) -> Problem:
        """A problem at ``node``'s line and column."""
        return Problem(
            message,
            format_path(path),
            node.start_mark.line + 1,
            node.start_mark.column + 1,
            self.file,
        )

    def problem(self, message: str, path: Path, node: yaml.Node) -> None:
        """Record a problem and go on, so every one is reported."""
        self.problems.append(self.located(message, path, node))

    def build(self, node: yaml.Node, path: Path, depth: int = 0) -> Any:
        """The plain value of ``node``; a bomb, a cycle or deep nesting stops at once."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            message = (
                f"document expands to more than {MAX_NODES} YAML nodes "
                "(nested aliases?); refusing to load it"
            )
            raise InvalidFlowError([self.located(message, path, node)])
        if depth > MAX_DEPTH:
            message = f"document nests deeper than {MAX_DEPTH} levels; refusing to load it"
            raise InvalidFlowError([self.located(message, path, node)])
        self.source_map.positions.setdefault(
            path, (node.start_mark.line + 1, node.start_mark.column + 1)
        )
        if isinstance(node, yaml.ScalarNode):
            if node.style in {"|", ">"}:
                self.source_map.block_scalars.add(path)
            value = self.loader.construct_object(node)
            if value is not None and not isinstance(value, str | int | float):
                # !!binary, !!timestamp: values JSON cannot carry, and Kestra does not read.
                tag = node.tag.replace("tag:yaml.org,2002:", "!!")
                self.problem(f"YAML tag {tag} is not supported", path, node)
            return value
        if id(node) in self.open_nodes:
            line = node.start_mark.line + 1
            message = (
                f"recursive alias: the value anchored at line {line} contains itself; "
                "refusing to load it"
            )
            raise InvalidFlowError([self.located(message, path, node)])
        self.open_nodes.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)
                ]
            if isinstance(node, yaml.MappingNode):
                return self._build_mapping(node, path, depth)
        finally:
            self.open_nodes.discard(id(node))
        self.problem("unsupported YAML node", path, node)  # pragma: no cover - yaml has 3 kinds
        return None

    def _build_mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = self.build(value_node, path, depth + 1)
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
            key_path = (*path, str(key) if key is not None else "null")
            result[key] = self.build(value_node, key_path, depth + 1)
        return result


def parse_document(text: str, *, file: str | None = None) -> ParsedDocument:
    """Parse one YAML mapping; raise ``InvalidFlowError`` with located problems."""
    root, builder, data = _load(text, file)
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


def load_yaml(text: str, *, file: str | None = None) -> Any:
    """Any YAML document as plain values, read and bounded exactly as flows are.

    For YAML that is not a flow (secret maps, an expression's ``yaml`` filter):
    the same 1.2 scalars, and an alias cycle or bomb is an ``InvalidFlowError``.
    """
    return _load(text, file)[2]


def _load(text: str, file: str | None) -> tuple[yaml.Node, _Builder, Any]:
    if "\x00" in text:
        raise InvalidFlowError([Problem("source contains a NUL character", file=file)])
    loader = Yaml12Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        if "expected a single document" in message:
            message = "expected a single YAML document, found several (remove '---')"
        raise _marked(f"invalid YAML: {message}", mark, file) from None
    except yaml.YAMLError as exc:
        raise InvalidFlowError([Problem(f"invalid YAML: {exc}", file=file)]) from None
    finally:
        loader.dispose()
    if root is None:
        raise InvalidFlowError([Problem("the document is empty", file=file)])
    builder = _Builder(loader, file)
    try:
        data = builder.build(root, ())
    except yaml.MarkedYAMLError as exc:  # a scalar that fails to construct, e.g. a bad !!int
        raise _marked(f"invalid YAML value: {exc.problem}", exc.problem_mark, file) from None
    except yaml.YAMLError as exc:
        raise InvalidFlowError([Problem(f"invalid YAML value: {exc}", file=file)]) from None
    if builder.problems:
        raise InvalidFlowError(builder.problems)
    return root, builder, data


def _marked(message: str, mark: yaml.Mark | None, file: str | None) -> InvalidFlowError:
    return InvalidFlowError(
        [
            Problem(
                message,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
                file=file,
            )
        ]
    )
