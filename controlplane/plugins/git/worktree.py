"""A clone of one branch, to write files into, commit and push (git.PushFlows).

Every git command goes through ``transport.run_git``: credentials reach git
through askpass only, and failures are scrubbed of them. Files are written
without following links, so a repository cannot point a write outside its
clone. The staged diff is counted per edit as Kestra counts it (JGit's
``EditList``): a longer replacement adds lines, a shorter one deletes lines,
one of equal length changes them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from controlplane.plugins.api import TaskFailedError
from controlplane.plugins.git.transport import run_git

_HUNK = re.compile(r"^@@ -\d+(?:,(?P<a>\d+))? \+\d+(?:,(?P<b>\d+))? @@")
_DIFF = ["diff", "--cached", "--no-renames", "--no-color", "--no-ext-diff", "--no-textconv"]


@dataclass(frozen=True)
class FileDiff:
    """One file of the staged diff, as Kestra's diff output counts it."""

    file: str
    additions: int
    deletions: int
    changes: int

    def record(self) -> dict[str, str]:
        """The Ion record Kestra writes: ``{file, additions: "+N", deletions: "-N", changes}``."""
        return {
            "file": self.file,
            "additions": f"+{self.additions}",
            "deletions": f"-{self.deletions}",
            "changes": str(self.changes),
        }


class Worktree:
    """A checked-out clone on the branch to push."""

    def __init__(self, root: Path, env: Mapping[str, str], secrets: list[str]) -> None:
        """Wrap the clone at ``root``; ``env`` carries credentials and configuration."""
        self.root = root
        self.env = dict(env)
        self.secrets = secrets

    @classmethod
    def clone(
        cls, url: str, branch: str, root: Path, env: Mapping[str, str], secrets: list[str]
    ) -> Worktree:
        """Clone ``url`` into ``root`` and check out ``branch``, created when the remote lacks it.

        A new branch starts from the remote's default branch, or from nothing
        in an empty repository, as Kestra creates it.
        """
        run_git(["check-ref-format", "--branch", branch], env, secrets=secrets)
        options = ["--quiet", "--depth", "1", "--no-single-branch"]
        run_git(["clone", *options, "--", url, str(root)], env, secrets=secrets)
        tree = cls(root, env, secrets)
        remote = f"refs/remotes/origin/{branch}"
        if remote in tree.git("for-each-ref", "--format=%(refname)", remote).split():
            tree.git("checkout", "--quiet", "-B", branch, remote)
        else:
            tree.git("checkout", "--quiet", "-b", branch)
        return tree

    def git(self, *args: str) -> str:
        """Run git in the clone; its standard output."""
        return run_git(list(args), self.env, cwd=self.root, secrets=self.secrets)

    def folder(self, relative: PurePosixPath, *, create: bool = False) -> Path | None:
        """The folder at ``relative`` (made when ``create``), or None when it is missing.

        A link or a file on the way fails the task: the repository may not
        lead a write or a removal outside the clone.
        """
        path = self.root
        for part in relative.parts:
            path /= part
            if path.is_symlink() or (path.exists() and not path.is_dir()):
                raise TaskFailedError(f"{relative} in the repository is not a plain folder")
            if not path.exists():
                if not create:
                    return None
                path.mkdir()
        return path

    def write(self, relative: PurePosixPath, content: bytes) -> None:
        """Write ``content`` at ``relative``, never through a link."""
        folder = self.folder(relative.parent, create=True)
        assert folder is not None  # noqa: S101 - made above
        target = folder / relative.name
        if target.is_symlink():
            target.unlink()  # a link committed in the flow's place becomes the flow's file
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        descriptor = os.open(target, flags, 0o644)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)

    def stage(self, directory: PurePosixPath) -> list[FileDiff]:
        """Stage every change under ``directory`` (deletions too); the staged diff, by path."""
        self.git("add", "--all", "--", str(directory))
        names = [n for n in self.git(*_DIFF, "--name-only", "-z").split("\0") if n]
        patch = self.git(*_DIFF, "--unified=0")
        sections = [s for s in re.split(r"^diff --git ", patch, flags=re.MULTILINE) if s.strip()]
        if len(sections) != len(names):
            raise TaskFailedError("git diff listed the staged files inconsistently")
        return [_count(name, section) for name, section in zip(names, sections, strict=True)]

    def commit(self, message: str) -> str:
        """Commit what is staged; the new commit's sha."""
        self.git("commit", "--quiet", "--no-verify", f"--message={message}")
        return self.git("rev-parse", "HEAD").strip()

    def push(self, branch: str) -> None:
        """Push the checked-out commit to ``branch`` of the remote."""
        self.git("push", "--quiet", "--no-verify", "origin", f"HEAD:refs/heads/{branch}")


def _count(name: str, section: str) -> FileDiff:
    additions = deletions = changes = 0
    for line in section.splitlines():
        match = _HUNK.match(line)
        if match is None:
            continue
        before = int(match["a"]) if match["a"] is not None else 1
        after = int(match["b"]) if match["b"] is not None else 1
        if after > before:
            additions += after - before
        elif after < before:
            deletions += before - after
        else:
            changes += after
    return FileDiff(name, additions, deletions, changes)
