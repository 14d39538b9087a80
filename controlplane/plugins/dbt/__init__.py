"""dbt CLI: run dbt commands on a dbt project in the task's working directory."""

from controlplane.plugins.dbt.cli import DbtCLI

PLUGINS = (DbtCLI,)

__all__ = ["PLUGINS"]
