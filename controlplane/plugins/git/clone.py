"""``io.kestra.plugin.git.Clone``: clone a repository into the task's working directory.

Inside a ``WorkingDirectory`` the next tasks see the clone, as in Kestra.
By default the clone is shallow (``depth: 1``); ``commit`` or ``tag`` fetch
the history they need and check that out (detached), as Kestra does.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.git.transport import check_url, credentials_env, run_git, scrub


def _refused(name: str, why: str) -> Any:
    def check(value: Any) -> Any:
        if value is not None:
            raise ValueError(f"{name} is not supported: {why}")
        return value

    return field_validator(name, mode="before")(check)


class Clone(TaskBase):
    """Clone a Git repository into the working directory."""

    TYPE: ClassVar[str] = "io.kestra.plugin.git.Clone"
    OUTPUTS: ClassVar[Mapping[str, str]] = {"directory": "the path the repository was cloned to"}

    url: str
    branch: str | None = None
    depth: int = Field(default=1, ge=1)
    directory: str | None = None
    username: str | None = None
    password: str | None = None
    commit: str | None = None
    tag: str | None = None
    cloneAllBranches: bool = True  # noqa: N815 - Kestra's field name
    noTags: bool = False  # noqa: N815
    cloneSubmodules: bool = False  # noqa: N815
    gitConfig: dict[str, Any] | None = None  # noqa: N815
    trustedCaPemPath: str | None = None  # noqa: N815
    noProxy: bool = False  # noqa: N815
    privateKey: str | None = None  # noqa: N815
    passphrase: str | None = None
    connectTimeout: int | None = None  # noqa: N815
    readTimeout: int | None = None  # noqa: N815
    cache: bool | None = None
    cacheTtl: str | None = None  # noqa: N815
    kestraUrl: str | None = None  # noqa: N815
    auth: dict[str, Any] | None = None

    _no_private_key = _refused(
        "privateKey", "clone over https with username and password (a token) instead of SSH keys"
    )
    _no_passphrase = _refused("passphrase", "SSH keys are not supported; use https")
    _no_connect_timeout = _refused(
        "connectTimeout", "git has no connect timeout; bound the task with its timeout"
    )
    _no_read_timeout = _refused(
        "readTimeout", "git has no read timeout; bound the task with its timeout"
    )
    _no_cache = _refused("cache", "every run clones afresh")
    _no_cache_ttl = _refused("cacheTtl", "every run clones afresh")
    _no_kestra_url = _refused("kestraUrl", "Clone talks to the Git server only")
    _no_auth = _refused("auth", "Clone talks to the Git server only")

    def run(self, context: RunContext) -> dict[str, Any]:
        """Clone, check out ``commit`` or ``tag`` if given, apply ``gitConfig``."""
        sandbox = context.sandbox
        url = check_url(
            str(context.render(self.url)),
            forbidden=[sandbox.data_dir, sandbox.work_root_dir()],
        )
        target = self._target(context)
        username = str(context.render(self.username)) if self.username is not None else None
        password = str(context.render(self.password)) if self.password is not None else None
        secrets = [password] if password else []
        commit = str(context.render(self.commit)) if self.commit is not None else None
        tag = str(context.render(self.tag)) if self.tag is not None else None
        args = ["clone", *self._options(context, commit, tag), "--", url, str(target)]
        context.log("INFO", f"Cloning {scrub(url, secrets)} into {target}")
        with credentials_env(username, password) as base_env:
            env = dict(base_env)
            if self.trustedCaPemPath is not None:
                # git prefers GIT_SSL_CAINFO (a worker may set it) over http.sslCAInfo.
                env["GIT_SSL_CAINFO"] = str(context.render(self.trustedCaPemPath))
            run_git(args, env, secrets=secrets)
            if commit is not None or tag is not None:
                ref = (
                    f"{commit}^{{commit}}" if commit is not None else f"refs/tags/{tag}^{{commit}}"
                )
                sha = run_git(["rev-parse", "--verify", ref], env, cwd=target, secrets=secrets)
                run_git(["checkout", "--quiet", "--detach", sha.strip()], env, cwd=target)
                context.log("INFO", f"Checked out {commit or tag} at {sha.strip()}")
        self._apply_config(context, target)
        return {"directory": str(target)}

    def _target(self, context: RunContext) -> Path:
        root = context.working_dir.resolve()
        target = root
        if self.directory is not None:
            target = (root / str(context.render(self.directory))).resolve()
            if not target.is_relative_to(root):
                raise TaskFailedError("directory must stay inside the working directory")
        if target.exists() and any(target.iterdir()):
            raise TaskFailedError(
                f"{target} is not empty; set directory to clone into a new sub-directory"
            )
        return target

    def _options(self, context: RunContext, commit: str | None, tag: str | None) -> list[str]:
        options = ["--quiet"]
        if commit is None and tag is None:
            # Kestra's default shallow clone; commit and tag need the history,
            # and make branch moot.
            options += ["--depth", str(self.depth)]
            if self.branch is not None:
                options += ["--branch", str(context.render(self.branch))]
        options.append("--no-single-branch" if self.cloneAllBranches else "--single-branch")
        if self.noTags:
            options.append("--no-tags")
        if self.cloneSubmodules:
            options.append("--recurse-submodules")
        if self.trustedCaPemPath is not None:
            options += ["--config", f"http.sslCAInfo={context.render(self.trustedCaPemPath)}"]
        if self.noProxy:
            options += ["--config", "http.proxy="]
        return options

    def _apply_config(self, context: RunContext, target: Path) -> None:
        """``gitConfig`` written into the clone's config, after the clone as Kestra does."""
        if not self.gitConfig:
            return
        import git  # noqa: PLC0415 - GitPython, loaded when the task runs

        settings = context.render(self.gitConfig)
        with git.Repo(target).config_writer() as writer:
            for key, value in settings.items():
                section, _, name = str(key).rpartition(".")
                if not section:
                    raise TaskFailedError(f"gitConfig: {key!r} is not section.name")
                head, _, sub = section.partition(".")
                writer.set_value(f'{head} "{sub}"' if sub else head, name, _config_value(value))


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
