"""An execution's files: where Flowplane keeps what Kestra keeps in its internal storage.

Every task run of an execution works under the execution's directory
(``Sandbox.work_dir_for``): ``<task run id>/work`` is its working directory,
and ``<task run id>/output-files/`` holds the files it stores (``outputFiles``
of scripts, LocalFiles, a Download, a Write...). A file's URI is its absolute
path, as those outputs give it, so the next task reads it by that path.

Storage tasks name files by URI, and a URI is a string a flow author writes:
only files inside the execution's own directory are opened, with symbolic
links resolved first and the final open refusing to follow one. A script can
plant a link to a server file (the age identity) in its working directory; the
worker, running as the server's user, must never read through it.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from controlplane.errors import ForbiddenError, InvalidRequestError, NotFoundError

STORED = "output-files"


@dataclass(frozen=True)
class ExecutionFiles:
    """The files of one execution, seen from one of its task runs."""

    root: Path  # the execution's directory
    task_run_id: str

    @property
    def stored_dir(self) -> Path:
        """Where this task run's stored files go."""
        return self.root / self.task_run_id / STORED

    def put(self, source: Path, name: str) -> str:
        """Move ``source`` into this task run's storage as ``name``; return its URI."""
        if not name or name in {".", ".."} or "/" in name or "\0" in name:
            raise InvalidRequestError(f"{name!r} is not a file name")
        self.stored_dir.mkdir(parents=True, exist_ok=True)
        target = self.stored_dir / name
        shutil.move(source, target)
        return str(target)

    def resolve(self, uri: str) -> Path:
        """The real path of ``uri`` when it lies in the execution's directory."""
        text = uri.removeprefix("file://")
        if "://" in text or not text.startswith("/"):
            raise InvalidRequestError(
                f"{uri!r} is not a file of this execution: pass the uri a task output gave"
            )
        real = Path(os.path.realpath(text))
        if not real.is_relative_to(os.path.realpath(self.root)):
            raise ForbiddenError(f"{uri!r} is not a file of this execution")
        return real

    def open(self, uri: str) -> BinaryIO:
        """Open a regular file of the execution for reading."""
        real = self.resolve(uri)
        try:
            descriptor = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise NotFoundError(f"file {uri!r} does not exist") from None
        except OSError as exc:
            raise ForbiddenError(f"file {uri!r} cannot be opened: {exc.strerror}") from None
        handle = os.fdopen(descriptor, "rb")
        # A folder swapped for a link between the check and the open is caught
        # by asking the kernel what was opened (Linux's /proc).
        link = Path(f"/proc/self/fd/{descriptor}")
        escaped = link.exists() and not Path(os.path.realpath(link)).is_relative_to(
            os.path.realpath(self.root)
        )
        if escaped or not stat.S_ISREG(os.fstat(descriptor).st_mode):
            handle.close()
            raise ForbiddenError(f"{uri!r} is not a regular file of this execution")
        return handle

    def delete(self, uri: str) -> bool:
        """Delete a file of the execution; return whether it existed."""
        real = self.resolve(uri)
        if real.is_dir():
            raise InvalidRequestError(f"{uri!r} is a directory, not a file")
        try:
            real.unlink()
        except FileNotFoundError:
            return False
        return True

    def purge(self) -> list[str]:
        """Delete every stored file of the execution (``*/output-files``); their URIs.

        Working directories are left alone: tasks running beside this one may
        still use theirs, and Kestra's purge only touches its internal storage.
        """
        deleted: list[str] = []
        if not self.root.is_dir():
            return deleted
        for run_dir in sorted(self.root.iterdir()):
            stored = run_dir / STORED
            if run_dir.is_symlink() or stored.is_symlink() or not stored.is_dir():
                continue
            for folder, _dirs, files in os.walk(stored, followlinks=False):
                for name in sorted(files):
                    path = Path(folder) / name
                    path.unlink()
                    deleted.append(str(path))
        return deleted
