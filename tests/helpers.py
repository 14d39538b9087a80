"""Helpers shared by several test modules: real Git repositories and audit-chain tampering."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.store.audit import GENESIS, event_hash
from controlplane.store.tables import AuditEventRow

AUTHOR = "Dana Dev"


def git(repo: Path, *args: str, author: str = AUTHOR, committer: str | None = None) -> str:
    """Run ``git args`` in ``repo`` as ``author`` (and ``committer``, the author by default)."""
    committer = committer or author
    env = {
        "GIT_AUTHOR_NAME": author,
        "GIT_AUTHOR_EMAIL": f"{author.split(maxsplit=1)[0].lower()}@example.com",
        "GIT_COMMITTER_NAME": committer,
        "GIT_COMMITTER_EMAIL": f"{committer.split(maxsplit=1)[0].lower()}@example.com",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit(
    repo: Path,
    files: Mapping[str, str | None],
    message: str | None = None,
    author: str = AUTHOR,
    committer: str | None = None,
) -> str:
    """Write ``files`` (``None`` deletes one), commit them all and return the new SHA."""
    for name, content in files.items():
        path = repo / name
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    git(repo, "add", "-A")
    message = message or f"change by {author}"
    git(repo, "commit", "-qm", message, author=author, committer=committer)
    return git(repo, "rev-parse", "HEAD")


def init_repo(tmp_path: Path) -> Path:
    """An empty Git repository on branch ``main`` at ``tmp_path/flows-repo``."""
    path = tmp_path / "flows-repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


def rewrite_audit_chain(engine: Engine, edit: Callable[[int, AuditEventRow], None]) -> None:
    """Apply ``edit(index, row)`` to every audit event, then recompute every link and hash.

    The result is a chain whose links hold: only a signed checkpoint can tell it was rewritten.
    """
    with Session(engine) as session:
        prev = GENESIS
        rows = session.exec(select(AuditEventRow).order_by(col(AuditEventRow.pk))).all()
        for index, row in enumerate(rows):
            edit(index, row)
            row.prev_hash = prev
            row.hash = event_hash(
                prev,
                at=row.at.replace(tzinfo=None).isoformat(timespec="microseconds"),
                actor=row.actor,
                action=row.action,
                target=row.target,
                summary=row.summary,
                request_id=row.request_id,
            )
            prev = row.hash
            session.add(row)
        session.commit()
