"""Flowplane: a GitOps control plane for Kestra-compatible workflow automation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flowplane")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
