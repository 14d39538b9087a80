"""Plans, by concept: ``sync`` makes them, ``review`` decides them, ``apply`` activates them.

The lifecycle (statuses, the one status writer, origins) is in ``lifecycle``
and its rules in ``controlplane.domain.plan_states``. This module keeps the
names callers have always imported from here.
"""

from __future__ import annotations

from controlplane.services.gitops.apply import (
    Recovered,
    StalePlanError,
    apply_plan,
    recover_plans,
)
from controlplane.services.gitops.lifecycle import (
    APPLIED,
    APPROVED,
    FAILED,
    HEAL,
    LOCAL,
    LOCAL_SCHEME,
    NO_CHANGES,
    PENDING,
    REJECTED,
    ROLLBACK,
    SUPERSEDED,
    SYNC,
    Authorize,
    active_sets,
    is_local,
    origin_of,
    source_origin,
    touched_namespaces,
)
from controlplane.services.gitops.review import (
    Progress,
    decide_plan,
    plan_writers,
    review_progress,
    writer_match,
)
from controlplane.services.gitops.sync import (
    read_source,
    read_source_at,
    rollback_source,
    sync_source,
)

__all__ = [
    "APPLIED",
    "APPROVED",
    "FAILED",
    "HEAL",
    "LOCAL",
    "LOCAL_SCHEME",
    "NO_CHANGES",
    "PENDING",
    "REJECTED",
    "ROLLBACK",
    "SUPERSEDED",
    "SYNC",
    "Authorize",
    "Progress",
    "Recovered",
    "StalePlanError",
    "active_sets",
    "apply_plan",
    "decide_plan",
    "is_local",
    "origin_of",
    "plan_writers",
    "read_source",
    "read_source_at",
    "recover_plans",
    "review_progress",
    "rollback_source",
    "source_origin",
    "sync_source",
    "touched_namespaces",
    "writer_match",
]
