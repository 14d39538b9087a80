"""What a Git sync may reuse from the live revisions instead of reading and validating.

A flow file whose Git blob is byte for byte the live source of the flow its
path names is unchanged: the tree listing gives its blob sha without reading
it, and the store holds the live source, whose blob sha is computed here. The
plan then trusts the live spec for it (``compute_plan(reuse=...)``), so a
sync of a large repository reads and validates only what changed.

Flows converted from Argo files are left out: an Argo file may convert into
several flows and refer to templates in other files, so it is always read
and converted again.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.store.tables import FlowRevisionRow, FlowRow

_SUFFIXES = ("yaml", "yml")


def live_sources(engine: Engine, origin: str, flows_path: str) -> dict[str, str]:
    """Repo-relative path → live source, for every flow ``origin`` owns that a file may hold.

    Both ``<id>.yaml`` and ``<id>.yml`` name the flow; only its blob decides.
    """
    stripped = flows_path.strip("/")
    prefix = f"{stripped}/" if stripped else ""
    statement = (
        select(FlowRevisionRow.namespace, FlowRevisionRow.flow_id, FlowRevisionRow.source)
        .join(
            FlowRow,
            (col(FlowRevisionRow.flow_pk) == col(FlowRow.pk))
            & (col(FlowRevisionRow.revision) == col(FlowRow.revision)),
        )
        .where(
            col(FlowRow.origin) == origin,
            col(FlowRow.deleted).is_(False),
            col(FlowRevisionRow.original_source).is_(None),
        )
    )
    found: dict[str, str] = {}
    with Session(engine) as session:
        for namespace, flow_id, source in session.exec(statement):
            for suffix in _SUFFIXES:
                found[f"{prefix}{namespace}/{flow_id}.{suffix}"] = source
    return found
