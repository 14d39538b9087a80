"""Argo's ``when`` conditions rewritten as Pebble conditions.

Argo substitutes the ``{{...}}`` tags of a ``when`` and then evaluates the
text with govaluate, reading every bare word as a string (so
``{{steps.flip.outputs.result}} == heads`` compares two strings), digits as
numbers and ``true``/``false`` as booleans. Here each tag stays one operand
(its value is known only at run time); ``==`` and ``!=`` compare the
operands' text, ``<``, ``>``, ``<=``, ``>=`` their numbers, and ``&&``,
``||``, ``!`` and parentheses combine them. Regular-expression operators
(``=~``, ``!~``) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from controlplane.domain.argo.values import Value, quote


class WhenError(ValueError):
    """A ``when`` the converter cannot rewrite."""


_OPERATORS = ("==", "!=", "<=", ">=", "=~", "!~", "&&", "||", "<", ">", "!", "(", ")")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class _Operand:
    value: Value

    def text_code(self) -> str:
        if self.value.is_literal:
            return quote(self.value.text)
        return self.value.expression()

    def number_code(self) -> str:
        if self.value.is_literal and _NUMBER.match(self.value.text):
            return self.value.text
        return f"({self.text_code()} | number)"


def translate_when(text: str, tag: Callable[[str], Value]) -> str:
    """The Pebble condition equal to the govaluate ``text``; ``tag`` converts one ``{{...}}``."""
    tokens = _tokenize(text, tag)
    if not tokens:
        raise WhenError("the condition is empty")
    parser = _Parser(tokens, text)
    code = parser.disjunction()
    if parser.index != len(tokens):
        raise WhenError(f"unexpected {tokens[parser.index]!r} in {text!r}")
    return code


def _tokenize(text: str, tag: Callable[[str], Value]) -> list[str | _Operand]:  # noqa: C901 - one branch per token kind
    tokens: list[str | _Operand] = []
    parts: list[Value] = []
    position = 0

    def flush() -> None:
        if parts:
            merged = Value()
            for part in parts:
                merged += part
            tokens.append(_Operand(merged))
            parts.clear()

    while position < len(text):
        char = text[position]
        if char.isspace():
            flush()
            position += 1
            continue
        if text.startswith("{{", position):
            end = text.find("}}", position)
            if end < 0:
                raise WhenError(f"unclosed '{{{{' in {text!r}")
            parts.append(tag(text[position : end + 2]))
            position = end + 2
            continue
        if char in "'\"":
            end = text.find(char, position + 1)
            if end < 0:
                raise WhenError(f"unclosed quote in {text!r}")
            flush()
            tokens.append(_Operand(Value.literal(text[position + 1 : end])))
            position = end + 1
            continue
        operator = next((op for op in _OPERATORS if text.startswith(op, position)), None)
        if operator is not None:
            flush()
            tokens.append(operator)
            position += len(operator)
            continue
        parts.append(Value.literal(char))
        position += 1
    flush()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str | _Operand], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.index = 0

    def _peek(self) -> str | _Operand | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def disjunction(self) -> str:
        code = self.conjunction()
        while self._peek() == "||":
            self.index += 1
            code = f"({code} or {self.conjunction()})"
        return code

    def conjunction(self) -> str:
        code = self.negation()
        while self._peek() == "&&":
            self.index += 1
            code = f"({code} and {self.negation()})"
        return code

    def negation(self) -> str:
        if self._peek() == "!":
            self.index += 1
            return f"(not {self.negation()})"
        return self.comparison()

    def comparison(self) -> str:
        if self._peek() == "(":
            self.index += 1
            code = self.disjunction()
            if self._peek() != ")":
                raise WhenError(f"missing ')' in {self.text!r}")
            self.index += 1
            return code
        left = self._operand()
        operator = self._peek()
        if not isinstance(operator, str) or operator not in {"==", "!=", "<", ">", "<=", ">="}:
            if operator in {"=~", "!~"}:
                raise WhenError(
                    f"{operator} (regular expressions) is not supported in when {self.text!r}"
                )
            # A lone operand is true when its text is "true", as govaluate reads it.
            return f"({left.text_code()} == 'true')"
        self.index += 1
        right = self._operand()
        if operator in {"==", "!="}:
            return f"({left.text_code()} {operator} {right.text_code()})"
        return f"({left.number_code()} {operator} {right.number_code()})"

    def _operand(self) -> _Operand:
        token = self._peek()
        if not isinstance(token, _Operand):
            raise WhenError(f"expected a value, found {token!r} in when {self.text!r}")
        self.index += 1
        return token
