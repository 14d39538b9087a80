"""Data sources: ``flowplane_flow``, ``flowplane_namespace`` and ``flowplane_execution``.

Unlike the resources, a missing object is an error here: a configuration that
reads a flow depends on it existing.
"""

from __future__ import annotations

from controlplane.terraform_provider.framework import Context, Diagnostics, State
from controlplane.terraform_provider.objects import TerraformObject
from controlplane.terraform_provider.reporting import reporting
from controlplane.terraform_provider.schemas import (
    EXECUTION_DATA_FIELDS,
    FLOW_DATA_FIELDS,
    NAMESPACE_DATA_FIELDS,
    execution_state,
    flow_state,
    namespace_state,
)

# A data source has no prior state; empty maps and lists read better than nulls
# in expressions such as `data.flowplane_namespace.ops.labels["team"]`.
_EMPTY_NAMESPACE: State = {
    "description": None,
    "labels": {},
    "variables": {},
    "allowed_namespaces": [],
}


class FlowDataSource(TerraformObject):
    """Read one live flow by namespace and id."""

    NAME = "flow"
    DESCRIPTION = "A flow as it is stored in Flowplane now."
    FIELDS = FLOW_DATA_FIELDS

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


class NamespaceDataSource(TerraformObject):
    """Read one namespace by name."""

    NAME = "namespace"
    DESCRIPTION = "A Flowplane namespace and its metadata."
    FIELDS = NAMESPACE_DATA_FIELDS

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


class ExecutionDataSource(TerraformObject):
    """Read one execution by id: its state and where its flow revision came from."""

    NAME = "execution"
    DESCRIPTION = "An execution (run) of a flow, with the lineage of the revision it ran."
    FIELDS = EXECUTION_DATA_FIELDS

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        """Nothing beyond the schema."""

    def read(self, ctx: Context, config: State) -> State | None:
        """The execution as it is now; an error when it does not exist."""
        execution_id = config["id"]
        with reporting(ctx.diagnostics, f"read execution {execution_id}"):
            body = self.provider.require_client().get_execution(execution_id)
            if body is None:
                ctx.diagnostics.add_error(f"execution {execution_id} does not exist")
                return None
            return execution_state(body)
        return None
