"""Data sources: ``flowplane_flow`` and ``flowplane_namespace``, read-only views.

Unlike the resources, a missing object is an error here: a configuration that
reads a flow depends on it existing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controlplane.terraform_provider.framework import Context, Diagnostics, State, build_schema
from controlplane.terraform_provider.reporting import reporting
from controlplane.terraform_provider.schemas import (
    FLOW_DATA_FIELDS,
    NAMESPACE_DATA_FIELDS,
    flow_state,
    namespace_state,
)

if TYPE_CHECKING:
    from controlplane.terraform_provider.provider import FlowplaneProvider

# A data source has no prior state; empty maps read better than nulls in
# expressions such as `data.flowplane_namespace.ops.labels["team"]`.
_EMPTY_NAMESPACE: State = {"description": None, "labels": {}, "variables": {}}


class FlowDataSource:
    """Read one live flow by namespace and id."""

    FIELDS = FLOW_DATA_FIELDS

    def __init__(self, provider: FlowplaneProvider) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        """Type name without the provider prefix."""
        return "flow"

    @classmethod
    def get_schema(cls) -> object:
        """The data source schema."""
        return build_schema(FLOW_DATA_FIELDS, "A flow as it is stored in Flowplane now.")

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        """Nothing beyond the schema."""

    def read(self, ctx: Context, config: State) -> State | None:
        """The flow's current revision; an error when it does not exist."""
        namespace, flow_id = config["namespace"], config["flow_id"]
        with reporting(ctx.diagnostics, f"read flow {namespace}/{flow_id}"):
            body = self.provider.require_client().get_flow(namespace, flow_id)
            if body is None:
                ctx.diagnostics.add_error(
                    f"flow {namespace}/{flow_id} does not exist",
                    "It was never created, or it was deleted.",
                )
                return None
            return flow_state(body, None)
        return None


class NamespaceDataSource:
    """Read one namespace by name."""

    FIELDS = NAMESPACE_DATA_FIELDS

    def __init__(self, provider: FlowplaneProvider) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        """Type name without the provider prefix."""
        return "namespace"

    @classmethod
    def get_schema(cls) -> object:
        """The data source schema."""
        return build_schema(NAMESPACE_DATA_FIELDS, "A Flowplane namespace and its metadata.")

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        """Nothing beyond the schema."""

    def read(self, ctx: Context, config: State) -> State | None:
        """The namespace; an error when it does not exist."""
        name = config["name"]
        with reporting(ctx.diagnostics, f"read namespace {name}"):
            body = self.provider.require_client().get_namespace(name)
            if body is None:
                ctx.diagnostics.add_error(f"namespace {name} does not exist")
                return None
            return namespace_state(body, _EMPTY_NAMESPACE)
        return None
