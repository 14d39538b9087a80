"""Argo's ``{{= ...}}`` expressions (the expr language) rewritten as Pebble expressions.

A small Pratt parser reads the part of expr that workflows use: literals,
variables with ``.name`` and ``['name']`` access, ``!``/``not``, arithmetic,
comparisons, ``&&``/``||``, ``in``, ``contains``, ``startsWith``,
``endsWith``, ``??``, ``c ? a : b``, arrays, and the functions Argo adds
(``asInt``, ``asFloat``, ``string``, ``toJson``, ``jsonpath``, ``len``,
``lower``, ``upper``, ``trim`` and their ``sprig.`` forms). Anything else is
an ``ExprError`` naming the construct, so the converter refuses it at
convert time rather than producing a flow that means something else.

Variables are resolved by the caller (``resolve(path)``), which knows the
template's scope: ``inputs.parameters["x"]``, ``tasks['a'].outputs.result``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.domain.argo.values import quote


class ExprError(ValueError):
    """An expression the converter cannot rewrite; the message names why."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`)
      | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*)
      | (?P<op>\?\?|==|!=|<=|>=|&&|\|\||\*\*|\.\.|\?\.|[-+*/%<>!?:.,()\[\]{}])
    )""",
    re.VERBOSE,
)
_KEYWORD_OPS = {"and": "&&", "or": "||", "not": "!"}
_WORD_OPS = {"in", "matches", "contains", "startsWith", "endsWith"}
_BINDING = {
    "??": 2,
    "||": 3,
    "&&": 4,
    "==": 5,
    "!=": 5,
    "<": 5,
    ">": 5,
    "<=": 5,
    ">=": 5,
    "in": 5,
    "matches": 5,
    "contains": 5,
    "startsWith": 5,
    "endsWith": 5,
    "+": 6,
    "-": 6,
    "*": 7,
    "/": 7,
    "%": 7,
    "**": 8,
}
_PEBBLE_OPS = {"||": "or", "&&": "and"}
_UNARY_BINDING = 9


@dataclass(frozen=True)
class _Token:
    kind: str
    value: str


Resolve = Callable[[list[str]], str]


def translate_expr(
    source: str,
    resolve: Resolve,
    *,
    functions: dict[str, str] | None = None,
    identity_methods: frozenset[str] = frozenset(),
) -> str:
    """The Pebble expression equivalent to the expr ``source``.

    ``functions`` adds argument-less functions (name -> Pebble code);
    ``identity_methods`` are method calls that leave their receiver as it is
    (a duration already counted in seconds: ``.Seconds()``).
    """
    tokens = _tokenize(source)
    parser = _Parser(tokens, source, resolve)
    parser.functions = functions or {}
    parser.identity_methods = identity_methods
    code = parser.expression(0)
    if parser.index != len(tokens):
        raise ExprError(f"unexpected {tokens[parser.index].value!r} in {source!r}")
    return code


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        if source[position:].strip() == "":
            break
        match = _TOKEN.match(source, position)
        if match is None or match.end() == position:
            raise ExprError(f"unexpected {source[position:].strip()[:20]!r} in {source!r}")
        kind = match.lastgroup or "op"
        value = match.group(kind)
        if kind == "name" and value in _KEYWORD_OPS:
            kind, value = "op", _KEYWORD_OPS[value]
        elif kind == "name" and value in _WORD_OPS:
            kind = "op"
        tokens.append(_Token(kind, value))
        position = match.end()
    return tokens


def _string_value(token: str) -> str:
    if token.startswith("`"):
        return token[1:-1]
    body = token[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), body)


class _Parser:
    def __init__(self, tokens: list[_Token], source: str, resolve: Resolve) -> None:
        self.tokens = tokens
        self.source = source
        self.resolve = resolve
        self.index = 0
        self.functions: dict[str, str] = {}
        self.identity_methods: frozenset[str] = frozenset()

    def _peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            raise ExprError(f"{self.source!r} ends too early")
        self.index += 1
        return token

    def _expect(self, value: str) -> None:
        token = self._next()
        if token.value != value:
            raise ExprError(f"expected {value!r}, found {token.value!r} in {self.source!r}")

    def expression(self, floor: int) -> str:
        left = self.unary()
        while True:
            token = self._peek()
            if token is None or token.kind != "op":
                return left
            if token.value == "?" and floor == 0:
                self.index += 1
                then = self.expression(0)
                self._expect(":")
                otherwise = self.expression(0)
                left = f"({left} ? {then} : {otherwise})"
                continue
            power = _BINDING.get(token.value)
            if power is None or power <= floor:
                return left
            self.index += 1
            right = self.expression(power - 1 if token.value == "**" else power)
            left = _binary(token.value, left, right, self.source)

    def unary(self) -> str:
        token = self._peek()
        if token is not None and token.kind == "op" and token.value in {"!", "-", "+"}:
            self.index += 1
            operand = self.expression(_UNARY_BINDING)
            return f"(not {operand})" if token.value == "!" else f"({token.value}{operand})"
        return self.postfix(self.primary())

    def primary(self) -> Any:
        token = self._next()
        if token.kind == "number":
            return token.value
        if token.kind == "string":
            return quote(_string_value(token.value))
        if token.kind == "name":
            return self.name(token.value)
        if token.value == "(":
            inner = self.expression(0)
            self._expect(")")
            return f"({inner})"
        if token.value == "[":
            items = self.arguments("]")
            return "[" + ", ".join(items) + "]"
        raise ExprError(f"unexpected {token.value!r} in {self.source!r}")

    def arguments(self, closing: str) -> list[str]:
        items: list[str] = []
        token = self._peek()
        if token is not None and token.value == closing:
            self.index += 1
            return items
        while True:
            items.append(self.expression(0))
            token = self._next()
            if token.value == closing:
                return items
            if token.value != ",":
                raise ExprError(f"expected ',' or {closing!r} in {self.source!r}")

    def name(self, name: str) -> str:
        literals = {"true": "true", "false": "false", "nil": "null", "null": "null"}
        if name in literals:
            return literals[name]
        token = self._peek()
        if token is not None and token.value == "(":
            self.index += 1
            arguments = self.arguments(")")
            if name in self.functions and not arguments:
                return self.functions[name]
            return _call(name, arguments, self.source)
        if name == "sprig" and token is not None and token.value == ".":
            self.index += 1
            function = self._next().value
            self._expect("(")
            return _call(f"sprig.{function}", self.arguments(")"), self.source)
        path = [name]
        while True:
            token = self._peek()
            if token is None:
                break
            if token.value in {".", "?."} and self.index + 1 < len(self.tokens):
                after = self.tokens[self.index + 1]
                if after.kind != "name" or self._is_call(self.index + 2):
                    break
                path.append(after.value)
                self.index += 2
                continue
            if token.value == "[" and self._static_index():
                path.append(_string_value(self.tokens[self.index + 1].value))
                self.index += 3
                continue
            break
        return self.resolve(path)

    def _is_call(self, index: int) -> bool:
        return index < len(self.tokens) and self.tokens[index].value == "("

    def _static_index(self) -> bool:
        following = self.tokens[self.index + 1 : self.index + 3]
        return (
            len(following) == 2  # noqa: PLR2004 - a string then ']'
            and following[0].kind == "string"
            and following[1].value == "]"
        )

    def postfix(self, code: str) -> str:
        while True:
            token = self._peek()
            if token is None:
                return code
            if token.value == "[":
                self.index += 1
                key = self.expression(0)
                self._expect("]")
                code = f"{code}[{key}]"
                continue
            if token.value in {".", "?."}:
                self.index += 1
                member = self._next()
                if self._is_call(self.index):
                    if member.value in self.identity_methods:
                        self.index += 1
                        self._expect(")")
                        continue
                    raise ExprError(f"method calls ({member.value}()) are not supported")
                code = f"{code}[{quote(member.value)}]"
                continue
            return code


# A substituted tag inside an expression (retryStrategy.expression): Argo pastes its
# text into the source, so ``{{x}} == true`` compares the text with "true".
TAG_MARK = re.compile(r"⟪\d+⟫")
_LITERAL = re.compile(r"^(true|false|-?\d+(\.\d+)?)$")


def _binary(op: str, left: str, right: str, source: str) -> str:
    if op == "matches":
        return _matches(left, right, source)
    if op in {"==", "!="}:
        for tag, other in ((left, right), (right, left)):
            if TAG_MARK.fullmatch(tag) and _LITERAL.match(other):
                return f"(({tag} ~ '') {op} '{other}')"
    if op == "contains":
        return f"({right} in {left})"
    if op in {"startsWith", "endsWith"}:
        return f"({left} | {op}({right}))"
    return f"({left} {_PEBBLE_OPS.get(op, op)} {right})"


def _matches(text: str, pattern: str, source: str) -> str:
    """``text matches 'a|b'`` for a pattern of literal alternatives (a substring test each)."""
    literal = pattern.startswith("'") and pattern.endswith("'")
    body = pattern[1:-1] if literal else ""
    if not literal or re.search(r"[\\.^$*+?()\[\]{}]", body):
        raise ExprError(
            f"'matches' with {pattern} is not supported in {source!r}: Flowplane expressions "
            "have no regular-expression test (literal alternatives 'a|b' are)"
        )
    tests = [f"({quote(option)} in {text})" for option in body.split("|")]
    return "(" + " or ".join(tests) + ")"


_FUNCTIONS: dict[str, Callable[[list[str]], str]] = {
    "asInt": lambda a: f"({a[0]} | int)",
    "asFloat": lambda a: f"({a[0]} | float)",
    "string": lambda a: f"({a[0]} ~ '')",
    "toJson": lambda a: f"({a[0]} | toJson)",
    "len": lambda a: f"({a[0]} | length)",
    "lower": lambda a: f"({a[0]} | lower)",
    "upper": lambda a: f"({a[0]} | upper)",
    "trim": lambda a: f"({a[0]} | trim)",
    "sprig.lower": lambda a: f"({a[0]} | lower)",
    "sprig.upper": lambda a: f"({a[0]} | upper)",
    "sprig.trim": lambda a: f"({a[0]} | trim)",
    "sprig.toString": lambda a: f"({a[0]} ~ '')",
    "sprig.int": lambda a: f"({a[0]} | int)",
    "sprig.float64": lambda a: f"({a[0]} | float)",
}
_ARITY = {"jsonpath": 2}


def _call(name: str, arguments: list[str], source: str) -> str:
    expected = _ARITY.get(name, 1)
    if (name in _FUNCTIONS or name in _ARITY) and len(arguments) != expected:
        raise ExprError(f"{name}() takes {expected} argument(s) in {source!r}")
    if name == "jsonpath":
        return f"(fromJson({arguments[0]}) | jq({quote(jq_of_jsonpath(arguments[1]))}) | first)"
    if name in _FUNCTIONS:
        return _FUNCTIONS[name](arguments)
    raise ExprError(f"function {name}() is not supported in {source!r}")


_JSONPATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def jq_of_jsonpath(literal: str) -> str:
    """The jq program equal to a simple JSONPath (``$.a[0]['b']``), given as a Pebble literal."""
    if not (literal.startswith("'") and literal.endswith("'")):
        raise ExprError("jsonpath() needs a literal path")
    path = literal[1:-1].replace("\\'", "'")
    if not path.startswith("$"):
        raise ExprError(f"jsonpath {path!r} must start with '$'")
    program = ""
    position = 1
    while position < len(path):
        match = _JSONPATH_STEP.match(path, position)
        if match is None:
            raise ExprError(f"jsonpath {path!r}: only .name, [n] and ['name'] steps are supported")
        name, index, single, double = match.groups()
        if index is not None:
            program += f"[{index}]"
        else:
            key = name or single or double or ""
            program += f'["{key}"]'
        position = match.end()
    return "." + program if program and not program.startswith(".") else program or "."
