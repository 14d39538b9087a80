"""Running git for a task or a trigger: checked URLs, credentials through askpass, no leaks.

Credentials never go into the URL or the command line (``ps`` would show
them): git asks a small askpass script, which reads them from its
environment. The ``ext::`` transport (which runs commands) is refused, and
every error text is scrubbed of the password before it leaves.
"""

from __future__ import annotations

import re
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from controlplane.plugins.api import TaskFailedError

MASK = "******"
# A hung remote fails the task or the poll instead of holding it forever.
GIT_TIMEOUT_SECONDS = 600
_SCHEMES = re.compile(r"^(https?|ssh|git|file)://", re.IGNORECASE)
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:")
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "$FLOWPLANE_GIT_USERNAME" ;;
  *) printf '%s\\n' "$FLOWPLANE_GIT_PASSWORD" ;;
esac
"""
# Safe defaults whatever the server's git configuration says.
GIT_OPTIONS = ["-c", "protocol.ext.allow=never", "-c", "credential.helper="]


def check_url(url: str, *, forbidden: Path | None = None) -> str:
    """``url`` if git may fetch from it; a ``TaskFailedError`` naming the problem otherwise.

    http(s), ssh, git, file URLs, ``user@host:path`` and local paths are
    accepted; ``ext::`` and other command transports are not. A local path
    inside ``forbidden`` (the server's data directory) is refused.
    """
    text = url.strip()
    if not text or text.startswith("-"):
        raise TaskFailedError(f"url {url!r} is not a Git repository URL")
    if "::" in text.split("/", 1)[0]:
        raise TaskFailedError("url: git's transport helpers (such as ext::) are not allowed")
    local: Path | None = None
    if text.lower().startswith("file://"):
        local = Path(text[len("file://") :])
    elif not _SCHEMES.match(text) and not _SCP_LIKE.match(text):
        if "://" in text:
            raise TaskFailedError("url: only https, http, ssh, git and file URLs are supported")
        local = Path(text)
    if local is not None and forbidden is not None:
        resolved = local.resolve()
        if resolved == forbidden.resolve() or resolved.is_relative_to(forbidden.resolve()):
            raise TaskFailedError("url points into the server's data directory")
    return text


@contextmanager
def credentials_env(username: str | None, password: str | None) -> Iterator[dict[str, str]]:
    """The environment git runs with: no prompts, and the credentials through askpass."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GCM_INTERACTIVE": "never"}
    if username is None and password is None:
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="flowplane-git-") as private:
        script = Path(private) / "askpass.sh"
        script.write_text(_ASKPASS, encoding="utf-8")
        script.chmod(stat.S_IRWXU)
        env.update(
            {
                "GIT_ASKPASS": str(script),
                "SSH_ASKPASS": str(script),
                "FLOWPLANE_GIT_USERNAME": username or "",
                "FLOWPLANE_GIT_PASSWORD": password or "",
            }
        )
        yield env


def run_git(
    args: list[str],
    env: Mapping[str, str],
    *,
    cwd: Path | None = None,
    secrets: list[str] | None = None,
    timeout: float = GIT_TIMEOUT_SECONDS,
) -> str:
    """Run ``git <args>``; its standard output. A failure's text is scrubbed of ``secrets``."""
    import git  # noqa: PLC0415 - GitPython, loaded when a git task or poll runs

    command = git.cmd.Git(str(cwd) if cwd else None)
    # A working directory may belong to the sandbox user; git trusts this one clone.
    trust = ["-c", f"safe.directory={cwd}"] if cwd else []
    try:
        output = command.execute(
            ["git", *GIT_OPTIONS, *trust, *args],
            env=dict(env),
            kill_after_timeout=timeout,
            stdout_as_string=True,
        )
    except git.GitCommandError as exc:
        detail = exc.stderr.strip() if isinstance(exc.stderr, str) else str(exc)
        detail = detail.removeprefix("stderr: ").strip("'\n ")
        raise TaskFailedError(
            scrub(f"git {args[0]} failed: {detail or exc.status}", secrets or [])
        ) from None
    return str(output)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by the mask."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
