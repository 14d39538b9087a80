"""Python ``dependencies``: one virtual environment per requirement set, built by uv, cached.

Kestra's Python script tasks take ``dependencies: [requests, pandas==2.2]`` and
install them with uv on the worker, caching them across executions and flows.
Here the worker builds a virtual environment of its own interpreter under
``FLOWPLANE_DEPENDENCY_CACHE_DIR``, named by the sha256 of the normalised,
sorted requirements and the interpreter's version, so the same set is
installed once and every later run (of any flow) reuses it. A file lock per
environment makes concurrent runs wait for one build instead of racing.

The build runs as the server, outside the script sandbox (it needs the network
and the cache); the script then runs inside the sandbox with the environment
bound read-only. Because the build is not sandboxed, it installs wheels only
(``--only-binary :all:``: building a source distribution would run its code as
the server) and takes plain requirements only: no direct URLs, local paths or
pip options.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from controlplane.errors import FlowplaneError
from controlplane.runners.process import run_process
from controlplane.settings import Settings

# Written last: an environment without it is a build that did not finish.
COMPLETE = ".flowplane-complete"
_EXTRA = "scripts"
_LOCK_POLL_SECONDS = 0.1
# The last lines of uv's output that a failure message carries.
_ERROR_LINES = 12
_ERROR_CHARS = 2000
# What uv may see of the worker's environment: proxies, certificates and its own settings.
_PASSED_ENV = {
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
}
# PEP 508 without direct references: a name, extras, version specifiers, a marker.
_REQUIREMENT = re.compile(
    r"""^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*
    (?:\[(?P<extras>[A-Za-z0-9._,\s-]*)\])?\s*
    (?P<specs>(?:(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+\s*,?\s*)*)
    (?:;\s*(?P<marker>[^@;]+))?$""",
    re.VERBOSE,
)
_SPECIFIER = re.compile(r"(===|~=|==|!=|<=|>=|<|>)\s*([A-Za-z0-9.*+!_-]+)")


class DependencyError(FlowplaneError):
    """The dependencies of a script could not be installed."""


@dataclass(frozen=True)
class PackageSettings:
    """Where environments are cached, and where uv installs packages from."""

    cache_dir: Path | None = None
    index_url: str | None = None
    install_args: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> PackageSettings:
        """The ``FLOWPLANE_DEPENDENCY_CACHE_DIR`` and ``FLOWPLANE_PACKAGE_*`` settings."""
        return cls(
            cache_dir=settings.dependency_cache_dir,
            index_url=settings.package_index_url,
            install_args=tuple(settings.package_install_args),
        )

    def root(self) -> Path:
        """The cache directory (default: ``<tmp>/flowplane-python-envs``)."""
        return self.cache_dir or Path(tempfile.gettempdir()) / "flowplane-python-envs"

    def index(self) -> str | None:
        """The index URL: the setting, else the worker's ``UV_INDEX_URL``/``PIP_INDEX_URL``."""
        return self.index_url or os.environ.get("UV_INDEX_URL") or os.environ.get("PIP_INDEX_URL")


@dataclass(frozen=True)
class PythonEnvironment:
    """A virtual environment holding a script's dependencies."""

    path: Path
    key: str
    cached: bool

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        return self.path / "bin" / "python"


def normalise(requirement: str) -> str:
    """``requirement`` in one canonical spelling, or DependencyError when it is not one.

    Names compare as PEP 503 does (``Foo_Bar`` is ``foo-bar``); extras and
    version specifiers are sorted, so ``pandas >=2, <3`` and ``Pandas<3,>=2``
    share one environment.
    """
    match = _REQUIREMENT.match(requirement)
    if match is None:
        raise DependencyError(
            f"dependency {requirement!r} is not a package requirement: give a name with an "
            "optional version, e.g. pandas==2.2 (direct URLs, paths and pip options are refused)"
        )
    name = _canonical(match["name"])
    extras = sorted({_canonical(e) for e in (match["extras"] or "").split(",") if e.strip()})
    specs = sorted(op + version for op, version in _SPECIFIER.findall(match["specs"] or ""))
    text = name + (f"[{','.join(extras)}]" if extras else "") + ",".join(specs)
    marker = " ".join((match["marker"] or "").split())
    return f"{text}; {marker}" if marker else text


def environment_key(requirements: Sequence[str], python_version: str) -> str:
    """The sha256 naming the environment of ``requirements`` for one interpreter version."""
    canonical = sorted({normalise(r) for r in requirements})
    document = json.dumps({"python": python_version, "requirements": canonical})
    return hashlib.sha256(document.encode()).hexdigest()


@contextlib.contextmanager
def python_environment(
    requirements: Sequence[str],
    *,
    python: Path,
    packages: PackageSettings,
    task_type: str,
    log: Callable[[str, str], None],
    should_stop: Callable[[], bool] = lambda: False,
    timeout: float | None = None,
    cache: bool = True,
) -> Iterator[PythonEnvironment]:
    """An environment of ``python`` with ``requirements`` installed, for one script run.

    With ``cache`` the environment is shared and kept; without it (Kestra's
    ``dependencyCacheEnabled: false``) a private one is built and removed
    after the run. Raises DependencyError with uv's own message on failure.
    """
    canonical = sorted({normalise(r) for r in requirements})
    root = packages.root()
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    key = environment_key(canonical, _python_version(python))
    build = _Build(_uv_binary(task_type), python, packages, root, log, should_stop, timeout)
    if not cache:
        private = root / f"run-{uuid.uuid4().hex}"
        try:
            seconds = build.run(private, canonical)
            log("INFO", f"dependencies: built a private environment in {seconds:.1f}s")
            yield PythonEnvironment(private, key, cached=False)
        finally:
            shutil.rmtree(private, ignore_errors=True)
        return
    target = root / key
    with _locked(root / f"{key}.lock", key, log, should_stop):
        if (target / COMPLETE).is_file():
            log("INFO", f"dependencies: reused cached environment {key}")
            reused = True
        else:
            seconds = build.run(target, canonical)
            log("INFO", f"dependencies: built environment {key} in {seconds:.1f}s")
            reused = False
    yield PythonEnvironment(target, key, cached=reused)


@dataclass(frozen=True)
class _Build:
    """The uv invocations that make one environment."""

    uv: str
    python: Path
    packages: PackageSettings
    root: Path
    log: Callable[[str, str], None]
    should_stop: Callable[[], bool]
    timeout: float | None

    def run(self, target: Path, requirements: list[str]) -> float:
        """Create ``target`` and install ``requirements`` into it; the seconds it took."""
        started = time.monotonic()
        shutil.rmtree(target, ignore_errors=True)  # a build that died half-way
        try:
            self._uv("venv", "--no-python-downloads", "--python", str(self.python), str(target))
            index = self.packages.index()
            self._uv(
                "pip",
                "install",
                "--python",
                str(target / "bin" / "python"),
                # Wheels only: building a source distribution runs its code as the server.
                "--only-binary",
                ":all:",
                *(["--index-url", index] if index else []),
                *self.packages.install_args,
                "--",
                *requirements,
            )
            (target / COMPLETE).write_text(json.dumps(requirements) + "\n", encoding="utf-8")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return time.monotonic() - started

    def _uv(self, *args: str) -> None:
        output: list[str] = []

        def keep(_level: str, line: str) -> None:
            output.append(line)
            self.log("DEBUG", f"uv: {line}")

        result = run_process(
            [self.uv, "--no-config", *args],
            cwd=self.root,
            env=_uv_environment(self.root),
            on_line=keep,
            timeout=self.timeout,
            should_stop=self.should_stop,
        )
        if result.timed_out:
            raise DependencyError("installing the dependencies timed out")
        if result.killed:
            raise DependencyError("killed while installing the dependencies")
        if result.exit_code != 0:
            raise DependencyError(
                f"installing the dependencies failed (uv exited with {result.exit_code}): "
                + _trimmed(output)
            )


def _uv_environment(root: Path) -> dict[str, str]:
    """The environment uv runs in: its cache beside the environments, none of the server's."""
    passed = {k: v for k, v in os.environ.items() if k in _PASSED_ENV or k.startswith("UV_")}
    return {
        **passed,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "UV_CACHE_DIR": str(root / "uv-cache"),
        "UV_PYTHON_DOWNLOADS": "never",
        "NO_COLOR": "1",
    }


def _trimmed(lines: list[str]) -> str:
    """What uv said, from its ``error:`` line on, at most a few lines."""
    start = next((i for i, line in enumerate(lines) if line.startswith("error")), 0)
    text = " ".join(line.strip() for line in lines[start:][:_ERROR_LINES] if line.strip())
    return text[:_ERROR_CHARS] or "no output"


@contextlib.contextmanager
def _locked(
    path: Path, key: str, log: Callable[[str, str], None], should_stop: Callable[[], bool]
) -> Iterator[None]:
    """Hold an exclusive lock on ``path``; another run building the same set holds it too."""
    with path.open("a") as handle:
        waiting = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    log("INFO", f"dependencies: waiting for another run building {key}")
                    waiting = True
                if should_stop():
                    raise DependencyError("killed while waiting for the dependencies") from None
                time.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _uv_binary(task_type: str) -> str:
    """The uv executable of the optional ``scripts`` extra."""
    try:
        import uv  # noqa: PLC0415 - an optional extra, imported when a script needs it
    except ImportError as missing:
        raise DependencyError(
            f"task type {task_type} needs the {_EXTRA!r} extra for dependencies: "
            f"pip install 'flowplane[{_EXTRA}]' ({missing})"
        ) from None
    return str(uv.find_uv_bin())


@functools.cache
def _python_version(python: Path) -> str:
    """``cpython 3.11.7``: the implementation and version the environment is built from."""
    script = "import sys; print(sys.implementation.name, '.'.join(map(str, sys.version_info[:3])))"
    completed = subprocess.run(  # noqa: S603 - the worker's own interpreter
        [str(python), "-c", script], capture_output=True, text=True, check=False, timeout=30
    )
    if completed.returncode != 0:
        raise DependencyError(f"cannot run the interpreter {python}: {completed.stderr.strip()}")
    return completed.stdout.strip()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()
