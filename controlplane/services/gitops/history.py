"""Who wrote a plan's commits: the authors and committers of every commit in a range.

Four-eyes review must exclude everyone whose work a plan activates, not only
the head commit's author: a commit hidden under someone else's head is still
theirs. This reads the cached clone that ``repository.read_snapshot`` just
fetched; Git errors become ``SourceUnavailableError`` here, as they do there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import git

from controlplane.errors import SourceUnavailableError

# A first sync of a long history reads every commit once; past this many the
# plan is refused rather than reviewed against a partial list.
MAX_COMMITS = 50_000
_FORMAT = "%H%x00%an%x00%ae%x00%cn%x00%ce"


@dataclass(frozen=True)
class CommitIdentity:
    """The author and committer of one commit, as Git records them."""

    sha: str
    author: str
    author_email: str
    committer: str
    committer_email: str

    def to_dict(self) -> dict[str, str]:
        """The stored form (a plan's ``commit_identities``)."""
        return asdict(self)


def commit_identities(cache_dir: Path, base: str | None, target: str) -> list[CommitIdentity]:
    """Every commit ``target`` brings that ``base`` does not have, ``target`` itself included.

    ``base`` None (a first sync) means the whole history of ``target``. A
    ``base`` that is not an ancestor (a rollback, a force-push) still gives the
    commits only ``target`` has; ``target`` is always in the list.
    """
    try:
        repo = git.Repo(cache_dir)
        spec = target if base is None else f"{base}..{target}"
        if base is not None and not _known(repo, base):
            spec = target  # the base is gone (force-push): count every commit of target
        out = repo.git.log(f"--format={_FORMAT}", f"--max-count={MAX_COMMITS + 1}", spec, "--")
        head = repo.git.log(f"--format={_FORMAT}", "-1", target, "--")
    except (git.GitCommandError, git.NoSuchPathError, git.InvalidGitRepositoryError) as exc:
        raise SourceUnavailableError(f"cannot read the commits of {target[:12]}: {exc}") from None
    lines = [line for line in out.splitlines() if line]
    if len(lines) > MAX_COMMITS:
        raise SourceUnavailableError(
            f"{target[:12]} brings more than {MAX_COMMITS} commits; review cannot check them all"
        )
    found = [_parse(line) for line in lines]
    if not any(item.sha == target for item in found):
        found.insert(0, _parse(head))
    return found


def _known(repo: git.Repo, sha: str) -> bool:
    try:
        repo.commit(sha)
    except (git.BadName, ValueError):
        return False
    return True


def _parse(line: str) -> CommitIdentity:
    sha, author, author_email, committer, committer_email = line.split("\0")
    return CommitIdentity(sha, author, author_email, committer, committer_email)
