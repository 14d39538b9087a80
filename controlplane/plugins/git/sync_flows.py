"""``io.kestra.plugin.git.SyncFlows``: sync a Git source's flows, through a plan.

In Kestra this task writes the flows of a Git directory into a namespace.
Flowplane activates nothing without a plan, so the task syncs the Git source
an admin registered for the same repository, branch and (when given)
directory, as the poller or a webhook would: the plan is applied at once
under the source's ``auto`` policy, or waits for its reviewers under
``approval`` (the flow is never one of them). ``delete`` must agree with the
source's ``prune``; ``dryRun`` plans the branch head and stores nothing.

Every namespace the source serves and the plan touches must be
``targetNamespace`` (or under it, with ``includeChildNamespaces``) and let
this flow in (``allowedNamespaces``); otherwise nothing is stored. The task
first reads the branch head with its own credentials, so a flow syncs only a
repository it can read itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import model_validator

from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import GitSyncRequest, GitSyncResult, RunContext, TaskFailedError
from controlplane.plugins.api import refuse as refuse_properties
from controlplane.plugins.git.options import (
    REFUSED,
    connection_env,
    connection_settings,
    shown_url,
    url_secrets,
)
from controlplane.plugins.git.reports import store_records
from controlplane.plugins.git.transport import check_url, credentials_env, run_git, scrub

# Reading a branch head holds a worker thread: a hung remote is given up on.
_LS_REMOTE_TIMEOUT_SECONDS = 120
# Kestra's SyncState of each plan action; an orphan (not deleted, prune off) is not listed,
# as Kestra lists nothing for a flow missing from Git when delete is false.
_SYNC_STATES = {
    "add": "ADDED",
    "change": "UPDATED",
    "take_over": "OVERWRITTEN",
    "remove": "DELETED",
    "unchanged": "UNCHANGED",
}
_REFUSED = {
    **REFUSED,
    "gitConfig": "SyncFlows clones nothing; the Git source is fetched by the server",
}


class SyncFlows(TaskBase):
    """Sync a registered Git source's flows into a namespace, through its plan and review."""

    TYPE: ClassVar[str] = "io.kestra.plugin.git.SyncFlows"
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "flows": "a stored Ion file, one record per flow of the plan: "
        "{gitPath, syncState, flowId, namespace, revision}",
        "planId": "the plan synced (null on a dry run)",
        "planStatus": "applied, pending (waiting for reviewers), no_changes, or another plan "
        "status; on a dry run the status the plan would be created with",
        "sourceId": "the Git source synced",
        "commitId": "the commit the plan is for",
    }

    url: str
    branch: str = "main"
    username: str | None = None
    password: str | None = None
    targetNamespace: str  # noqa: N815 - Kestra's field name
    gitDirectory: str | None = None  # noqa: N815
    includeChildNamespaces: bool = False  # noqa: N815
    delete: bool = False
    dryRun: bool = False  # noqa: N815
    ignoreInvalidFlows: bool = False  # noqa: N815
    cloneSubmodules: bool = False  # noqa: N815
    trustedCaPemPath: str | None = None  # noqa: N815
    noProxy: bool = False  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        values = refuse_properties(values, _REFUSED)
        if isinstance(values, dict):
            if values.get("ignoreInvalidFlows") is True:
                raise ValueError(
                    "ignoreInvalidFlows: true is not supported: a plan with an invalid flow "
                    "activates nothing; fix the file instead"
                )
            if values.get("cloneSubmodules") is True:
                raise ValueError(
                    "cloneSubmodules: true is not supported: a Git source reads its own tree only"
                )
        return values

    def run(self, context: RunContext) -> dict[str, Any]:
        """Read the branch head, then sync the matching Git source and report its plan."""
        sandbox = context.sandbox
        url = check_url(
            str(context.render(self.url)),
            forbidden=[sandbox.data_dir, sandbox.work_root_dir()],
        )
        branch = str(context.render(self.branch))
        head = self._head(context, url, branch)
        request = GitSyncRequest(
            url=url,
            branch=branch,
            directory=str(context.render(self.gitDirectory)) if self.gitDirectory else None,
            namespace=str(context.render(self.targetNamespace)),
            include_children=self.includeChildNamespaces,
            delete=self.delete,
            dry_run=self.dryRun,
        )
        result = context.sync_git_source(request)
        self._report(context, result, head)
        if result.status == "failed":
            plan = f"plan {result.plan_id}" if result.plan_id else "the plan"
            raise TaskFailedError(
                f"{plan} of Git source {result.source_id} failed: " + "; ".join(result.problems)
            )
        records = sorted(
            (r for r in map(_record, result.changes) if r is not None),
            key=lambda r: (r.get("gitPath") is not None, r.get("gitPath") or ""),
        )
        return {
            "flows": store_records(context, f"{self.id}.ion", records),
            "planId": result.plan_id,
            "planStatus": result.status,
            "sourceId": result.source_id,
            "commitId": result.commit,
        }

    def _head(self, context: RunContext, url: str, branch: str) -> str:
        """The branch head as this task's credentials read it (``git ls-remote``)."""
        username = str(context.render(self.username)) if self.username is not None else None
        password = str(context.render(self.password)) if self.password is not None else None
        secrets = [s for s in [password, *url_secrets(url)] if s]
        ca = str(context.render(self.trustedCaPemPath)) if self.trustedCaPemPath else None
        ref = f"refs/heads/{branch}"
        with credentials_env(username, password) as credentials:
            env = {**credentials, **connection_env(connection_settings(ca, self.noProxy), ca)}
            listing = run_git(
                ["ls-remote", "--", url, ref],
                env,
                secrets=secrets,
                timeout=_LS_REMOTE_TIMEOUT_SECONDS,
            )
        for line in listing.splitlines():
            sha, _, name = line.partition("\t")
            if name == ref:
                context.log("INFO", f"{scrub(shown_url(url), secrets)} {ref} is at {sha}")
                return sha.strip()
        raise TaskFailedError(f"the remote has no branch {branch!r}")

    def _report(self, context: RunContext, result: GitSyncResult, head: str) -> None:
        kind = "Dry run of Git source" if result.plan_id is None else "Git source"
        plan = f" plan {result.plan_id}" if result.plan_id else ""
        context.log(
            "INFO",
            f"{kind} {result.source_id}:{plan} for commit {result.commit} is {result.status}",
        )
        if result.commit is not None and result.commit != head:
            context.log("INFO", f"the branch moved from {head} to {result.commit} meanwhile")
        for line in result.text.splitlines():
            context.log("INFO", line)


def _record(change: Mapping[str, Any]) -> dict[str, Any] | None:
    """Kestra's SyncResult of one flow change, or None for one Kestra would not list."""
    state = _SYNC_STATES.get(str(change.get("action")))
    if state is None:
        return None
    revision = change.get("to_revision") or change.get("from_revision")
    record: dict[str, Any] = {
        "syncState": state,
        "flowId": change.get("flow_id"),
        "namespace": change.get("namespace"),
        "revision": revision,
    }
    if state != "DELETED":
        record = {"gitPath": change.get("path"), **record}
    return record
