"""``io.flowplane.plugin.git.Trigger``: start a run when a branch's head moves.

Kestra has no Git polling trigger, so this one carries Flowplane's own name.
Every ``interval`` it asks the remote for the branch head (``git ls-remote``,
nothing is cloned); each head commit it has not fired for starts one run,
with ``trigger.commit`` (the sha) and ``trigger.branch``. The key is the sha,
so two servers polling at once, or a head moving back to a commit already
seen, start no second run. The first poll fires for the head it finds.
Several commits pushed between two polls fire once, for the newest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from controlplane.domain.polling import Fire, PollingTrigger, TriggerContext
from controlplane.plugins.api import TaskFailedError
from controlplane.plugins.git.transport import check_url, credentials_env, run_git

# A poll holds a thread of the server's polling pool: a hung remote is given up on.
POLL_TIMEOUT_SECONDS = 120


class Trigger(PollingTrigger):
    """Start a run for each new head commit of a Git branch."""

    TYPE: ClassVar[str] = "io.flowplane.plugin.git.Trigger"
    ALIASES: ClassVar[tuple[str, ...]] = ("git.Trigger",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "commit": "the sha of the branch's new head commit",
        "branch": "the branch watched (the remote's default branch when none is set)",
    }

    url: str
    branch: str | None = None
    username: str | None = None
    password: str | None = None

    def poll(self, context: TriggerContext) -> list[Fire] | None:
        """Read the branch head; fire once for a commit not fired before."""
        url = check_url(str(context.render(self.url)), forbidden=context.server_paths())
        branch = str(context.render(self.branch)) if self.branch is not None else None
        username = str(context.render(self.username)) if self.username is not None else None
        password = str(context.render(self.password)) if self.password is not None else None
        ref = f"refs/heads/{branch}" if branch is not None else "HEAD"
        args = ["ls-remote", "--symref", "--", url, ref]
        with credentials_env(username, password) as env:
            listing = run_git(
                args, env, secrets=[password] if password else [], timeout=POLL_TIMEOUT_SECONDS
            )
        sha, name = _head(listing, ref)
        if sha is None:
            raise TaskFailedError(f"the remote has no {ref}")
        context.log("DEBUG", f"{ref} is at {sha}")
        return [Fire(key=sha, variables={"commit": sha, "branch": branch or name})]


def _head(listing: str, ref: str) -> tuple[str | None, str | None]:
    """The sha ``ref`` points at, and the branch name HEAD points at (from ``--symref``)."""
    sha: str | None = None
    name: str | None = None
    for line in listing.splitlines():
        first, _, rest = line.partition("\t")
        if first.startswith("ref: ") and rest == "HEAD":
            name = first.removeprefix("ref: ").removeprefix("refs/heads/")
        elif rest == ref:
            sha = first.strip()
    return sha, name
