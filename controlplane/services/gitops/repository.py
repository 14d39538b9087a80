"""The GitPython adapter: a cached bare clone per source, read at a commit's tree.

Git errors become ``SourceUnavailableError`` here and nowhere else. A local
directory (``flowplane server --watch``) is read into the same ``Snapshot``.

A file is held to the API's body limit (``max_body_bytes``): one larger is not
read at all (its size is known from the tree or the file system) and becomes a
problem that names it, so a Git push cannot store what a PUT would refuse.

A commit's tree is listed with each blob's id, and a blob whose content the
caller already holds (``known_sources``: the live flows' sources, whose Git
blob ids are computed from their bytes) is not read again: after a commit
that changes 100 of 10,000 flows, only those 100 blobs are read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import git

from controlplane.domain.plan import DesiredFile
from controlplane.errors import (
    InvalidRequestError,
    NotFoundError,
    Problem,
    SourceUnavailableError,
)
from controlplane.settings import Settings

# The API's body limit unless the caller passes the configured one.
DEFAULT_MAX_FILE_BYTES: int = Settings.model_fields["max_body_bytes"].default


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
    # Files left unread, each with why (too large): a plan with any activates nothing.
    problems: tuple[Problem, ...] = ()
    # Flow files whose content came from ``known_sources`` instead of a blob read.
    reused: int = 0

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
        for problem in self.problems:
            digest.update(f"{problem.render()}\0".encode())
        return digest.hexdigest()


def _too_large(path: str, size: int, limit: int) -> Problem:
    return Problem(
        f"file is {size} bytes, larger than the {limit}-byte limit (max_body_bytes); "
        "it was not read",
        file=path,
    )


def read_snapshot(
    url: str,
    branch: str,
    cache_dir: Path,
    flows_path: str,
    secrets_path: str = "secrets/",
    *,
    at: str | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    known_sources: Iterable[str] = (),
) -> Snapshot:
    """Fetch ``branch`` into the cache clone and read the flows and secrets of a commit.

    The commit is the branch's head, or ``at``, which must be in the branch's
    history (rollback). The tree of the commit is read, never a work tree, so
    local changes in a checkout cannot leak into a plan. A file larger than
    ``max_file_bytes`` is left unread and reported in ``problems``. A flow
    file whose blob id is that of one of ``known_sources`` takes that text
    without reading the blob (a blob id names its bytes, whatever the history).
    Secret files are always read.
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
    reader = _TreeReader(repo, head, max_file_bytes)
    try:
        files, undecodable = reader.read_flows(flows_path, known_sources)
        secret_files = reader.read_secrets(secrets_path)
    except (git.GitCommandError, ValueError) as exc:
        raise SourceUnavailableError(
            f"cannot read commit {head.hexsha} of {url}: {_short(exc)}"
        ) from None
    commit = Commit(
        sha=head.hexsha,
        author=str(head.author.name),
        author_email=str(head.author.email),
        committer=str(head.committer.name),
        message=str(head.message).strip(),
    )
    return Snapshot(
        commit,
        tuple(files),
        tuple(undecodable),
        secret_files,
        tuple(reader.problems),
        reused=reader.reused,
    )


def _commit_in_history(repo: git.Repo, head: git.Commit, branch: str, sha: str) -> git.Commit:
    try:
        found = repo.commit(sha)
    except (git.BadName, ValueError):
        raise NotFoundError(f"commit {sha} is not in branch {branch!r}") from None
    if not repo.is_ancestor(found, head):
        raise InvalidRequestError(f"commit {sha} is not in the history of branch {branch!r}")
    return found


def blob_id(data: bytes, commit_sha: str) -> str:
    """The Git object id of a blob of ``data``, in the hash of ``commit_sha``'s repository."""
    # A SHA-256 repository's ids are 64 hex digits; SHA-1's are 40.
    algorithm = "sha256" if len(commit_sha) == 64 else "sha1"  # noqa: PLR2004
    digest = hashlib.new(algorithm, usedforsecurity=False)
    digest.update(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Entry:
    """A blob of a commit's tree, as ``git ls-tree -l`` lists it."""

    path: str
    sha: str
    size: int


class _TreeReader:
    """Reads the blobs of a commit's tree, leaving any over the size limit unread."""

    def __init__(self, repo: git.Repo, commit: git.Commit, max_file_bytes: int) -> None:
        self.repo = repo
        self.commit = commit
        self.max_file_bytes = max_file_bytes
        self.problems: list[Problem] = []
        self.reused = 0

    def entries(self, path: str) -> list[_Entry]:
        """The blobs under ``path`` that fit the limit; the others become problems.

        One ``git ls-tree`` lists ids and sizes without reading any blob, so a
        huge blob is refused before it is read and a known one is never read.
        """
        prefix = path.strip("/")
        command = ["git", "--literal-pathspecs", "ls-tree", "-r", "-l", "-z", self.commit.hexsha]
        if prefix:
            command += ["--", f"{prefix}/"]
        listing = str(self.repo.git.execute(command, strip_newline_in_stdout=False))
        entries: list[_Entry] = []
        for line in listing.split("\0"):
            if not line:
                continue
            meta, _, name = line.partition("\t")
            _, kind, sha, size = meta.split()
            if kind != "blob" or (prefix and not name.startswith(f"{prefix}/")):
                continue  # submodules (commits) hold no file of ours
            if int(size) > self.max_file_bytes:
                self.problems.append(_too_large(name, int(size), self.max_file_bytes))
                continue
            entries.append(_Entry(name, sha, int(size)))
        return entries

    def read(self, entry: _Entry) -> bytes:
        """The bytes of one blob (through the clone's long-lived ``git cat-file``)."""
        return bytes(self.repo.odb.stream(bytes.fromhex(entry.sha)).read())

    def read_flows(
        self, flows_path: str, known_sources: Iterable[str]
    ) -> tuple[list[DesiredFile], list[str]]:
        """The flow files, and the paths of those that are not UTF-8."""
        entries = self.entries(flows_path)
        known: dict[str, str] = {}
        if entries:
            for source in known_sources:
                known.setdefault(blob_id(source.encode("utf-8"), self.commit.hexsha), source)
        files: list[DesiredFile] = []
        undecodable: list[str] = []
        for entry in entries:
            text = known.get(entry.sha)
            if text is not None:
                self.reused += 1
                files.append(DesiredFile(entry.path, text))
                continue
            try:
                files.append(DesiredFile(entry.path, self.read(entry).decode("utf-8")))
            except UnicodeDecodeError:
                undecodable.append(entry.path)
        return files, undecodable

    def read_secrets(self, secrets_path: str) -> tuple[SecretFile, ...]:
        """The ``.age`` files under the secrets path."""
        return tuple(
            SecretFile(entry.path, self.read(entry))
            for entry in self.entries(secrets_path)
            if entry.path.endswith(".age")
        )


def read_directory(
    root: Path,
    flows_path: str,
    secrets_path: str,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> Snapshot:
    """The flows and secrets of a local working directory, read as a commit's tree would be."""
    files: list[DesiredFile] = []
    undecodable: list[str] = []
    problems: list[Problem] = []
    flows = root / flows_path
    for path in sorted(flows.rglob("*")) if flows.is_dir() else ():
        if not path.is_file() or path.name.startswith("."):
            continue  # editors' swap and lock files come and go
        relative = path.relative_to(root).as_posix()
        try:
            size = path.stat().st_size
            if size > max_file_bytes:
                problems.append(_too_large(relative, size, max_file_bytes))
                continue
            files.append(DesiredFile(relative, path.read_bytes().decode("utf-8")))
        except UnicodeDecodeError:
            undecodable.append(relative)
        except FileNotFoundError:
            continue  # removed while we read: the next change event replans
    secret_files: list[SecretFile] = []
    secrets = root / secrets_path
    for path in sorted(secrets.rglob("*.age")) if secrets.is_dir() else ():
        if not path.is_file():
            continue
        relative = path.relative_to(root).as_posix()
        size = path.stat().st_size
        if size > max_file_bytes:
            problems.append(_too_large(relative, size, max_file_bytes))
            continue
        secret_files.append(SecretFile(relative, path.read_bytes()))
    return Snapshot(None, tuple(files), tuple(undecodable), tuple(secret_files), tuple(problems))


def _cached_clone(cache_dir: Path) -> git.Repo:
    """A bare repository per source; fetches name the URL, so it may change."""
    if (cache_dir / "HEAD").exists():
        return git.Repo(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return git.Repo.init(cache_dir, bare=True)


def _short(exc: Exception) -> str:
    text = getattr(exc, "stderr", "") or str(exc)
    return " ".join(str(text).split())[:300]
