"""Package a built provider executable as Terraform expects it, with its hashes.

    python scripts/provider_archive.py EXECUTABLE VERSION OUT_DIR

writes, for linux_amd64 (the only platform built here):

- ``OUT_DIR/terraform-provider-flowplane_<v>_linux_amd64.zip`` (the executable, mode 0755);
- ``OUT_DIR/terraform-provider-flowplane_<v>_SHA256SUMS`` (the registry's format);
- ``OUT_DIR/mirror/registry.terraform.io/flowplane/flowplane/`` with the zip,
  ``index.json`` and ``<v>.json``: the layout ``terraform providers mirror``
  writes, usable as a filesystem mirror (the zip) or a network mirror (the JSON).

``h1:`` is Go's dirhash ``Hash1`` over the zip's members (what Terraform puts
in ``.terraform.lock.hcl``); ``zh:`` is the zip's own SHA-256 (what registries
publish in SHA256SUMS).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
import zipfile
from pathlib import Path

HOST, NAMESPACE, TYPE = "registry.terraform.io", "flowplane", "flowplane"
PLATFORM = "linux_amd64"
# A fixed timestamp keeps the zip, and so its zh: hash, the same for the same executable.
_EPOCH = (1980, 1, 1, 0, 0, 0)


def h1_hash(archive: Path) -> str:
    """Go's ``dirhash.HashZip``: SHA-256 over one ``<sha256>  <name>`` line per member."""
    with zipfile.ZipFile(archive) as bundle:
        names = sorted(info.filename for info in bundle.infolist() if not info.is_dir())
        summary = "".join(
            f"{hashlib.sha256(bundle.read(name)).hexdigest()}  {name}\n" for name in names
        )
    return "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()


def zh_hash(archive: Path) -> str:
    """The zip file's own SHA-256, as ``zh:<hex>``."""
    return "zh:" + hashlib.sha256(archive.read_bytes()).hexdigest()


def write_archive(executable: Path, version: str, out_dir: Path) -> Path:
    """Zip the executable as ``terraform-provider-flowplane_v<version>``; returns the zip."""
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"terraform-provider-{TYPE}_{version}_{PLATFORM}.zip"
    member = zipfile.ZipInfo(f"terraform-provider-{TYPE}_v{version}", date_time=_EPOCH)
    member.external_attr = (0o100755 & 0xFFFF) << 16  # a regular file, rwxr-xr-x
    member.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(member, executable.read_bytes())
    return archive


def write_mirror(archive: Path, version: str, out_dir: Path) -> Path:
    """The ``terraform providers mirror`` layout beside the archive; returns its root."""
    root = out_dir / "mirror"
    folder = root / HOST / NAMESPACE / TYPE
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(archive, folder / archive.name)
    (folder / "index.json").write_text(json.dumps({"versions": {version: {}}}, indent=2) + "\n")
    archives = {PLATFORM: {"url": archive.name, "hashes": [h1_hash(archive)]}}
    (folder / f"{version}.json").write_text(json.dumps({"archives": archives}, indent=2) + "\n")
    return root


def main(argv: list[str]) -> None:
    """Build the archive, the SHA256SUMS file and the mirror; print the hashes."""
    executable, version, out_dir = Path(argv[0]), argv[1], Path(argv[2])
    archive = write_archive(executable, version, out_dir)
    sums = out_dir / f"terraform-provider-{TYPE}_{version}_SHA256SUMS"
    sums.write_text(f"{zh_hash(archive)[3:]}  {archive.name}\n")
    mirror = write_mirror(archive, version, out_dir)
    size = archive.stat().st_size / 1e6
    sys.stdout.write(
        f"{archive} ({size:.1f} MB)\n  {h1_hash(archive)}\n  {zh_hash(archive)}\nmirror: {mirror}\n"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
