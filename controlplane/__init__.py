"""Flowplane: a GitOps control plane for Kestra-compatible workflow automation."""

# The one place the version is written: pyproject.toml reads it (setuptools
# dynamic version), and the CLI, the API and the provider archive report it.
__version__ = "0.1.0"

__all__ = ["__version__"]
