"""Argo values on their way into a flow: literal text and Pebble expressions.

Argo substitutes ``{{...}}`` tags textually; a converted value is therefore a
sequence of parts, each literal text or a Pebble expression. The same value
is written as a template (``"A{{ taskrun.value }}"``) where a flow property
takes text, or as one expression (``('A' ~ taskrun.value)``) inside a
condition.

Loop values need one more step. Argo resolves ``{{item}}`` where the loop
is written, but an inlined template may nest further loops, inside which
Flowplane's ``taskrun.value`` names the innermost item. An item therefore
travels as a placeholder naming its loop, and becomes ``taskrun.value`` or
``parents[k].taskrun.value`` once the text is placed in a task whose
enclosing loops are known (``place``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_LOOP = "\x00"
_LOOP_REF = re.compile("\x00([^\x00]+)\x00")


def loop_value(loop_id: str) -> str:
    """The placeholder of the current item of loop ``loop_id`` (a Pebble expression)."""
    return f"{_LOOP}{loop_id}{_LOOP}"


def place(value: Any, loops: Sequence[str]) -> Any:
    """``value`` with every loop placeholder written for a task inside ``loops`` (outermost first).

    Raises ``ValueError`` when a placeholder names a loop that does not enclose
    the task (a converter bug, never a user error).
    """
    if isinstance(value, str):
        if _LOOP not in value:
            return value

        def ref(match: re.Match[str]) -> str:
            loop_id = match.group(1)
            if loop_id not in loops:
                raise ValueError(f"item of loop {loop_id!r} used outside it")
            depth = len(loops) - 1 - list(loops).index(loop_id)
            return "taskrun.value" if depth == 0 else f"parents[{depth}].taskrun.value"

        return _LOOP_REF.sub(ref, value)
    if isinstance(value, dict):
        return {place(k, loops): place(v, loops) for k, v in value.items()}
    if isinstance(value, list):
        return [place(item, loops) for item in value]
    return value


def quote(text: str) -> str:
    """A Pebble string literal of ``text``."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return "'" + escaped.replace("\r", "\\r").replace("\t", "\\t") + "'"


def escape_literal(text: str) -> str:
    """``text`` as a template that renders to itself (no tag, comment or block starts)."""
    if "{" not in text:
        return text
    out = []
    for index, char in enumerate(text):
        following = text[index + 1 : index + 2]
        out.append("{{ '{' }}" if char == "{" and following in {"{", "%", "#"} else char)
    return "".join(out)


@dataclass(frozen=True)
class Expr:
    """One Pebble expression (``code``); ``text`` says it already yields a string."""

    code: str
    text: bool = True

    def as_text(self) -> str:
        """The expression as Argo would substitute it: always a string."""
        return self.code if self.text else f"({self.code} ~ '')"


Part = str | Expr


@dataclass(frozen=True)
class Value:
    """An Argo string after substitution: literal parts and expressions, in order."""

    parts: tuple[Part, ...] = ()

    @classmethod
    def literal(cls, text: str) -> Value:
        """A value with no expression in it."""
        return cls((text,) if text else ())

    @classmethod
    def of(cls, parts: Sequence[Part]) -> Value:
        """Adjacent literal parts merged, empty ones dropped."""
        merged: list[Part] = []
        for part in parts:
            if isinstance(part, str):
                if not part:
                    continue
                if merged and isinstance(merged[-1], str):
                    merged[-1] += part
                    continue
            merged.append(part)
        return cls(tuple(merged))

    def __add__(self, other: Value) -> Value:
        return Value.of([*self.parts, *other.parts])

    @property
    def is_literal(self) -> bool:
        """True when the value holds no expression."""
        return all(isinstance(part, str) for part in self.parts)

    @property
    def text(self) -> str:
        """The literal text (only meaningful when ``is_literal``)."""
        return "".join(p for p in self.parts if isinstance(p, str))

    def template(self) -> str:
        """The value as a Pebble template that renders to Argo's substituted string."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(escape_literal(part))
            else:
                out.append("{{ " + part.code + " }}")
        return "".join(out)

    def expression(self) -> str:
        """The value as one Pebble expression yielding Argo's substituted string."""
        if not self.parts:
            return "''"
        codes = [quote(p) if isinstance(p, str) else p.as_text() for p in self.parts]
        return codes[0] if len(codes) == 1 else "(" + " ~ ".join(codes) + ")"
