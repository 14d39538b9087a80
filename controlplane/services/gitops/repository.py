"""The GitPython adapter: a cached bare clone per source, read at a commit's tree.

Git errors become ``SourceUnavailableError`` here and nowhere else. A local
directory (``flowplane server --watch``) is read into the same ``Snapshot``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import git

from controlplane.domain.plan import DesiredFile
from controlplane.errors import InvalidRequestError, NotFoundError, SourceUnavailableError


@dataclass(frozen=True)
class Commit:
    """The commit a snapshot was read from."""

    sha: str
    author: str
    author_email: str
    committer: str
    message: str


@dataclass(frozen=True)
class SecretFile:
    """An age-encrypted file under the secrets path; ``path`` is repo-relative."""

    path: str
    data: bytes


@dataclass(frozen=True)
class Snapshot:
    """The flow and secret files of one commit, or of a local directory (``commit`` None)."""

    commit: Commit | None
    files: tuple[DesiredFile, ...]
    undecodable: tuple[str, ...]
    secret_files: tuple[SecretFile, ...] = ()

    @property
    def content_sha256(self) -> str:
        """A digest of every file read: what a local plan records instead of a commit."""
        digest = hashlib.sha256()
        for file in sorted(self.files, key=lambda f: f.path):
            digest.update(f"{file.path}\0{len(file.source)}\0{file.source}".encode())
        for secret in sorted(self.secret_files, key=lambda f: f.path):
            digest.update(f"{secret.path}\0{len(secret.data)}\0".encode() + secret.data)
        for path in sorted(self.undecodable):
            digest.update(f"{path}\0".encode())
        return digest.hexdigest()


def read_snapshot(
    url: str,
    branch: str,
    cache_dir: Path,
    flows_path: str,
    secrets_path: str = "secrets/",
    *,
    at: str | None = None,
) -> Snapshot:
    """Fetch ``branch`` into the cache clone and read the flows and secrets of a commit.

    The commit is the branch's head, or ``at``, which must be in the branch's
    history (rollback). The tree of the commit is read, never a work tree, so
    local changes in a checkout cannot leak into a plan.
    """
    try:
        repo = _cached_clone(cache_dir)
        repo.git.fetch("--prune", "--force", url, f"+refs/heads/{branch}:refs/heads/{branch}")
        head = repo.commit(branch)
    except (git.GitCommandError, git.BadName, ValueError) as exc:
        raise SourceUnavailableError(
            f"cannot read branch {branch!r} of {url}: {_short(exc)}"
        ) from None
    if at is not None:
        head = _commit_in_history(repo, head, branch, at)
    files, undecodable = _read_flows(head.tree, flows_path)
    commit = Commit(
        sha=head.hexsha,
        author=str(head.author.name),
        author_email=str(head.author.email),
        committer=str(head.committer.name),
        message=str(head.message).strip(),
    )
    return Snapshot(
        commit, tuple(files), tuple(undecodable), _read_secrets(head.tree, secrets_path)
    )


def _commit_in_history(repo: git.Repo, head: git.Commit, branch: str, sha: str) -> git.Commit:
    try:
        found = repo.commit(sha)
    except (git.BadName, ValueError):
        raise NotFoundError(f"commit {sha} is not in branch {branch!r}") from None
    if not repo.is_ancestor(found, head):
        raise InvalidRequestError(f"commit {sha} is not in the history of branch {branch!r}")
    return found


def _subtree(tree: git.Tree, path: str) -> git.Tree | None:
    prefix = path.strip("/")
    try:
        found = tree / prefix if prefix else tree
    except KeyError:
        return None
    return found if isinstance(found, git.Tree) else None


def _read_flows(root: git.Tree, flows_path: str) -> tuple[list[DesiredFile], list[str]]:
    files: list[DesiredFile] = []
    undecodable: list[str] = []
    tree = _subtree(root, flows_path)
    for item in tree.traverse() if tree is not None else ():
        if not isinstance(item, git.Blob):
            continue
        try:
            files.append(DesiredFile(str(item.path), item.data_stream.read().decode("utf-8")))
        except UnicodeDecodeError:
            undecodable.append(str(item.path))
    return files, undecodable


def _read_secrets(root: git.Tree, secrets_path: str) -> tuple[SecretFile, ...]:
    tree = _subtree(root, secrets_path)
    return tuple(
        SecretFile(str(item.path), bytes(item.data_stream.read()))
        for item in (tree.traverse() if tree is not None else ())
        if isinstance(item, git.Blob) and str(item.path).endswith(".age")
    )


def read_directory(root: Path, flows_path: str, secrets_path: str) -> Snapshot:
    """The flows and secrets of a local working directory, read as a commit's tree would be."""
    files: list[DesiredFile] = []
    undecodable: list[str] = []
    flows = root / flows_path
    for path in sorted(flows.rglob("*")) if flows.is_dir() else ():
        if not path.is_file() or path.name.startswith("."):
            continue  # editors' swap and lock files come and go
        relative = path.relative_to(root).as_posix()
        try:
            files.append(DesiredFile(relative, path.read_bytes().decode("utf-8")))
        except UnicodeDecodeError:
            undecodable.append(relative)
        except FileNotFoundError:
            continue  # removed while we read: the next change event replans
    secrets = root / secrets_path
    secret_files = tuple(
        SecretFile(path.relative_to(root).as_posix(), path.read_bytes())
        for path in (sorted(secrets.rglob("*.age")) if secrets.is_dir() else ())
        if path.is_file()
    )
    return Snapshot(None, tuple(files), tuple(undecodable), secret_files)


def _cached_clone(cache_dir: Path) -> git.Repo:
    """A bare repository per source; fetches name the URL, so it may change."""
    if (cache_dir / "HEAD").exists():
        return git.Repo(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return git.Repo.init(cache_dir, bare=True)


def _short(exc: Exception) -> str:
    text = getattr(exc, "stderr", "") or str(exc)
    return " ".join(str(text).split())[:300]
