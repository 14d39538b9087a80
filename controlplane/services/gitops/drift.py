"""Drift: how the live flows a source owns differ from its last applied commit.

Flows drift when something other than the source writes them: an operator
with database access, a flow deleted and re-created through the API, another
origin taking over a deleted flow. A source with ``self_heal`` plans the
corrections on its next sync (``plans.sync_source``); this report says what
they would be, for any source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.domain.argo.gitfiles import expand_argo_files
from controlplane.domain.plan import Action, compute_plan
from controlplane.services.gitops.lifecycle import active_sets, is_local, source_origin
from controlplane.services.gitops.sources import get_source
from controlplane.services.gitops.sync import read_source, read_source_at
from controlplane.services.secrets import Keyring
from controlplane.store import flows as flow_store

CHANGED, DELETED, UNOWNED, EXTRA = "changed", "deleted", "unowned", "extra"


@dataclass(frozen=True)
class DriftItem:
    """One flow that is not as the last applied commit says.

    ``kind`` is ``changed`` (live source differs from the file), ``deleted``
    (the flow is gone), ``unowned`` (another origin owns it now) or ``extra``
    (still live though the commit dropped it, on a source that prunes).
    """

    namespace: str
    flow_id: str
    kind: str
    detail: str
    live_revision: int | None = None
    path: str | None = None


@dataclass(frozen=True)
class DriftReport:
    """The drift of one source against ``commit`` (None: nothing applied yet)."""

    source_id: str
    commit: str | None
    self_heal: bool
    items: tuple[DriftItem, ...]

    @property
    def drifted(self) -> bool:
        """True when any flow differs from the commit."""
        return bool(self.items)


def source_drift(
    engine: Engine,
    source_id: str,
    cache_root: Path,
    *,
    keyring: Keyring | None = None,
    visible: Callable[[str], bool] | None = None,
) -> DriftReport:
    """Compare the tree of the source's last applied commit with the flows live now.

    ``visible`` (a caller's scope check) keeps only the items of namespaces it
    accepts: a scoped token never learns the names of other teams' flows.
    """
    source = get_source(engine, source_id)
    if source.last_commit is None:
        return DriftReport(source_id, None, source.self_heal, ())
    if is_local(source):
        snapshot = read_source(source, cache_root)
    else:
        snapshot = read_source_at(source, cache_root, source.last_commit, keyring)
    origin = source_origin(source)
    items: list[DriftItem] = []
    with Session(engine) as session:
        owned, _ = active_sets(session, origin)
        # Only the flow diff matters here; the commit was valid when it was applied.
        files = expand_argo_files(snapshot.files, flows_path=source.flows_path).files
        plan = compute_plan(owned, files, flows_path=source.flows_path)
        for change in plan.changes:
            if change.action is Action.CHANGE:
                items.append(
                    DriftItem(
                        change.namespace,
                        change.flow_id,
                        CHANGED,
                        f"live revision {change.from_revision} differs from {change.path}",
                        change.from_revision,
                        change.path,
                    )
                )
            elif change.action is Action.ADD:
                flow = flow_store.get_flow_row(session, change.namespace, change.flow_id)
                if flow is None or flow.deleted:
                    items.append(
                        DriftItem(
                            change.namespace,
                            change.flow_id,
                            DELETED,
                            f"deleted, but {change.path} defines it",
                            flow.revision if flow is not None else None,
                            change.path,
                        )
                    )
                else:
                    items.append(
                        DriftItem(
                            change.namespace,
                            change.flow_id,
                            UNOWNED,
                            f"now owned by {flow.origin}, not {origin}",
                            flow.revision,
                            change.path,
                        )
                    )
            elif change.action is Action.REMOVE and source.prune:
                items.append(
                    DriftItem(
                        change.namespace,
                        change.flow_id,
                        EXTRA,
                        "live, but the commit has no file for it",
                        change.from_revision,
                    )
                )
    if visible is not None:
        items = [item for item in items if visible(item.namespace)]
    return DriftReport(source_id, source.last_commit, source.self_heal, tuple(items))
