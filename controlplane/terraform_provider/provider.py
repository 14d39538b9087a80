"""The provider: its address, its configuration, and the types it serves.

The address is ``registry.terraform.io/flowplane/flowplane`` so that users
write ``source = "flowplane/flowplane"``, the short form Terraform expands to
the public registry host. Nothing is ever fetched from that host: installation
goes through ``dev_overrides`` or a filesystem mirror (see docs/terraform.md).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from controlplane.terraform_provider.api_token import ApiTokenResource
from controlplane.terraform_provider.data_sources import (
    ExecutionDataSource,
    FlowDataSource,
    NamespaceDataSource,
)
from controlplane.terraform_provider.flow import FlowResource
from controlplane.terraform_provider.framework import (
    UNKNOWN,
    Diagnostics,
    Field,
    Kind,
    State,
    build_schema,
)
from controlplane.terraform_provider.git_source import GitSourceResource
from controlplane.terraform_provider.kv import KvResource
from controlplane.terraform_provider.namespace import NamespaceResource
from controlplane.terraform_provider.namespace_file import NamespaceFileResource
from controlplane.terraform_provider.reporting import reporting
from controlplane.terraform_provider.secret import NamespaceSecretResource

if TYPE_CHECKING:
    from controlplane.terraform_provider.client import FlowplaneClient

HOST = "registry.terraform.io"
NAMESPACE = "flowplane"
TYPE = "flowplane"
ADDRESS = f"{HOST}/{NAMESPACE}/{TYPE}"
DEFAULT_TIMEOUT = 30.0

CONFIG_FIELDS = (
    Field(
        "endpoint",
        Kind.STRING,
        "Base URL of the Flowplane server, e.g. `http://127.0.0.1:8080`. "
        "Defaults to the `FLOWPLANE_ENDPOINT` environment variable.",
        optional=True,
    ),
    Field(
        "api_token",
        Kind.STRING,
        "API token sent as `Authorization: Bearer`. Defaults to `FLOWPLANE_TOKEN`. "
        "The token's role and namespaces decide what Terraform may read and change.",
        optional=True,
        sensitive=True,
    ),
    Field(
        "timeout",
        Kind.NUMBER,
        f"Seconds to wait for each API call (default {DEFAULT_TIMEOUT:g}).",
        optional=True,
    ),
)


class FlowplaneProvider:
    """The object `tf` serves; resources receive it and take their client from it."""

    def __init__(self) -> None:
        self.client: FlowplaneClient | None = None

    def full_name(self) -> str:
        """The provider's address."""
        return ADDRESS

    def get_model_prefix(self) -> str:
        """Prefix of every type name: ``flowplane_flow``, ``flowplane_namespace``."""
        return f"{TYPE}_"

    def get_provider_schema(self, _diags: Diagnostics) -> object:
        """The ``provider "flowplane" {}`` block."""
        return build_schema(
            CONFIG_FIELDS,
            "Manage Flowplane namespaces, flows, secrets, KV entries, namespace files, Git "
            "sources and tokens.",
        )

    def validate_config(self, diags: Diagnostics, config: State) -> None:
        """Check what can be checked before the values are used."""
        endpoint = config.get("endpoint")
        if isinstance(endpoint, str) and urlparse(endpoint).scheme not in {"http", "https"}:
            diags.add_error(
                "endpoint must be an http:// or https:// URL",
                f"Got {endpoint!r}.",
                path=["endpoint"],
            )
        timeout = config.get("timeout")
        if isinstance(timeout, int | float) and timeout <= 0:
            diags.add_error("timeout must be a positive number of seconds", path=["timeout"])

    def configure_provider(self, diags: Diagnostics, config: State) -> None:
        """Build the client from the block, falling back to the environment."""
        endpoint = _setting(config, "endpoint", "FLOWPLANE_ENDPOINT")
        token = _setting(config, "api_token", "FLOWPLANE_TOKEN")
        timeout = config.get("timeout")
        if endpoint is UNKNOWN or token is UNKNOWN or timeout is UNKNOWN:
            diags.add_error(
                "The provider configuration depends on values not known until apply",
                "Set endpoint, api_token and timeout from variables or literals.",
            )
            return
        if not isinstance(endpoint, str) or not endpoint:
            diags.add_error(
                "No Flowplane endpoint",
                'Set endpoint in the provider block (endpoint = "http://127.0.0.1:8080") '
                "or the FLOWPLANE_ENDPOINT environment variable.",
                path=["endpoint"],
            )
            return
        seconds = float(timeout) if isinstance(timeout, int | float) else DEFAULT_TIMEOUT
        # Imported here: httpx is slow to import and most provider starts never need it.
        from controlplane.terraform_provider.client import FlowplaneClient  # noqa: PLC0415

        client = FlowplaneClient(endpoint, token if isinstance(token, str) else None, seconds)
        # One check for the whole run: a wrong endpoint or a refused token is
        # one error here, not one per resource, and Terraform stops before any
        # read could take a 404 for a deletion.
        with reporting(diags, "configure the Flowplane provider", ["endpoint"]):
            client.whoami()
            self.client = client

    def stop(self) -> None:
        """Terraform asked to stop (Ctrl-C): let sent requests finish, start no new one."""
        if self.client is not None:
            self.client.stop()

    def get_resources(self) -> list[type[Any]]:
        """The managed resource types."""
        return [
            NamespaceResource,
            FlowResource,
            NamespaceSecretResource,
            GitSourceResource,
            ApiTokenResource,
            KvResource,
            NamespaceFileResource,
        ]

    def get_data_sources(self) -> list[type[Any]]:
        """The data source types."""
        return [NamespaceDataSource, FlowDataSource, ExecutionDataSource]

    def get_functions(self) -> list[type[Any]]:
        """No provider-defined functions."""
        return []

    def new_resource(self, klass: type[Any]) -> Any:
        """Instantiate a resource type for one call."""
        return klass(self)

    def new_data_source(self, klass: type[Any]) -> Any:
        """Instantiate a data source type for one call."""
        return klass(self)

    def new_function(self, klass: type[Any]) -> Any:
        """Instantiate a function type (none exist)."""
        return klass(self)

    def require_client(self) -> FlowplaneClient:
        """The configured client; an error if Terraform did not configure the provider."""
        if self.client is None:
            msg = "the provider was used before it was configured (a bug in the provider)"
            raise RuntimeError(msg)
        return self.client


def _setting(config: State, key: str, env: str) -> object:
    value = config.get(key)
    return (os.environ.get(env) or None) if value is None else value
