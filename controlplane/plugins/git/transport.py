"""Running git for a task or a trigger: checked URLs, credentials through askpass, no leaks.

Credentials never go into the URL or the command line (``ps`` would show
them): git asks a small askpass script, which reads them from its
environment. The ``ext::`` transport (which runs commands) is refused, and
every error text is scrubbed of the password before it leaves.

git runs with an environment of its own, never the server's: no server
variables (tokens, the database URL), no global or system git configuration,
a private empty ``HOME``, no SSH agent and no SSH key or ssh configuration of
the server's user. Only the operator's proxy and CA settings pass through.
A local path or ``file://`` URL into the server's data directory or the
worker's working directories (other executions' files) is refused.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
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
# ssh with no configuration, key or agent of the server's user (ssh reads
# ~/.ssh from the password database, not $HOME, hence the explicit options).
GIT_SSH_COMMAND = (
    "ssh -F /dev/null -o IdentitiesOnly=yes -o IdentityFile=/dev/null -o IdentityAgent=none"
)
# The operator's network settings git needs to reach a remote at all.
_PASSED_THROUGH = (
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_SSL_CAPATH",
)


def check_url(url: str, *, forbidden: Path | Sequence[Path | None] | None = None) -> str:
    """``url`` if git may fetch from it; a ``TaskFailedError`` naming the problem otherwise.

    http(s), ssh, git, file URLs, ``user@host:path`` and local paths are
    accepted; ``ext::`` and other command transports are not. A local path
    inside one of ``forbidden`` (the server's data directory, the worker's
    working directories) is refused.
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
    roots: list[Path | None] = [forbidden] if isinstance(forbidden, Path) else [*(forbidden or [])]
    if local is not None:
        resolved = local.resolve()
        for root in filter(None, roots):
            if resolved.is_relative_to(root.resolve()):
                raise TaskFailedError(
                    "url points into the server's data directory or the worker's "
                    "working directories"
                )
    return text


def git_environment(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """Everything git runs with: of the server's environment, PATH and network settings only."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSH_COMMAND": GIT_SSH_COMMAND,
        "GCM_INTERACTIVE": "never",
    }
    env.update({name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ})
    env.update(extra)
    return env


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
    """Run ``git <args>``; its standard output. A failure's text is scrubbed of ``secrets``.

    git sees ``env`` on top of ``git_environment`` only: the server's own
    environment is not inherited (GitPython would merge it in, so git runs
    through ``subprocess`` here).
    """
    executable = shutil.which("git")
    if executable is None:
        raise TaskFailedError("git is not installed on the worker")
    # A working directory may belong to the sandbox user; git trusts this one clone.
    trust = ["-c", f"safe.directory={cwd}"] if cwd else []
    with tempfile.TemporaryDirectory(prefix="flowplane-git-home-") as home:
        process = subprocess.Popen(  # noqa: S603 - git, arguments checked by the callers
            [executable, *GIT_OPTIONS, *trust, *args],
            cwd=cwd,
            env=git_environment(Path(home), env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            # Its own process group: a timeout kills git's helpers (ssh, remote-https) too.
            start_new_session=True,
        )
        try:
            output, errors = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise TaskFailedError(f"git {args[0]} timed out after {timeout:g}s") from None
    if process.returncode != 0:
        detail = errors.strip() or f"exit code {process.returncode}"
        raise TaskFailedError(scrub(f"git {args[0]} failed: {detail}", secrets or []))
    # As GitPython did: without the final newline.
    return output.removesuffix("\n")


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by the mask."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
