"""Run a script task in a container, through the Docker Engine API (Docker, or Podman's service).

The container runs the task's command in the task's working directory, at the
same path as on the worker: bind-mounted there (``MOUNT``), or copied into the
container before it starts and back out after it ends (``VOLUME``, for an
engine that does not share the worker's filesystem). Its stdout and stderr are
followed line by line while it runs; ``::{"outputs":{...}}::`` lines on stdout
set outputs as they do for a local process. The container's exit code is the
task's. A timeout or a kill stops the container and removes it.

The ``docker`` SDK is an optional extra: it is imported when a container runs.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import stat
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from controlplane.errors import FlowplaneError
from controlplane.runners.outputs import parse_output_line

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Every API call but a pull, the log streams and the wait answers within this.
_REQUEST_TIMEOUT = 60
# How long the log streams may take to drain once the container has ended.
_LOG_GRACE = 5.0
# After a dropped follow stream: how often, and how far apart, the whole log is re-read.
_LOG_READ_ATTEMPTS = 10
_LOG_READ_PAUSE = 0.2
# A multiplexed log frame's header: stream byte, three zero bytes, payload length.
_FRAME_HEADER = 8
# How much of an engine's error written into a log stream goes into the message.
_ERROR_PREVIEW = 512
# Working directory archives stay in memory up to this size, then spill to disk.
_SPOOL_BYTES = 16 * 1024 * 1024

OnLine = Callable[[str, str], None]
# The API version each engine answered with, by address, for the life of the worker.
_API_VERSIONS: dict[str, str] = {}


class DockerError(FlowplaneError):
    """The engine refused or lost the container; the message says what it answered."""


class LogStreamError(DockerError):
    """The engine's log stream held something that is not a stdout or stderr frame."""


@dataclass(frozen=True)
class ContainerRequest:
    """Everything the container is made of, already rendered."""

    image: str
    command: list[str]
    working_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None
    # Kestra's default: an empty entrypoint, so the image's own does not wrap the command.
    entrypoint: list[str] = field(default_factory=lambda: [""])
    pull_policy: str = "IF_NOT_PRESENT"
    # The X-Registry-Auth of the pull; None pulls anonymously (never with the worker's
    # ~/.docker/config.json or its credential helper).
    auth: Mapping[str, str] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    nano_cpus: int | None = None
    memory: int | None = None
    memory_swap: int | None = None
    memory_swappiness: int | None = None
    memory_reservation: int | None = None
    oom_kill_disable: bool | None = None
    shm_size: int | None = None
    network_mode: str | None = None
    extra_hosts: list[str] = field(default_factory=list)
    file_handling: str = "MOUNT"
    # The uid/gid that owns the working directory in the container (VOLUME copies).
    owner: tuple[int, int] | None = None
    delete: bool = True
    kill_grace: float = 0.0
    timeout: float | None = None


@dataclass
class ContainerResult:
    """How the container ended."""

    id: str = ""
    exit_code: int = -1
    outputs: dict[str, Any] = field(default_factory=dict)
    timed_out: bool = False
    killed: bool = False
    oom_killed: bool = False


def resolve_host(host: str | None) -> str:
    """The engine: the runner's ``host``, else the worker's ``DOCKER_HOST``, else the socket."""
    return host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


@contextlib.contextmanager
def connect(host: str | None, task_type: str) -> Iterator[Any]:
    """A ``docker.DockerClient`` for ``host`` (see ``resolve_host``); closed afterwards."""
    docker = _sdk(task_type)
    where = resolve_host(host)
    # The first connection asks the engine for its API version (Podman takes over a
    # second to answer); later ones reuse it.
    version = _API_VERSIONS.get(where, "auto")
    try:
        if host:
            client = docker.DockerClient(base_url=host, version=version, timeout=_REQUEST_TIMEOUT)
        else:
            # The worker's DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH (as the CLI reads them).
            client = docker.from_env(version=version, timeout=_REQUEST_TIMEOUT)
    except docker.errors.DockerException as exc:
        raise DockerError(
            f"could not reach the Docker engine at {where}: {_first_line(exc)} "
            "(set DOCKER_HOST for the worker)"
        ) from None
    _API_VERSIONS[where] = client.api.api_version
    try:
        yield client
    finally:
        client.close()


def _sdk(task_type: str = "this task") -> Any:
    try:
        import docker  # noqa: PLC0415 - an optional extra
    except ImportError:
        raise DockerError(
            f"task type {task_type} on the Docker task runner needs the 'docker' extra: "
            "pip install 'flowplane[docker]'"
        ) from None
    return docker


def _failures() -> tuple[type[Exception], ...]:
    """What the SDK raises when the engine refuses a call or the connection fails."""
    from requests.exceptions import RequestException  # noqa: PLC0415 - the SDK's transport

    return (_sdk().errors.DockerException, RequestException)


def registry_auth(
    image: str,
    credentials: Mapping[str, str | None] | None,
    config: Mapping[str, Any] | None,
) -> dict[str, str] | None:
    """The auth sent with the pull of ``image``, or None to let the engine's client decide.

    ``config`` is a Docker ``config.json``: its ``auths`` entry for the image's
    registry (keys as the docker CLI writes them: ``https://index.docker.io/v1/``,
    ``ghcr.io``) holds ``auth`` (base64 of ``user:password``) or ``username`` and
    ``password``. ``credentials`` (Kestra's ``username``, ``password``, ``auth``,
    ``registry``) win over it for their registry, the image's by default.
    """
    docker = _sdk()
    repository, _ = docker.utils.parse_repository_tag(image)
    registry, _ = docker.auth.resolve_repository_name(repository)
    auths: dict[str, Mapping[str, Any]] = dict((config or {}).get("auths", {}))
    if credentials is not None:
        given = {name: value for name, value in credentials.items() if value}
        auths[given.pop("registry", "") or registry] = given
    for key, entry in reversed(auths.items()):
        if docker.auth.resolve_index_name(key) == registry:
            return _auth_of(entry, key)
    return None


def _auth_of(entry: Mapping[str, Any], key: str) -> dict[str, str]:
    """The X-Registry-Auth fields of one ``auths`` entry."""
    username, password = entry.get("username"), entry.get("password")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except ValueError:  # binascii.Error and UnicodeDecodeError both are
            decoded = ""
        username, colon, password = decoded.partition(":")
        if not colon:
            raise DockerError(f"the auth for registry {key} is not base64 of user:password")
    if not username:
        raise DockerError(f"the auth for registry {key} names no username")
    return {"username": str(username), "password": str(password or ""), "serveraddress": key}


def run_container(
    client: Any,
    request: ContainerRequest,
    *,
    on_line: OnLine,
    should_stop: Callable[[], bool] = lambda: False,
    poll_interval: float = 0.1,
) -> ContainerResult:
    """Pull if needed, create and start the container, follow it to its end, then clean up.

    Lines go to ``on_line(level, text)``: stdout at INFO, stderr at WARN. On
    timeout or when ``should_stop`` turns true the container is killed (stopped
    within ``kill_grace`` when set) and removed; otherwise it is removed when it
    ends, unless ``request.delete`` is false. Refusals of the engine raise
    ``DockerError``.
    """
    failures = _failures()
    started = time.monotonic()
    result = ContainerResult()

    def stopping() -> bool:
        if request.timeout is not None and time.monotonic() - started >= request.timeout:
            result.timed_out = True
        elif should_stop():
            result.killed = True
        return result.timed_out or result.killed

    container: Any = None
    abandoned = True
    step = f"could not check the image {request.image!r}"
    try:
        if not _ensure_image(client, request, on_line, stopping, poll_interval):
            return result
        step = "could not create the container"
        container = _create(client, request)
        result.id = container.id
        on_line("INFO", f"container {container.short_id} created from {request.image}")
        if request.file_handling == "VOLUME":
            step = "could not copy the working directory into the container"
            _copy_in(container, request)
        step = f"container {container.short_id} failed"
        _follow(
            container,
            request,
            result,
            on_line=on_line,
            stopping=stopping,
            poll_interval=poll_interval,
        )
        abandoned = result.timed_out or result.killed
        if not abandoned and request.file_handling == "VOLUME":
            step = "could not copy the working directory back from the container"
            _copy_out(container, request, on_line)
    except failures as exc:
        raise DockerError(f"{step}: {_describe(exc)}") from None
    finally:
        if container is not None and (abandoned or request.delete):
            _remove(container, on_line)
    return result


def _ensure_image(
    client: Any,
    request: ContainerRequest,
    on_line: OnLine,
    stopping: Callable[[], bool],
    poll_interval: float,
) -> bool:
    """Make the image present as the pull policy says; False when stopped meanwhile."""
    docker = _sdk()
    image, policy = request.image, request.pull_policy
    try:
        client.images.get(image)
        present = True
    except docker.errors.ImageNotFound:
        present = False
    if policy == "NEVER" and not present:
        raise DockerError(
            f"image {image!r} is not present on the Docker host, and pullPolicy is NEVER"
        )
    if policy == "NEVER" or (policy == "IF_NOT_PRESENT" and present):
        return True
    on_line("INFO", f"pulling image {image}")
    outcome: list[str | None] = []
    puller = threading.Thread(
        target=lambda: outcome.append(_pull(client, image, request.auth)), daemon=True
    )
    puller.start()
    while puller.is_alive():
        if stopping():
            # The engine finishes the pull on its own; the client is closed by the caller.
            return False
        puller.join(timeout=poll_interval)
    error = outcome[0] if outcome else "the pull ended without an answer"
    if error is None:
        return True
    if present:
        raise DockerError(f"image {image!r} could not be pulled (pullPolicy ALWAYS): {error}")
    raise DockerError(
        f"image {image!r} is not present on the Docker host and could not be pulled: {error}"
    )


def _pull(client: Any, image: str, auth: Mapping[str, str] | None) -> str | None:
    """Pull ``image``; the engine's error, or None once it is there."""
    repository, tag = _sdk().utils.parse_repository_tag(image)
    try:
        # The engine answers 200 and reports a failed pull inside the progress stream.
        for event in client.api.pull(
            repository,
            tag=tag or "latest",
            stream=True,
            decode=True,
            # An explicit (possibly empty) auth: with None the SDK would send the
            # worker's own registry credentials from ~/.docker/config.json.
            auth_config=dict(auth) if auth is not None else {},
        ):
            if isinstance(event, dict) and event.get("error"):
                return str(event["error"])
    except Exception as exc:  # noqa: BLE001 - reported as the pull's failure
        return _describe(exc)
    return None


def _create(client: Any, request: ContainerRequest) -> Any:
    options: dict[str, Any] = {
        "command": list(request.command),
        "entrypoint": list(request.entrypoint),
        "environment": dict(request.env),
        "working_dir": str(request.working_dir),
        "labels": dict(request.labels),
        "detach": True,
        # No capability and no setuid gain: root in the container cannot chown
        # files to others or plant a setuid binary a later task would run.
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        # The worker's proxy settings (~/.docker/config.json) stay on the worker.
        "use_config_proxy": False,
    }
    if request.user:
        options["user"] = request.user
    if request.file_handling == "MOUNT":
        path = str(request.working_dir)
        options["volumes"] = {path: {"bind": path, "mode": "rw"}}
    limits = {
        "nano_cpus": request.nano_cpus,
        "mem_limit": request.memory,
        "memswap_limit": request.memory_swap,
        "mem_swappiness": request.memory_swappiness,
        "mem_reservation": request.memory_reservation,
        "oom_kill_disable": request.oom_kill_disable,
        "shm_size": request.shm_size,
        "network_mode": request.network_mode,
    }
    options.update({key: value for key, value in limits.items() if value is not None})
    if request.extra_hosts:
        options["extra_hosts"] = list(request.extra_hosts)
    return client.containers.create(request.image, **options)


def _follow(
    container: Any,
    request: ContainerRequest,
    result: ContainerResult,
    *,
    on_line: OnLine,
    stopping: Callable[[], bool],
    poll_interval: float,
) -> None:
    """Start the container, stream its output and wait for it to end or be stopped."""
    if stopping():
        return
    container.start()
    readers = [
        threading.Thread(
            target=_pump, args=(container, "INFO", on_line, result.outputs), daemon=True
        ),
        threading.Thread(
            target=_pump, args=(container, "WARN", on_line, result.outputs), daemon=True
        ),
    ]
    for reader in readers:
        reader.start()
    ended: list[dict[str, Any]] = []
    waiter = threading.Thread(target=_wait_for, args=(container, ended), daemon=True)
    waiter.start()
    while waiter.is_alive():
        if stopping():
            _stop(container, request.kill_grace, on_line)
            break
        waiter.join(timeout=poll_interval)
    waiter.join(timeout=request.kill_grace + _REQUEST_TIMEOUT)
    for reader in readers:
        reader.join(timeout=_LOG_GRACE)
    if ended:
        result.exit_code = int(ended[0].get("StatusCode", -1))
    container.reload()
    state = container.attrs.get("State", {})
    if not ended:
        result.exit_code = int(state.get("ExitCode", -1))
    result.oom_killed = bool(state.get("OOMKilled"))


def _wait_for(container: Any, ended: list[dict[str, Any]]) -> None:
    """Block until the container ends; its status lands in ``ended`` (nothing if lost)."""
    # A lost connection leaves ``ended`` empty: the caller reads the state back instead.
    with contextlib.suppress(Exception):
        ended.append(container.wait())


def _pump(container: Any, level: str, on_line: OnLine, outputs: dict[str, Any]) -> None:
    """Follow one of the container's streams (stdout at INFO, stderr at WARN) line by line."""
    is_stdout = level == "INFO"
    pending = b""

    def emit(raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        # Only stdout carries outputs, as in Kestra.
        found = parse_output_line(line) if is_stdout else None
        if found is not None:
            outputs.update(found)
        else:
            on_line(level, line)

    emitted = 0
    try:
        for chunk in _log_frames(container, is_stdout, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                emit(raw)
                emitted += 1
    except Exception:  # noqa: BLE001 - a lost stream must not lose the run's lines
        # The engine can drop a follow stream of a container that just exited
        # (Podman: "read /proc/<pid>/cgroup: no such process"), and can refuse
        # the whole read the same way for a moment after, until it has reaped
        # the process. Read the whole log once the container ended, retried
        # briefly, and emit the lines the stream had not given.
        whole = _read_whole_log(container, is_stdout, on_line)
        if whole is not None:
            *lines, pending = whole.split(b"\n")
            for raw in lines[emitted:]:
                emit(raw)
    if pending:
        emit(pending)


def _read_whole_log(container: Any, is_stdout: bool, on_line: OnLine) -> bytes | None:
    """One stream of the ended container's whole log, retried briefly; ``None`` if refused.

    Only an engine that answers with a refusal is asked again: one that cannot
    be reached at all is gone (each failed connection also costs a socket).
    """
    answered = (_sdk().errors.APIError, LogStreamError)
    for attempt in range(_LOG_READ_ATTEMPTS):
        try:
            container.wait()
            return b"".join(_log_frames(container, is_stdout, follow=False))
        except answered as exc:
            if attempt + 1 == _LOG_READ_ATTEMPTS:
                on_line("WARN", f"the container's log stream ended early: {_describe(exc)}")
            else:
                time.sleep(_LOG_READ_PAUSE)
        except Exception as exc:  # noqa: BLE001 - the engine is unreachable: reported once
            on_line("WARN", f"the container's log stream ended early: {_describe(exc)}")
            return None
    return None


def _log_frames(container: Any, is_stdout: bool, *, follow: bool) -> Iterator[bytes]:
    """The payloads of one stream of a container's multiplexed log, frame by frame.

    The SDK's own reader takes any 8 bytes as a frame header. Podman, when it
    fails after the answer's headers went out, writes its JSON error into the
    body, and the SDK would yield that error as log text while the task's real
    lines are lost. Here a header whose stream byte is not stdout (1) or stderr
    (2) raises instead, so the caller reads the log again.
    """
    api = container.client.api
    response = api._get(  # noqa: SLF001 - the SDK's transport; its own logs() reads the same way
        api._url("/containers/{0}/logs", container.id),  # noqa: SLF001
        params={
            "stdout": int(is_stdout),
            "stderr": int(not is_stdout),
            "follow": int(follow),
            "timestamps": 0,
            "tail": "all",
        },
        stream=True,
    )
    # Closed on every path, a refusal included: an unclosed answer leaks its socket.
    try:
        api._raise_for_status(response)  # noqa: SLF001
        if follow:
            # A quiet task can print nothing for longer than any socket timeout.
            api._disable_socket_timeout(api._get_raw_response_socket(response))  # noqa: SLF001
        while header := response.raw.read(_FRAME_HEADER):
            if len(header) < _FRAME_HEADER or header[0] not in (1, 2):
                raise LogStreamError(
                    "the engine's log stream broke: "
                    + header.decode("utf-8", errors="replace")
                    + response.raw.read(_ERROR_PREVIEW).decode("utf-8", errors="replace")
                )
            length = int.from_bytes(header[4:], "big")
            data = response.raw.read(length) if length else b""
            if length and not data:
                return
            yield data
    finally:
        response.close()


def _stop(container: Any, grace: float, on_line: OnLine) -> None:
    try:
        if grace > 0:
            # The engine takes whole seconds; SIGKILL follows SIGTERM after them.
            container.stop(timeout=math.ceil(grace))
        else:
            container.kill()
    except _sdk().errors.APIError as exc:
        # Already ended between the check and the kill: nothing left to stop.
        if exc.status_code not in {404, 409}:
            on_line("WARN", f"could not stop container {container.short_id}: {_describe(exc)}")


def _remove(container: Any, on_line: OnLine) -> None:
    try:
        container.remove(force=True)
    except _sdk().errors.NotFound:
        pass
    except _failures() as exc:
        on_line("WARN", f"could not remove container {container.short_id}: {_describe(exc)}")
        return
    on_line("INFO", f"container {container.short_id} removed")


def _copy_in(container: Any, request: ContainerRequest) -> None:
    """Copy the working directory into the created container (``VOLUME``)."""
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        with tarfile.open(fileobj=spool, mode="w") as tar:
            _add_tree(tar, request.working_dir, request.owner)
        spool.seek(0)
        # The engine makes the missing parent directories of the entries.
        if not container.put_archive("/", spool):
            raise DockerError("the engine refused the working directory's files")


def _add_tree(tar: tarfile.TarFile, root: Path, owner: tuple[int, int] | None) -> None:
    """The directory as archive entries under its absolute path; links are not copied."""
    uid, gid = owner or (0, 0)
    # Without a known owner the user inside is unknown: open the copies to everyone.
    # They live in the container only.
    private = owner is not None

    def entry(path: Path, name: str) -> tarfile.TarInfo:
        info = tar.gettarinfo(str(path), arcname=name)
        info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
        executable = info.isdir() or bool(info.mode & stat.S_IXUSR)
        if private:
            info.mode = 0o700 if info.isdir() else (0o700 if executable else 0o600)
        else:
            info.mode = 0o777 if executable else 0o666
        return info

    base = str(PurePosixPath(root)).lstrip("/")
    tar.addfile(entry(root, base))
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            continue
        name = f"{base}/{path.relative_to(root).as_posix()}"
        if path.is_dir():
            tar.addfile(entry(path, name))
        else:
            with path.open("rb") as reader:
                tar.addfile(entry(path, name), reader)


def _copy_out(container: Any, request: ContainerRequest, on_line: OnLine) -> None:
    """Copy the container's working directory back to the worker (``VOLUME``)."""
    chunks, _ = container.get_archive(str(request.working_dir))
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        with tarfile.open(fileobj=spool, mode="r") as tar:
            _extract(tar, request.working_dir, on_line)


def _extract(tar: tarfile.TarFile, root: Path, on_line: OnLine) -> None:
    """Write the archive's regular files and directories under ``root``, following no link.

    The archive's first path component is the working directory itself. The
    worker may run as root, so a link (planted by an earlier task of a shared
    directory) is never written through, and a path leaving ``root`` is skipped.
    """
    for member in tar:
        parts = PurePosixPath(member.name).parts[1:]
        if not parts or ".." in parts or not (member.isfile() or member.isdir()):
            continue
        target = root.joinpath(*parts)
        if not _inside(root, target.parent):
            on_line("WARN", f"{'/'.join(parts)!r} is under a link; it was not copied back")
            continue
        if member.isdir():
            if not target.exists():
                target.mkdir(mode=0o755)
            continue
        reader = tar.extractfile(member)
        if reader is None:
            continue
        try:
            _write_file(target, reader)
        except OSError as exc:
            on_line("WARN", f"{'/'.join(parts)!r} was not copied back: {exc.strerror}")


def _inside(root: Path, directory: Path) -> bool:
    """Whether ``directory`` is ``root`` or a real directory below it, reached through no link."""
    current = directory
    while current != root:
        if current.is_symlink() or not current.is_dir():
            return False
        if current.parent == current:
            return False
        current = current.parent
    return True


def _write_file(target: Path, reader: IO[bytes]) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    descriptor = os.open(target, flags, 0o644)
    with os.fdopen(descriptor, "wb") as writer:
        while chunk := reader.read(1024 * 1024):
            writer.write(chunk)


def _describe(exc: BaseException) -> str:
    """The engine's own words for a refusal, without the SDK's URL noise."""
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return str(explanation)
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
