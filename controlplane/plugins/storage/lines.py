"""Reading a stored file line by line, as Java's ``BufferedReader.readLine`` does."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from controlplane.plugins.api import RunContext


@contextmanager
def open_lines(context: RunContext, uri: str) -> Iterator[Iterator[str]]:
    r"""The lines of a stored file, without their ending (``\n``, ``\r\n`` or ``\r``).

    Bytes that are not UTF-8 are kept as they were read (``surrogateescape``),
    so ``encode_line`` writes them back unchanged.
    """
    with (
        context.open_file(uri) as handle,
        io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline=None) as text,
    ):
        yield (line.removesuffix("\n") for line in text)


def encode_line(line: str, ending: str) -> bytes:
    """``line`` and its ``ending`` as the bytes to write."""
    return (line + ending).encode("utf-8", errors="surrogateescape")
