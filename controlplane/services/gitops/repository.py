"""The GitPython adapter: a cached bare clone per source, read at a commit's tree.

Git errors become ``SourceUnavailableError`` here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from controlplane.domain.plan import DesiredFile
from controlplane.errors import SourceUnavailableError


@dataclass(frozen=True)
class Commit:
    """The commit a snapshot was read from."""

    sha: str
    author: str
    author_email: str
    committer: str
    message: str


@dataclass(frozen=True)
class Snapshot:
    """The flow files of one commit."""

    commit: Commit
    files: tuple[DesiredFile, ...]
    undecodable: tuple[str, ...]


def read_snapshot(url: str, branch: str, cache_dir: Path, flows_path: str) -> Snapshot:
    """Fetch ``branch`` into the cache clone and read the flows under ``flows_path``.

    The tree of the fetched commit is read, never a work tree, so local
    changes in a checkout cannot leak into a plan.
    """
    try:
        repo = _cached_clone(cache_dir)
        repo.git.fetch("--prune", "--force", url, f"+refs/heads/{branch}:refs/heads/{branch}")
        head = repo.commit(branch)
    except (git.GitCommandError, git.BadName, ValueError) as exc:
        raise SourceUnavailableError(
            f"cannot read branch {branch!r} of {url}: {_short(exc)}"
        ) from None
    files: list[DesiredFile] = []
    undecodable: list[str] = []
    prefix = flows_path.strip("/")
    try:
        tree = head.tree / prefix if prefix else head.tree
    except KeyError:
        tree = None
    for item in tree.traverse() if tree is not None else ():
        if not isinstance(item, git.Blob):
            continue
        try:
            files.append(DesiredFile(str(item.path), item.data_stream.read().decode("utf-8")))
        except UnicodeDecodeError:
            undecodable.append(str(item.path))
    commit = Commit(
        sha=head.hexsha,
        author=str(head.author.name),
        author_email=str(head.author.email),
        committer=str(head.committer.name),
        message=str(head.message).strip(),
    )
    return Snapshot(commit, tuple(files), tuple(undecodable))


def _cached_clone(cache_dir: Path) -> git.Repo:
    """A bare repository per source; fetches name the URL, so it may change."""
    if (cache_dir / "HEAD").exists():
        return git.Repo(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return git.Repo.init(cache_dir, bare=True)


def _short(exc: Exception) -> str:
    text = getattr(exc, "stderr", "") or str(exc)
    return " ".join(str(text).split())[:300]
