"""How script tasks are isolated from the server (clean env, own workdir, unprivileged user).

A script is code written by a flow author; the server holds every namespace's
secrets. The sandbox keeps the one away from the other:

- ``bwrap`` (bubblewrap): a private mount namespace that shows only ``/usr``,
  a few ``/etc`` files, the Python install, and the task's working directory;
  a private ``/proc`` and PID namespace; the user ``nobody`` (65534).
- ``setuid``: no namespaces, only the switch to ``nobody`` (when the server runs
  as root), so the file modes of the data directory are the barrier.
- ``off``: an explicit opt-out for development; scripts run as the server user.

Every mode gives the script a clean environment; bwrap and setuid add CPU-time
and address-space limits. ``auto`` picks ``bwrap`` when it is installed, else ``setuid`` when root,
else refuses to run scripts. See docs/security.md.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from controlplane.errors import FlowplaneError
from controlplane.logging import get_logger
from controlplane.runners.dependencies import PackageSettings
from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.runners.prestart import PrestartPool

log = get_logger(__name__)

MODES = ("auto", "bwrap", "setuid", "off")
NOBODY = 65534
# What a script needs from /etc: name resolution, certificates, the user database
# (so `id` names `nobody`), and the loader cache. Never shadow, never the rest.
_ETC = (
    "resolv.conf",
    "hosts",
    "host.conf",
    "gai.conf",
    "nsswitch.conf",
    "localtime",
    "passwd",
    "group",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl",
    "ca-certificates",
    "os-release",  # what distribution this is (scripts and tools read it)
    "alternatives",
)
# The top-level directories of a Debian-like system that hold programs and libraries.
_SYSTEM = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# The sandbox's own /tmp: an empty tmpfs, not the host's.
_SANDBOX_TMP = "/tmp"  # noqa: S108 - a fresh tmpfs inside the sandbox


class SandboxError(FlowplaneError):
    """Scripts cannot run under the configured isolation on this machine."""


@dataclass(frozen=True)
class Launch:
    """How to start one sandboxed process: what ``subprocess.Popen`` is given."""

    argv: list[str]
    env: dict[str, str]
    # The uid/gid the child switches to before exec (setuid mode), or None.
    user: int | None = None
    group: int | None = None


@dataclass(frozen=True)
class Sandbox:
    """The isolation policy a worker applies to every script task it runs.

    ``work_root`` holds the per-run working directories; it never lies inside
    the server's data directory, so a script cannot reach the database or the
    age identity through a relative path. ``data_dir`` is what must stay out of
    reach: a launch is refused when a path the sandbox would expose contains it.
    ``network`` shares the host network (scripts call HTTP APIs); a database
    that trusts loopback connections is then reachable, see docs/security.md.
    """

    mode: str = "auto"
    work_root: Path | None = None
    data_dir: Path | None = None
    network: bool = True
    # RLIMIT_CPU of each process, in seconds; None for no limit.
    cpu_seconds: int | None = 3600
    # RLIMIT_AS (address space) of each process, in bytes; None for no limit.
    memory_bytes: int | None = 4 * 1024**3
    uid: int = NOBODY
    gid: int = NOBODY
    # The interpreter Python script tasks run (its venv and base install are exposed).
    python: Path = field(default_factory=lambda: Path(sys.executable))
    # Where Python `dependencies` environments are cached and installed from.
    packages: PackageSettings = field(default_factory=PackageSettings)
    # Whether a running worker keeps a bwrap sandbox started ahead (runners.prestart).
    prestart: bool = True
    # That worker's pool while it runs (``Worker.prestarting``); None elsewhere.
    pool: PrestartPool | None = field(default=None, compare=False, repr=False)

    def work_dir_for(self, execution_id: str) -> Path:
        """The directory that holds one execution's task working directories."""
        return self.work_root_dir() / execution_id

    def work_root_dir(self) -> Path:
        """The directory that holds every execution's working directories."""
        return self.work_root or Path(tempfile.gettempdir()) / "flowplane-work"

    @classmethod
    def from_settings(cls, settings: Settings) -> Sandbox:
        """The policy configured by ``FLOWPLANE_SANDBOX*`` and ``FLOWPLANE_WORK_DIR``."""
        memory = settings.sandbox_memory_mb
        return cls(
            mode=settings.sandbox,
            work_root=settings.work_dir,
            data_dir=settings.data_dir.resolve(),
            network=settings.sandbox_network,
            cpu_seconds=settings.sandbox_cpu_seconds,
            memory_bytes=None if memory is None else memory * 1024**2,
            packages=PackageSettings.from_settings(settings),
            prestart=settings.sandbox_prestart,
        )

    def effective_mode(self) -> str:
        """``bwrap``, ``setuid`` or ``off`` on this machine; SandboxError when none fits."""
        return resolve_mode(self.mode, bwrap=shutil.which("bwrap"), is_root=os.geteuid() == 0)

    def prepare(self, work_dir: Path, mode: str) -> None:
        """Give the working directory to the sandbox user, who must write there.

        Only the directory itself changes owner: files a previous task left in a
        shared directory are not followed, so a symlink planted there cannot
        make the server chown something else.
        """
        if mode == "off" or os.geteuid() != 0:
            return
        os.chown(work_dir, self.uid, self.gid, follow_symlinks=False)
        work_dir.chmod(0o700)

    def give(self, path: Path, mode: str) -> None:
        """Hand a file the server wrote for the script (input files) to the sandbox user."""
        if mode != "off" and os.geteuid() == 0:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def launch(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        mode: str,
        venv: Path | None = None,
    ) -> Launch:
        """The command line and environment that run ``argv`` under ``mode``.

        ``venv`` is a virtual environment of the script's ``dependencies``: bound
        read-only into the sandbox, its ``bin`` first on the PATH.
        """
        clean = self.environment(cwd, env, venv)
        if mode == "off":
            return Launch(argv, clean)
        self._check_work_dir(cwd)
        if venv is not None:
            self._check_venv(venv, mode)
        limited = [*self._limits(), *argv]
        if mode == "setuid":
            if not self.network:
                raise SandboxError("network isolation needs bubblewrap (FLOWPLANE_SANDBOX=bwrap)")
            self._close_data_dir()
            # no_new_privs: a setuid file planted in a shared working directory
            # (by a container running as root, say) cannot make nobody root.
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise SandboxError("the setuid sandbox needs `setpriv` (package util-linux)")
            guarded = [setpriv, "--no-new-privs", "--", *limited]
            return Launch(guarded, clean, user=self.uid, group=self.gid)
        return Launch(self._bwrap(limited, cwd, venv), clean)

    def prestarted(self, slot: Path, fds: tuple[int, int], launcher: str) -> Launch:
        """A bwrap sandbox around ``slot`` whose ``launcher`` (Python source) waits for a task.

        The same sandbox as ``launch`` gives, but for the working directory: the
        slot is bound at its own path, under a private, writable tmpfs at the
        work root where the launcher links the task's working directory to it
        (``runners.prestart``). The launcher reads its task from ``fds[0]`` and
        says it has started on ``fds[1]``.
        """
        self._check_work_dir(slot)
        prefix, made_before = self._bwrap_prefix
        made = set(made_before)
        root = self.work_root_dir()
        args = [*prefix, *_parents(root, made), "--perms", "1777", "--tmpfs", str(root)]
        made.add(root)
        args += [*_parents(slot, made), "--bind", str(slot), str(slot), "--chdir", str(slot)]
        if os.geteuid() == 0:
            args += self._drop_to_nobody()
        program = [str(self.python), "-c", launcher, *(str(fd) for fd in fds), str(slot)]
        env = {"PATH": self._search_path(), "LANG": "C.UTF-8"}
        return Launch([*args, *self._limits(), *program], env)

    def environment(
        self, cwd: Path, env: dict[str, str], venv: Path | None = None
    ) -> dict[str, str]:
        """PATH, HOME (the working directory) and LANG, then the task's own ``env``."""
        path = self._search_path()
        if venv is None:
            return {"PATH": path, "HOME": str(cwd), "LANG": "C.UTF-8", **env}
        base = {"PATH": f"{venv / 'bin'}:{path}", "VIRTUAL_ENV": str(venv)}
        return {**base, "HOME": str(cwd), "LANG": "C.UTF-8", **env}

    def _search_path(self) -> str:
        """The PATH of every script: the worker's interpreter first."""
        return f"{self.python.parent}:/usr/local/bin:/usr/bin:/bin"

    def exposed_paths(self) -> list[Path]:
        """The host paths bound read-only into a bwrap sandbox, besides the work dir."""
        paths = [Path("/usr")]
        paths += [Path("/etc") / name for name in _ETC if (Path("/etc") / name).exists()]
        paths += [p for p in (Path(f"/{name}") for name in _SYSTEM) if p.is_dir()]
        # The venv and the install it was made from, both found from the interpreter,
        # so a pyenv under /root exposes only that version's directory.
        for prefix in (self.python.absolute().parent.parent, self.python.resolve().parent.parent):
            if prefix != Path("/") and not any(prefix.is_relative_to(p) for p in paths):
                paths.append(prefix)
        return paths

    def _limits(self) -> list[str]:
        """A ``prlimit`` prefix: the limits hold for the whole process tree below it."""
        return list(self._limits_prefix)

    @functools.cached_property
    def _limits_prefix(self) -> tuple[str, ...]:
        options = []
        if self.cpu_seconds is not None:
            options.append(f"--cpu={self.cpu_seconds}")
        if self.memory_bytes is not None:
            options.append(f"--as={self.memory_bytes}")
        if not options:
            return ()
        prlimit = shutil.which("prlimit")
        if prlimit is None:
            raise SandboxError("resource limits need `prlimit` (Debian package util-linux)")
        return (prlimit, *options, "--")

    def _bwrap(self, argv: list[str], cwd: Path, venv: Path | None = None) -> list[str]:
        prefix, made_before = self._bwrap_prefix
        # Each launch grows its own copy: the next one must still create its own parents.
        made = set(made_before)
        args = list(prefix)
        if venv is not None:
            self._check_data_dir_hidden([venv])
            args += [*_parents(venv, made), "--ro-bind", str(venv), str(venv)]
        args += [*_parents(cwd, made), "--bind", str(cwd), str(cwd), "--chdir", str(cwd)]
        if os.geteuid() == 0:
            # bwrap runs privileged to build the mounts (the interpreter may sit
            # under /root, which nobody cannot traverse), then drops to nobody
            # for good: the script is uid 65534 outside the sandbox too.
            args += self._drop_to_nobody()
        return [*args, *argv]

    @functools.cached_property
    def _bwrap_prefix(self) -> tuple[tuple[str, ...], frozenset[Path]]:
        """The part of every bwrap command line that no task changes, built once per policy.

        Namespaces, the private /proc, /dev and /tmp, and the read-only binds of
        ``exposed_paths`` (checked against the data directory here); with the
        directories it creates, so a launch adds only its venv and working
        directory. Computing it walks /etc and resolves each path, which cost
        a few milliseconds per task. A host change to the exposed paths (a new
        /etc file) is seen after the worker restarts. A refusal is not cached.
        """
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxError("FLOWPLANE_SANDBOX=bwrap but `bwrap` is not installed")
        exposed = self.exposed_paths()
        self._check_data_dir_hidden(exposed)
        made = {Path("/"), Path(_SANDBOX_TMP), Path("/proc"), Path("/dev")}
        args = [bwrap, "--die-with-parent", "--new-session"]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not self.network:
            args.append("--unshare-net")
        if os.geteuid() != 0:
            # Unprivileged bwrap maps the server's uid to `nobody` inside.
            args += ["--unshare-user", "--uid", str(self.uid), "--gid", str(self.gid)]
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", _SANDBOX_TMP]
        # A private, writable /dev/shm: POSIX semaphores (Python's multiprocessing
        # locks, which ansible-playbook takes) live there.
        args += ["--perms", "1777", "--tmpfs", "/dev/shm"]  # noqa: S108 - inside the sandbox
        for path in exposed:
            if path.is_symlink() and path.parent == Path("/"):
                # /bin -> usr/bin on merged-/usr systems: keep it a link.
                args += ["--symlink", str(path.readlink()), str(path)]
                continue
            args += [*_parents(path, made), "--ro-bind", str(path), str(path)]
        return tuple(args), frozenset(made)

    def _drop_to_nobody(self) -> list[str]:
        return list(self._setpriv_drop)

    @functools.cached_property
    def _setpriv_drop(self) -> tuple[str, ...]:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise SandboxError("running bwrap as root needs `setpriv` (package util-linux)")
        return (
            setpriv,
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        )

    def _close_data_dir(self) -> None:
        """Without namespaces, the data directory's mode is what keeps nobody out."""
        if self.data_dir is None or not self.data_dir.is_dir():
            return
        mode = stat.S_IMODE(self.data_dir.stat().st_mode)
        if mode & 0o077:
            self.data_dir.chmod(mode & 0o700)
            log.warning("data directory closed to other users", path=str(self.data_dir))

    def _check_work_dir(self, cwd: Path) -> None:
        if self.data_dir is not None and cwd.resolve().is_relative_to(self.data_dir.resolve()):
            raise SandboxError(
                f"the working directory {cwd} lies inside the data directory {self.data_dir}; "
                "set FLOWPLANE_WORK_DIR elsewhere"
            )

    def _check_data_dir_hidden(self, exposed: list[Path]) -> None:
        if self.data_dir is None:
            return
        data_dir = self.data_dir.resolve()
        for path in exposed:
            if data_dir.is_relative_to(path.resolve()):
                raise SandboxError(
                    f"the data directory {data_dir} lies under {path}, which scripts can read; "
                    "move FLOWPLANE_DATA_DIR (or FLOWPLANE_WORK_DIR) elsewhere"
                )

    def _check_venv(self, venv: Path, mode: str) -> None:
        """A dependencies environment stays out of the data directory, within nobody's reach."""
        if self.data_dir is not None and venv.resolve().is_relative_to(self.data_dir.resolve()):
            raise SandboxError(
                f"the dependencies environment {venv} lies inside the data directory "
                f"{self.data_dir}; set FLOWPLANE_DEPENDENCY_CACHE_DIR elsewhere"
            )
        if mode != "setuid":
            return
        for directory in venv.resolve().parents:
            if not directory.stat().st_mode & stat.S_IXOTH:
                raise SandboxError(
                    f"the setuid sandbox runs scripts as uid {self.uid}, which cannot reach the "
                    f"dependencies environment {venv} ({directory} is closed to other users); "
                    "set FLOWPLANE_DEPENDENCY_CACHE_DIR where other users can read"
                )

    def check_python(self, mode: str) -> None:
        """In setuid mode the interpreter is reached through host paths, as nobody."""
        if mode != "setuid":
            return
        python = self.python.resolve()
        for directory in python.parents:
            if not directory.stat().st_mode & stat.S_IXOTH:
                raise SandboxError(
                    f"the setuid sandbox runs scripts as uid {self.uid}, which cannot reach "
                    f"the interpreter {python} ({directory} is closed to other users); "
                    "install bubblewrap, or install Python where other users can read it"
                )


def default_work_root(data_dir: Path) -> Path:
    """The work root of a worker without ``FLOWPLANE_WORK_DIR``: one per data directory.

    Two servers on one machine never share task directories or caches.
    """
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"flowplane-work-{digest}"


def resolve_mode(mode: str, *, bwrap: str | None, is_root: bool) -> str:
    """The mode ``auto`` stands for, given what the machine offers; errors name the fix."""
    if mode not in MODES:
        raise SandboxError(f"FLOWPLANE_SANDBOX={mode!r}: choose one of {', '.join(MODES)}")
    if mode == "off":
        _warn_off()
        return "off"
    if mode == "bwrap" or (mode == "auto" and bwrap is not None):
        if bwrap is None:
            raise SandboxError("FLOWPLANE_SANDBOX=bwrap but `bwrap` is not installed")
        return "bwrap"
    if is_root:
        return "setuid"
    hint = "install bubblewrap (apt-get install bubblewrap)"
    if mode == "setuid":
        raise SandboxError(f"FLOWPLANE_SANDBOX=setuid needs the server to run as root; {hint}")
    raise SandboxError(
        f"scripts are not run without isolation: {hint}, run the server as root, "
        "or set FLOWPLANE_SANDBOX=off on a development machine"
    )


@functools.cache
def _warn_off() -> None:
    """Once per process: the task logs say it for every script."""
    log.warning("script sandbox is off: scripts run as the server user (development only)")


def _parents(path: Path, made: set[Path]) -> list[str]:
    """Create each missing ancestor as 0755, so nobody can traverse to the mount point.

    Left to itself bwrap makes them 0700 and root-owned, which shuts nobody out.
    ``made`` holds the directories that exist already; it grows as they are made.
    """
    args: list[str] = []
    for parent in reversed(path.parents):
        if parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args
