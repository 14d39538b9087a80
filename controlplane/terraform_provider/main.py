"""The ``terraform-provider-flowplane`` executable, which Terraform starts itself.

Run with ``--dev`` to serve in debug mode: it prints a ``TF_REATTACH_PROVIDERS``
value, and Terraform then reuses this one process instead of starting its own.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from controlplane.terraform_provider.planning import serve
from controlplane.terraform_provider.provider import FlowplaneProvider


def ensure_writable_home() -> None:
    """Point HOME at a private temp folder when ``~/.cache`` cannot be written.

    `tf` caches its TLS certificate under ``~/.cache/tf-python-provider`` and
    crashes at start when it cannot (HOME unset, read-only, or in a sandbox).
    """
    try:
        (Path.home() / ".cache" / "tf-python-provider").mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):
        fallback = Path(tempfile.gettempdir()) / f"terraform-provider-flowplane-{os.getuid()}"
        fallback.mkdir(mode=0o700, exist_ok=True)
        os.environ["HOME"] = str(fallback)


def main() -> None:
    """Serve the provider over the Terraform plugin protocol until Terraform stops it."""
    ensure_writable_home()
    serve(FlowplaneProvider(), sys.argv)


if __name__ == "__main__":
    main()
