"""Flows as files of a flows repository: ``<gitDirectory>/<namespace>/<id>.yaml``.

That is the layout Flowplane's Git sources read (docs/gitops.md): one
directory per namespace, named with its dots, so a pushed commit comes back
through the normal sync and plan. Kestra's ``flows`` globs (Java glob syntax)
select flows by id; ``targetNamespace`` moves a namespace tree elsewhere by
rewriting each flow's top-level ``namespace:`` line, nothing else.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from pathlib import PurePosixPath

import yaml

from controlplane.plugins.api import TaskFailedError

FLOW_SUFFIXES = (".yaml", ".yml")
# The top-level key only: a nested ``namespace:`` (a Subflow's) is indented.
_NAMESPACE_LINE = re.compile(
    r"^namespace:[ \t]*(?P<q>['\"]?)(?P<value>[^'\"\s#]+)(?P=q)", re.MULTILINE
)
_BRACES = re.compile(r"\{([^{}]*)\}")


def git_directory(value: str) -> PurePosixPath:
    """``gitDirectory`` as a relative path inside the repository, or a ``TaskFailedError``."""
    path = PurePosixPath(value.strip().strip("/") or ".")
    if value.strip().startswith("/") or ".." in path.parts or ".git" in path.parts:
        raise TaskFailedError(f"gitDirectory {value!r} must be a folder inside the repository")
    return path


def flow_path(directory: PurePosixPath, namespace: str, flow_id: str) -> PurePosixPath:
    """Where a flow's file lives in the repository."""
    return directory / namespace / f"{flow_id}.yaml"


def in_scope(namespace: str, root: str, *, include_children: bool) -> bool:
    """Whether ``namespace`` is ``root`` or, with ``include_children``, under it."""
    return namespace == root or (include_children and namespace.startswith(f"{root}."))


def moved(namespace: str, source: str, target: str | None) -> str:
    """The namespace a flow of ``namespace`` gets when ``source``'s tree moves to ``target``."""
    if target is None or target == source:
        return namespace
    return target + namespace[len(source) :]


def retarget(text: str, namespace: str, new: str) -> str:
    """``text`` with its top-level ``namespace: <namespace>`` line saying ``new`` instead.

    Only that line changes; the result must still read as a flow of ``new``.
    """
    if new == namespace:
        return text
    match = _NAMESPACE_LINE.search(text)
    if match is None or match["value"] != namespace:
        raise TaskFailedError(
            f"cannot move a flow of {namespace} to {new}: its source has no top-level "
            f"'namespace: {namespace}' line"
        )
    changed = text[: match.start("value")] + new + text[match.end("value") :]
    try:
        document = yaml.safe_load(changed)
    except yaml.YAMLError:
        document = None
    if not isinstance(document, dict) or document.get("namespace") != new:
        raise TaskFailedError(f"cannot move a flow of {namespace} to {new}: its source is unusual")
    return changed


class IdGlobs:
    """Kestra's ``flows`` property: Java globs matched against flow ids (no glob: every id)."""

    def __init__(self, globs: Sequence[str]) -> None:
        """Expand ``{a,b}`` groups; ids hold no ``/``, so ``*`` and ``**`` both match any run."""
        self._patterns = [expanded for glob in globs for expanded in _expand(glob)]

    def __call__(self, flow_id: str) -> bool:
        """Whether ``flow_id`` is selected."""
        if not self._patterns:
            return True
        return any(fnmatch.fnmatchcase(flow_id, pattern) for pattern in self._patterns)


def _expand(glob: str) -> list[str]:
    """Java's ``{a,b}`` alternatives as separate fnmatch patterns (Java groups do not nest)."""
    match = _BRACES.search(glob)
    if match is None:
        return [glob.replace("**", "*")]
    head, tail = glob[: match.start()], glob[match.end() :]
    return [item for choice in match[1].split(",") for item in _expand(head + choice + tail)]
