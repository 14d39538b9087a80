"""Terraform CLI: run terraform commands in the task's working directory."""

from controlplane.plugins.terraform.cli import TerraformCLI

PLUGINS = (TerraformCLI,)

__all__ = ["PLUGINS"]
