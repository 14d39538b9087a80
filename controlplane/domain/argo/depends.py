"""Argo's enhanced ``depends`` logic: ``A && (B.Failed || !C.Succeeded)``.

A dependency is a task name, optionally with a result (``.Succeeded``,
``.Failed``, ``.Errored``, ``.Skipped``, ``.Omitted``, ``.Daemoned``,
``.AnySucceeded``, ``.AllFailed``), combined with ``&&``, ``||``, ``!`` and
parentheses. A bare name means ``(A.Succeeded || A.Skipped || A.Daemoned)``,
plus ``A.Failed`` / ``A.Errored`` when A has ``continueOn`` for them (Argo's
``expandDependency``).

The converter parses and checks it; the ``io.flowplane.argo.Dag`` task
evaluates it at run time with the same code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

RESULTS = (
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
)
_TOKEN = re.compile(r"\s*(?:(&&|\|\||!|\(|\))|([a-zA-Z0-9][-a-zA-Z0-9_]*)(?:\.([A-Za-z]+))?)")


class DependsError(ValueError):
    """A ``depends`` expression that does not parse."""


@dataclass(frozen=True)
class Ref:
    """``task`` or ``task.Result`` (``result`` None for a bare name)."""

    task: str
    result: str | None


@dataclass(frozen=True)
class Not:
    """``!operand``."""

    operand: Node


@dataclass(frozen=True)
class Op:
    """``left && right`` or ``left || right``."""

    op: str
    left: Node
    right: Node


Node = Ref | Not | Op


def parse_depends(text: str) -> Node:
    """The parsed expression; ``DependsError`` names what is wrong."""
    tokens: list[tuple[str, str | None, str | None]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise DependsError(f"unexpected {text[position:].strip()[:20]!r} in {text!r}")
        operator, name, result = match.groups()
        if operator:
            tokens.append(("op", operator, None))
        else:
            if result is not None and result not in RESULTS:
                raise DependsError(
                    f"task result {result!r} of {name!r} is not one of {', '.join(RESULTS)}"
                )
            tokens.append(("name", name, result))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    if not tokens:
        raise DependsError("the expression is empty")
    parser = _Parser(tokens, text)
    node = parser.expression()
    if parser.index != len(tokens):
        raise DependsError(f"unexpected {tokens[parser.index][1]!r} in {text!r}")
    return node


class _Parser:
    def __init__(self, tokens: list[tuple[str, str | None, str | None]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.index = 0

    def _peek(self) -> str | None:
        if self.index < len(self.tokens) and self.tokens[self.index][0] == "op":
            return self.tokens[self.index][1]
        return None

    def expression(self) -> Node:
        node = self.conjunction()
        while self._peek() == "||":
            self.index += 1
            node = Op("||", node, self.conjunction())
        return node

    def conjunction(self) -> Node:
        node = self.unary()
        while self._peek() == "&&":
            self.index += 1
            node = Op("&&", node, self.unary())
        return node

    def unary(self) -> Node:
        if self._peek() == "!":
            self.index += 1
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        if self.index >= len(self.tokens):
            raise DependsError(f"{self.text!r} ends too early")
        kind, value, result = self.tokens[self.index]
        self.index += 1
        if kind == "name":
            return Ref(str(value), result)
        if value == "(":
            node = self.expression()
            if self._peek() != ")":
                raise DependsError(f"missing ')' in {self.text!r}")
            self.index += 1
            return node
        raise DependsError(f"unexpected {value!r} in {self.text!r}")


def referenced_tasks(node: Node) -> list[str]:
    """The task names the expression mentions, in order of first mention."""
    found: list[str] = []

    def walk(item: Node) -> None:
        if isinstance(item, Ref):
            if item.task not in found:
                found.append(item.task)
        elif isinstance(item, Not):
            walk(item.operand)
        else:
            walk(item.left)
            walk(item.right)

    walk(node)
    return found


def format_depends(node: Node, rename: Callable[[str], str] = str) -> str:
    """The expression as text, each task name passed through ``rename``."""
    if isinstance(node, Ref):
        name = rename(node.task)
        return f"{name}.{node.result}" if node.result else name
    if isinstance(node, Not):
        inner = format_depends(node.operand, rename)
        return f"!{inner}" if isinstance(node.operand, Ref) else f"!({inner})"
    parts = []
    for side in (node.left, node.right):
        text = format_depends(side, rename)
        needs = isinstance(side, Op) and side.op != node.op
        parts.append(f"({text})" if needs else text)
    return f" {node.op} ".join(parts)


def evaluate_depends(
    node: Node,
    results: Mapping[str, Mapping[str, bool]],
    continue_on: Mapping[str, set[str]],
) -> bool:
    """Whether the expression holds, given each task's results (``{"Succeeded": True, ...}``).

    ``continue_on`` names, per task, the results (``Failed``, ``Errored``) its
    ``continueOn`` accepts; they count for a bare name.
    """
    if isinstance(node, Ref):
        flags = results[node.task]
        if node.result is not None:
            return bool(flags.get(node.result, False))
        accepted = {"Succeeded", "Skipped", "Daemoned", *continue_on.get(node.task, set())}
        return any(flags.get(result, False) for result in accepted)
    if isinstance(node, Not):
        return not evaluate_depends(node.operand, results, continue_on)
    left = evaluate_depends(node.left, results, continue_on)
    if node.op == "&&":
        return left and evaluate_depends(node.right, results, continue_on)
    return left or evaluate_depends(node.right, results, continue_on)
