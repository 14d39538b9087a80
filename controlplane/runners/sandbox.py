"""How script tasks are isolated from the server (clean env, own workdir, unprivileged user)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from controlplane.settings import Settings


@dataclass(frozen=True)
class Sandbox:
    """The isolation policy a worker applies to every script task it runs.

    ``work_root`` holds the per-run working directories; it never lies inside
    the server's data directory, so a script cannot reach the database or the
    age identity through a relative path.
    """

    mode: str = "auto"
    work_root: Path | None = None

    def work_dir_for(self, execution_id: str) -> Path:
        """The directory that holds one execution's task working directories."""
        root = self.work_root or Path(tempfile.gettempdir()) / "flowplane-work"
        return root / execution_id

    @classmethod
    def from_settings(cls, settings: Settings) -> Sandbox:
        """The policy configured by ``FLOWPLANE_SANDBOX`` and ``FLOWPLANE_WORK_DIR``."""
        return cls(mode=settings.sandbox, work_root=settings.work_dir)
