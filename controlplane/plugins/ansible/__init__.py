"""Ansible CLI: run ansible-playbook in the task's working directory, with per-host results."""

from controlplane.plugins.ansible.cli import AnsibleCLI

PLUGINS = (AnsibleCLI,)

__all__ = ["PLUGINS"]
