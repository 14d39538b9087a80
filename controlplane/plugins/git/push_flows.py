"""``io.kestra.plugin.git.PushFlows``: commit a namespace's live flows to a Git branch.

Each selected flow is written byte for byte, as it was last written, at
``<gitDirectory>/<namespace>/<id>.yaml``: the layout of Flowplane's flows
repository, so the commit comes back through the normal GitOps path (poll or
webhook, plan, review) like any other. Pushing activates nothing. Flow files
of the pushed namespaces that no live flow matches any more are removed, as
Kestra removes them. ``dryRun`` stages the same changes and reports the diff,
committing and pushing nothing; a push that changes nothing makes no commit.

The flows are read through the run context, so the source namespace (and
each child namespace, with ``includeChildNamespaces``) must let this flow in.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pydantic import model_validator

from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError, refuse
from controlplane.plugins.git.flow_files import (
    FLOW_SUFFIXES,
    IdGlobs,
    flow_path,
    git_directory,
    in_scope,
    moved,
    retarget,
)
from controlplane.plugins.git.options import (
    REFUSED,
    commit_url,
    connection_env,
    connection_settings,
    shown_url,
    url_secrets,
)
from controlplane.plugins.git.reports import store_records
from controlplane.plugins.git.transport import check_url, credentials_env, scrub
from controlplane.plugins.git.worktree import Worktree

# Whatever the worker's git configuration says: exact bytes, no hooks, no signing prompt.
_COMMIT_SETTINGS = [
    ("core.autocrlf", "false"),
    ("core.safecrlf", "false"),
    ("core.hooksPath", "/dev/null"),
    ("commit.gpgSign", "false"),
]
_DEFAULT_EMAIL = "flowplane@localhost"
# Set through GIT_AUTHOR_*/GIT_COMMITTER_*, which win over any configuration.
_IDENTITY_KEYS = {"user.name", "user.email", "author.name", "author.email"} | {
    "committer.name",
    "committer.email",
}


class PushFlows(TaskBase):
    """Commit and push a namespace's flows to a Git repository."""

    TYPE: ClassVar[str] = "io.kestra.plugin.git.PushFlows"
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "commitId": "the sha of the commit pushed (null on a dry run or when nothing changed)",
        "commitURL": "a web link to the commit (null for a local remote, a dry run, no change)",
        "flows": "a stored Ion file, one record per changed file: "
        "{file, additions: '+N', deletions: '-N', changes: 'N'}",
    }

    url: str
    branch: str = "main"
    username: str | None = None
    password: str | None = None
    gitDirectory: str = "flows"  # noqa: N815 - Kestra's field name
    sourceNamespace: str | None = None  # noqa: N815
    targetNamespace: str | None = None  # noqa: N815
    flows: str | list[str] | None = None
    includeChildNamespaces: bool = False  # noqa: N815
    commitMessage: str | None = None  # noqa: N815
    authorEmail: str | None = None  # noqa: N815
    authorName: str | None = None  # noqa: N815
    dryRun: bool = False  # noqa: N815
    gitConfig: dict[str, Any] | None = None  # noqa: N815
    trustedCaPemPath: str | None = None  # noqa: N815
    noProxy: bool = False  # noqa: N815

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        return refuse(values, REFUSED)

    def run(self, context: RunContext) -> dict[str, Any]:
        """Write the flows into a clone of the branch; commit and push unless ``dryRun``."""
        own = context.execution
        source_ns = self._text(context, self.sourceNamespace) or own.namespace
        target_ns = self._text(context, self.targetNamespace)
        directory = git_directory(str(context.render(self.gitDirectory)))
        sandbox = context.sandbox
        url = check_url(
            str(context.render(self.url)),
            forbidden=[sandbox.data_dir, sandbox.work_root_dir()],
        )
        branch = str(context.render(self.branch))
        password = self._text(context, self.password)
        secrets = [s for s in [password, *url_secrets(url)] if s]
        rendered = context.render(self.flows) if self.flows is not None else []
        wanted = IdGlobs([rendered] if isinstance(rendered, str) else [str(g) for g in rendered])
        files = self._files(context, source_ns, target_ns, directory, wanted)
        root_ns = moved(source_ns, source_ns, target_ns)
        username = self._text(context, self.username)
        ca = self._text(context, self.trustedCaPemPath)
        settings = [*_COMMIT_SETTINGS, *connection_settings(ca, self.noProxy)]
        where = scrub(shown_url(url), secrets)
        with (
            tempfile.TemporaryDirectory(prefix="pushflows-", dir=context.working_dir) as scratch,
            credentials_env(username, password) as credentials,
        ):
            env = {
                **credentials,
                **connection_env(settings, ca),
                **self._identity(context, username),
            }
            context.log("INFO", f"Cloning {where} (branch {branch})")
            tree = Worktree.clone(url, branch, Path(scratch) / "repo", env, secrets)
            self._apply_config(context, tree, settings)
            removed = self._remove_stale(tree, directory, root_ns, files, wanted)
            for path, content in sorted(files.items()):
                tree.write(path, content)
            diff = tree.stage(directory)
            uri = store_records(context, f"{self.id}.ion", (d.record() for d in diff))
            context.log(
                "INFO",
                f"{len(files)} flow(s) of {source_ns} written, {removed} stale file(s) removed: "
                f"{len(diff)} file(s) differ from branch {branch}",
            )
            if self.dryRun:
                context.log("INFO", f"Dry run: nothing is committed or pushed to {where}")
                return {"commitId": None, "commitURL": None, "flows": uri}
            if not diff:
                context.log("INFO", "No changes to commit. Skipping push.")
                return {"commitId": None, "commitURL": None, "flows": uri}
            message = self._text(context, self.commitMessage) or (
                f"Add flows from {source_ns} namespace"
            )
            sha = tree.commit(message)
            context.log("INFO", f"Pushing commit {sha} to {where} on branch {branch}")
            tree.push(branch)
        link = commit_url(shown_url(url), branch, sha)
        context.log("INFO", f"Pushed {link or sha}")
        return {"commitId": sha, "commitURL": link, "flows": uri}

    @staticmethod
    def _text(context: RunContext, value: str | None) -> str | None:
        return str(context.render(value)) if value is not None else None

    def _files(
        self,
        context: RunContext,
        source_ns: str,
        target_ns: str | None,
        directory: PurePosixPath,
        wanted: IdGlobs,
    ) -> dict[PurePosixPath, bytes]:
        """The selected live flows, moved to ``targetNamespace`` when set, by repository path."""
        found = context.namespace_flows(source_ns, include_children=self.includeChildNamespaces)
        files: dict[PurePosixPath, bytes] = {}
        for flow in found:
            if not wanted(flow.flow_id):
                continue
            namespace = moved(flow.namespace, source_ns, target_ns)
            text = retarget(flow.source, flow.namespace, namespace)
            files[flow_path(directory, namespace, flow.flow_id)] = text.encode("utf-8")
        return files

    def _remove_stale(
        self,
        tree: Worktree,
        directory: PurePosixPath,
        root_ns: str,
        files: Mapping[PurePosixPath, bytes],
        wanted: IdGlobs,
    ) -> int:
        """Delete flow files of the pushed namespaces that no selected live flow writes.

        Only ``<namespace>/<id>.yaml|.yml`` files whose id the ``flows`` globs
        select are candidates, as Kestra deletes only what its globs match.
        """
        base = tree.folder(directory)
        removed = 0
        for folder in sorted(base.iterdir()) if base is not None else ():
            scoped = in_scope(folder.name, root_ns, include_children=self.includeChildNamespaces)
            if not scoped or not folder.is_dir() or folder.is_symlink():
                continue
            for path in sorted(folder.iterdir()):
                relative = directory / folder.name / path.name
                stale = path.suffix in FLOW_SUFFIXES and relative not in files
                if stale and (path.is_file() or path.is_symlink()) and wanted(path.stem):
                    path.unlink()
                    removed += 1
        return removed

    def _identity(self, context: RunContext, username: str | None) -> dict[str, str]:
        """Author: ``authorName``/``authorEmail`` (else the username). Committer: the flow."""
        own = context.execution
        flow = f"flow:{own.namespace}/{own.flow_id}"
        email = self._text(context, self.authorEmail) or _DEFAULT_EMAIL
        return {
            "GIT_AUTHOR_NAME": self._text(context, self.authorName) or username or flow,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": flow,
            "GIT_COMMITTER_EMAIL": _DEFAULT_EMAIL,
        }

    def _apply_config(
        self, context: RunContext, tree: Worktree, settings: list[tuple[str, str]]
    ) -> None:
        """``gitConfig`` written into the clone's configuration after the clone, as Kestra does.

        A key the task sets itself (exact bytes, identity, trustedCaPemPath,
        noProxy) would be overridden, so it is refused rather than ignored.
        """
        if not self.gitConfig:
            return
        fixed = {_folded(key) for key, _ in settings} | _IDENTITY_KEYS
        for key, value in context.render(self.gitConfig).items():
            if "." not in str(key).strip("."):
                raise TaskFailedError(f"gitConfig: {key!r} is not section.name")
            if _folded(str(key)) in fixed:
                raise TaskFailedError(
                    f"gitConfig: {key} is set by PushFlows itself (the commit keeps each flow's "
                    "bytes and its author comes from authorName/authorEmail)"
                )
            shown = ("true" if value else "false") if isinstance(value, bool) else str(value)
            tree.git("config", "--local", str(key), shown)


def _folded(key: str) -> str:
    """A git key as git compares it: section and name case-insensitive, subsection as is."""
    section, _, rest = key.partition(".")
    middle, _, name = rest.rpartition(".")
    return ".".join(p for p in (section.lower(), middle, name.lower()) if p)
