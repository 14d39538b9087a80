"""Argo files of a Git source in a plan: converted flows plus the Argo diff, and what apply keeps.

``domain/argo/gitfiles.py`` converts the files; here a plan's changes learn
their Argo origin (``argo_path``, ``argo_source``, ``argo_diff`` against the
Argo source of the live revision), and apply stores it on the revision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlmodel import Session

from controlplane.domain.argo.gitfiles import Original
from controlplane.domain.diff import unified_diff
from controlplane.store import flows as flow_store
from controlplane.store.tables import FlowRevisionRow


def annotate_changes(
    session: Session,
    changes: Iterable[dict[str, Any]],
    originals: Mapping[tuple[str, str], Original],
) -> list[dict[str, Any]]:
    """The plan's change dicts, those of converted flows with their Argo source and diff.

    A flow whose live revision came from Argo and whose new one does not (or is
    removed) gets the Argo side of the diff too, so a reviewer sees it go.
    """
    annotated = []
    for change in changes:
        key = (change["namespace"], change["flow_id"])
        original = originals.get(key)
        _, live = flow_store.get_live(session, *key)
        before = live.original_source if live is not None else None
        before_path = live.original_path if live is not None else None
        if original is None and before is None:
            annotated.append(change)
            continue
        extra: dict[str, Any] = {}
        if original is not None:
            extra = {
                "argo_path": original.path,
                "argo_source": original.source,
                "argo_format": original.format,
            }
        after = original.source if original is not None else ""
        if (before or "") != after:
            label = f"{before_path} (revision {live.revision})" if live and before else "/dev/null"
            extra["argo_diff"] = unified_diff(
                before or "",
                after,
                before_label=label,
                after_label=original.path if original is not None else "/dev/null",
            )
        annotated.append({**change, **extra})
    return annotated


def argo_text(changes: Iterable[Mapping[str, Any]]) -> str:
    """The plan text's section of Argo source diffs (empty when no flow comes from Argo)."""
    parts = [
        f"Argo source of {c['namespace']}/{c['flow_id']} ({c.get('argo_path') or 'removed'}):\n"
        f"{c['argo_diff']}"
        for c in changes
        if c.get("argo_diff")
    ]
    if not parts:
        return ""
    return "\nArgo sources (converted into the flows above):\n" + "".join(parts)


def keep_original(revision: FlowRevisionRow | None, change: Mapping[str, Any]) -> None:
    """Store the Argo source a change converts, byte for byte, on the revision it wrote."""
    if revision is None or change.get("argo_source") is None:
        return
    revision.original_format = change.get("argo_format", "argo")
    revision.original_path = change.get("argo_path")
    revision.original_source = change["argo_source"]
