"""The worker's side of ``RunContext.namespace_flows`` and ``sync_git_source``.

They serve the git family's PushFlows and SyncFlows tasks.

The running flow's namespace is the caller every namespace check is made for,
and ``flow:<namespace>/<id>`` the actor recorded on a plan it asks for.
Service errors reach the task as ``TaskFailedError`` with their message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controlplane.errors import FlowplaneError
from controlplane.plugins.api import GitSyncRequest, GitSyncResult, NamespaceFlow, TaskFailedError
from controlplane.services.flow_export import live_flow_sources
from controlplane.services.gitops.task_sync import TaskSyncAsk, sync_for_flow

if TYPE_CHECKING:
    from controlplane.services.worker.executor import Executor


def namespace_flows(
    executor: Executor, namespace: str, *, include_children: bool
) -> list[NamespaceFlow]:
    """The live flows of ``namespace`` (and under it) the running flow may read."""
    try:
        found = live_flow_sources(
            executor.engine,
            executor.execution.namespace,
            namespace,
            include_children=include_children,
        )
    except FlowplaneError as exc:
        raise TaskFailedError(str(exc)) from None
    return [NamespaceFlow(*item) for item in found]


def sync_git_source(executor: Executor, request: GitSyncRequest) -> GitSyncResult:
    """Sync (or plan, on a dry run) the Git source the request names, for the running flow."""
    data_dir = executor.sandbox.data_dir
    if data_dir is None:
        # The Git cache and the server identity live in the data directory.
        raise TaskFailedError("this worker has no data directory: it cannot sync Git sources")
    own = executor.execution
    ask = TaskSyncAsk(
        url=request.url,
        branch=request.branch,
        directory=request.directory,
        namespace=request.namespace,
        include_children=request.include_children,
        delete=request.delete,
        dry_run=request.dry_run,
    )
    try:
        outcome = sync_for_flow(
            executor.engine,
            data_dir / "git",
            ask,
            namespace=own.namespace,
            flow_id=own.flow_id,
        )
    except FlowplaneError as exc:
        raise TaskFailedError(str(exc)) from None
    return GitSyncResult(
        source_id=outcome.source_id,
        plan_id=outcome.plan_id,
        status=outcome.status,
        commit=outcome.commit,
        changes=tuple(outcome.changes),
        problems=tuple(outcome.problems),
        text=outcome.text,
    )
