"""Lay out a filesystem mirror so that plain ``terraform init`` installs the provider.

    python -m controlplane.terraform_provider.mirror ~/.terraform.d/flowplane-mirror

writes ``registry.terraform.io/flowplane/flowplane/terraform-provider-flowplane_<v>_<os_arch>.zip``
(Terraform's "packed" mirror layout) and prints the CLI configuration that
points Terraform at it. The zip holds the installed console script, whose first
line names this environment's Python by absolute path: rebuild the mirror
after moving or recreating the virtualenv.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from pathlib import Path

from controlplane import __version__
from controlplane.terraform_provider.overrides import EXECUTABLE
from controlplane.terraform_provider.provider import ADDRESS, HOST, NAMESPACE, TYPE


def provider_executable() -> Path:
    """The installed ``terraform-provider-flowplane`` console script."""
    beside_python = Path(sys.executable).parent / EXECUTABLE
    if beside_python.is_file():
        return beside_python
    found = shutil.which(EXECUTABLE)
    if found is None:
        msg = f"{EXECUTABLE} is not installed; run `pip install -e .` (or install the wheel)"
        raise FileNotFoundError(msg)
    return Path(found)


def build_mirror(
    mirror_dir: Path, executable: Path | None = None, version: str = __version__
) -> Path:
    """Write the provider into ``mirror_dir``; returns the folder holding the zips."""
    install = importlib.import_module("tf.runner").install_provider
    install(HOST, NAMESPACE, TYPE, version, mirror_dir, executable or provider_executable())
    return mirror_dir / HOST / NAMESPACE / TYPE


def cli_config(mirror_dir: Path) -> str:
    """A CLI configuration (``TF_CLI_CONFIG_FILE`` or ``~/.terraformrc``) using the mirror.

    Only this provider comes from the mirror; every other provider still comes
    from its registry as usual.
    """
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror_dir.resolve()}"\n'
        f'    include = ["{ADDRESS}"]\n'
        "  }\n"
        "  direct {\n"
        f'    exclude = ["{ADDRESS}"]\n'
        "  }\n"
        "}\n"
    )


def main(argv: list[str] | None = None) -> None:
    """Build the mirror named on the command line and print its CLI configuration."""
    parser = argparse.ArgumentParser(prog="python -m controlplane.terraform_provider.mirror")
    parser.add_argument("directory", type=Path, help="mirror folder (created if missing)")
    parser.add_argument("--version", default=__version__, help="provider version to publish")
    args = parser.parse_args(argv)
    folder = build_mirror(args.directory, version=args.version)
    sys.stdout.write(f"# Provider {ADDRESS} {args.version} mirrored in {folder}\n")
    sys.stdout.write("# Put this in ~/.terraformrc or a file named by TF_CLI_CONFIG_FILE:\n")
    sys.stdout.write(cli_config(args.directory))


if __name__ == "__main__":
    main()
