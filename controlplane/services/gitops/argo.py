"""Argo files of a Git source in a plan: converted flows plus the Argo diff, and what apply keeps.

``domain/argo/gitfiles.py`` converts the files; here a plan's changes learn
their Argo origin (``argo_path``, ``argo_source``, ``argo_diff`` against the
Argo source of the live revision), and apply stores it on the revision.

The live revisions' Argo sources are read in one query (``live_originals``):
a plan of 10,000 flows must not ask the store once per flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from controlplane.domain.argo.gitfiles import Original
from controlplane.domain.diff import unified_diff
from controlplane.store.flows import LIVE_REVISION
from controlplane.store.tables import FlowRevisionRow, FlowRow


@dataclass(frozen=True)
class LiveOriginal:
    """The Argo source a live revision was converted from."""

    revision: int
    path: str | None
    source: str


def live_originals(session: Session) -> dict[tuple[str, str], LiveOriginal]:
    """Every live revision that keeps an Argo source, by (namespace, flow id), in one query."""
    # Five columns: more than sqlmodel's ``select`` types, so SQLAlchemy's.
    rows = session.connection().execute(
        sa.select(
            col(FlowRow.namespace),
            col(FlowRow.flow_id),
            col(FlowRow.revision),
            col(FlowRevisionRow.original_path),
            col(FlowRevisionRow.original_source),
        )
        .join(FlowRevisionRow, LIVE_REVISION)
        .where(col(FlowRow.deleted).is_(False), col(FlowRevisionRow.original_source).is_not(None))
    )
    return {
        (namespace, flow_id): LiveOriginal(revision, path, source)
        for namespace, flow_id, revision, path, source in rows
        if source is not None
    }


def annotate_changes(
    changes: Iterable[dict[str, Any]],
    originals: Mapping[tuple[str, str], Original],
    live: Mapping[tuple[str, str], LiveOriginal],
) -> list[dict[str, Any]]:
    """The plan's change dicts, those of converted flows with their Argo source and diff.

    ``live`` is ``live_originals``, read when the plan was. A flow whose live
    revision came from Argo and whose new one does not (or is removed) gets
    the Argo side of the diff too, so a reviewer sees it go.
    """
    annotated = []
    for change in changes:
        key = (change["namespace"], change["flow_id"])
        original = originals.get(key)
        current = live.get(key)
        before = current.source if current is not None else None
        before_path = current.path if current is not None else None
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
            label = (
                f"{before_path} (revision {current.revision})"
                if current and before
                else "/dev/null"
            )
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
    """Store what a change's revision came from: the validator and any Argo source.

    The plan's validator fingerprint lets a later plan reuse the revision's
    spec for an identical file; the Argo source is kept byte for byte.
    """
    if revision is None:
        return
    revision.spec_fingerprint = change.get("spec_fingerprint")
    if change.get("argo_source") is None:
        return
    revision.original_format = change.get("argo_format", "argo")
    revision.original_path = change.get("argo_path")
    revision.original_source = change["argo_source"]
