"""SQL text as PostgreSQL reads it: statements split at top-level ``;``, ``:name`` bound.

Kestra splits on ``;`` with a regular expression and replaces every ``:word``;
here quotes (``'…'``, ``E'…'``, ``"…"``, ``$tag$…$tag$``) and comments are
skipped, so a semicolon in a string or a ``::int`` cast is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _segments(sql: str) -> Iterator[tuple[str, str]]:
    """``(kind, text)`` pieces of ``sql``: ``code``, ``quoted`` or ``comment``, in order."""
    index, length, start = 0, len(sql), 0
    while index < length:
        char = sql[index]
        end = None
        if char == "-" and sql.startswith("--", index):
            newline = sql.find("\n", index)
            end, kind = (length if newline < 0 else newline + 1), "comment"
        elif char == "/" and sql.startswith("/*", index):
            end, kind = _block_comment_end(sql, index), "comment"
        elif char in "'\"":
            escaped = char == "'" and index > 0 and sql[index - 1] in "eE"
            end, kind = _quote_end(sql, index, char, backslash=escaped), "quoted"
        elif char == "$" and (tag := _DOLLAR_TAG.match(sql, index)):
            close = sql.find(tag.group(0), tag.end())
            end, kind = (length if close < 0 else close + len(tag.group(0))), "quoted"
        if end is None:
            index += 1
            continue
        if start < index:
            yield "code", sql[start:index]
        yield kind, sql[index:end]
        index = start = end
    if start < length:
        yield "code", sql[start:]


def _block_comment_end(sql: str, index: int) -> int:
    depth, position = 0, index
    while position < len(sql):
        if sql.startswith("/*", position):
            depth, position = depth + 1, position + 2
        elif sql.startswith("*/", position):
            depth, position = depth - 1, position + 2
            if depth == 0:
                return position
        else:
            position += 1
    return len(sql)


def _quote_end(sql: str, index: int, quote: str, *, backslash: bool) -> int:
    position = index + 1
    while position < len(sql):
        char = sql[position]
        if backslash and char == "\\":
            position += 2
            continue
        if char == quote:
            if sql.startswith(quote * 2, position):
                position += 2  # a doubled quote stands for itself
                continue
            return position + 1
        position += 1
    return len(sql)


def split_statements(sql: str) -> list[str]:
    """The statements of ``sql``, split at top-level semicolons; empty ones dropped."""
    statements: list[str] = []
    current: list[str] = []
    meaningful = False
    for kind, text in _segments(sql):
        if kind != "code":
            current.append(text)
            meaningful = meaningful or kind == "quoted"
            continue
        pieces = text.split(";")
        for number, piece in enumerate(pieces):
            if number > 0:
                if meaningful:
                    statements.append("".join(current).strip())
                current, meaningful = [], False
            current.append(piece)
            meaningful = meaningful or bool(piece.strip())
    if meaningful:
        statements.append("".join(current).strip())
    return statements


def bind_names(sql: str, names: set[str]) -> str:
    """``sql`` for psycopg: each ``:name`` in ``names`` as ``%(name)s``, every ``%`` doubled.

    Only code is rewritten (not strings or comments), a ``::`` cast is left
    alone, and a ``:word`` that names no parameter stays as written.
    """
    out: list[str] = []
    for kind, text in _segments(sql):
        doubled = text.replace("%", "%%")
        out.append(_bind_code(doubled, names) if kind == "code" else doubled)
    return "".join(out)


def _bind_code(text: str, names: set[str]) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == ":" and text.startswith("::", index):
            out.append("::")
            index += 2
            continue
        if char == ":" and (match := _NAME.match(text, index + 1)) and match.group(0) in names:
            out.append(f"%({match.group(0)})s")
            index = match.end()
            continue
        out.append(char)
        index += 1
    return "".join(out)


def first_keyword(statement: str) -> str:
    """The statement's first word, lower case ("" when none), comments skipped."""
    for kind, text in _segments(statement):
        if kind == "comment" or not text.strip():
            continue
        match = _NAME.match(text.lstrip()) if kind == "code" else None
        return match.group(0).lower() if match else ""
    return ""
