"""Namespace files in a script's working directory: Kestra's matching, and a safe writer.

Kestra's ``namespaceFiles.include``/``exclude`` are Java ``PathMatcher``
patterns tested against the file's path with a leading ``/``
(``/scripts/etl.py``). A pattern that starts with a word character gets a
``**/`` prefix, so ``scripts/**`` or ``etl.py`` match at any depth; ``glob:``
and ``regex:`` prefixes choose the syntax. In Java's glob ``*`` stays inside
one folder and ``**`` crosses folders, so ``*.py`` matches nothing (the path
starts with ``/``) while ``**.py`` matches every Python file: as in Kestra.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from controlplane.errors import FlowplaneError

IF_EXISTS = ("OVERWRITE", "FAIL", "WARN", "IGNORE")
_WORD_START = re.compile(r"\w", re.ASCII)
_REGEX_SPECIAL = set(".^$+(){}|\\")


class NamespaceFilesError(FlowplaneError):
    """Namespace files could not be matched or written into the working directory."""


class PathFilter:
    """Kestra's include/exclude predicate over namespace file paths (``scripts/etl.py``)."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        """Compile both pattern lists; an invalid pattern raises NamespaceFilesError."""
        self._include = [_compile(p) for p in include]
        self._exclude = [_compile(p) for p in exclude]

    def __call__(self, path: str) -> bool:
        """Whether the file at ``path`` (relative, ``/`` between folders) is wanted."""
        rooted = "/" + path.lstrip("/")
        if self._include and not any(p.fullmatch(rooted) for p in self._include):
            return False
        return not any(p.fullmatch(rooted) for p in self._exclude)


def write_namespace_files(
    directory: Path,
    files: Mapping[str, bytes],
    *,
    if_exists: str,
    log: Callable[[str, str], None],
) -> list[Path]:
    """Write ``files`` under ``directory``; return every file and folder created or replaced.

    ``if_exists`` is Kestra's ``ifExists``: OVERWRITE replaces a file already
    there, FAIL raises, WARN and IGNORE keep it (WARN logs it). A path that
    resolves outside the directory (a link a previous script planted) fails,
    and files are opened without following links, as the server writes them.
    """
    root = directory.resolve()
    written: list[Path] = []
    for name, content in sorted(files.items()):
        target = root / name
        if not target.resolve().is_relative_to(root) or target.resolve() == root:
            raise NamespaceFilesError(
                f"namespace file {name!r} points outside the working directory"
            )
        if os.path.lexists(target):
            if if_exists == "FAIL":
                raise NamespaceFilesError(
                    f"namespace file {name!r} already exists in the working directory "
                    "(namespaceFiles.ifExists: FAIL)"
                )
            if if_exists == "WARN":
                log("WARN", f"namespace file {name!r} already exists; the existing one is kept")
            if if_exists != "OVERWRITE":
                continue
        written += _make_parents(root, target.parent)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        written.append(target)
    return written


def _make_parents(root: Path, folder: Path) -> list[Path]:
    """Create the folders from ``root`` down to ``folder``; return the new ones."""
    made: list[Path] = []
    for parent in [*reversed(folder.relative_to(root).parents), folder.relative_to(root)]:
        path = root / parent
        if path == root or (path.is_dir() and not path.is_symlink()):
            continue
        if path.is_symlink() or path.exists():
            raise NamespaceFilesError(f"{parent} in the working directory is not a folder")
        path.mkdir(mode=0o755)
        made.append(path)
    return made


def _compile(pattern: str) -> re.Pattern[str]:
    """A Java PathMatcher pattern (Kestra's ``PathMatcherPredicate``) as a Python regex."""
    try:
        if pattern.startswith("regex:"):
            return re.compile(pattern.removeprefix("regex:"))
        if pattern.startswith("glob:"):
            return re.compile(_glob_to_regex(pattern.removeprefix("glob:")))
        if _WORD_START.match(pattern):
            pattern = "**/" + pattern
        return re.compile(_glob_to_regex(pattern))
    except (re.error, ValueError) as exc:
        raise NamespaceFilesError(f"invalid namespace files pattern {pattern!r}: {exc}") from None


def _glob_to_regex(glob: str) -> str:  # noqa: C901, PLR0912 - a branch per glob construct
    """Java's ``Globs.toUnixRegexPattern``: ``*`` within a folder, ``**`` across folders."""
    regex: list[str] = []
    in_group = False
    index = 0
    while index < len(glob):
        char = glob[index]
        index += 1
        if char == "\\":
            if index >= len(glob):
                raise ValueError("no character to escape at the end")
            regex.append(re.escape(glob[index]))
            index += 1
        elif char == "[":
            index = _char_class(glob, index, regex)
        elif char == "{":
            if in_group:
                raise ValueError("cannot nest groups")
            regex.append("(?:")
            in_group = True
        elif char == "}" and in_group:
            regex.append(")")
            in_group = False
        elif char == "," and in_group:
            regex.append("|")
        elif char == "*":
            if index < len(glob) and glob[index] == "*":
                regex.append(".*")
                index += 1
            else:
                regex.append("[^/]*")
        elif char == "?":
            regex.append("[^/]")
        else:
            regex.append("\\" + char if char in _REGEX_SPECIAL else re.escape(char))
    if in_group:
        raise ValueError("missing '}'")
    return "".join(regex)


def _char_class(glob: str, index: int, regex: list[str]) -> int:
    """Translate ``[...]`` starting after ``[``; never matches ``/``. Return the next index."""
    end = glob.find("]", index + 1 if glob[index : index + 1] in {"!", "^", "]"} else index)
    if end < 0:
        raise ValueError("missing ']'")
    body = glob[index:end]
    if "/" in body:
        raise ValueError("'/' is not allowed in a bracket expression")
    negated = body[:1] in {"!", "^"}
    body = body[1:] if negated else body
    escaped = "".join("\\" + c if c in "\\[]^" else c for c in body)
    regex.append(f"(?!/)[{'^' if negated else ''}{escaped}]")
    return end + 1
