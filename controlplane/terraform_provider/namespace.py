"""``flowplane_namespace``: a namespace's description, labels, variables and allowed callers.

A PUT replaces every attribute, so create and update send the same body, and
that body carries every writable attribute: one left out would be emptied by
each apply (as ``allowed_namespaces`` once was). How the server's empty values
are kept from showing up as diffs is explained in ``schemas.namespace_state``.
An update carries the ETag read last as If-Match, so a namespace changed on the
server after the plan is never overwritten.
"""

from __future__ import annotations

from controlplane.terraform_provider.framework import UNKNOWN, Context, Diagnostics, State
from controlplane.terraform_provider.objects import TerraformObject
from controlplane.terraform_provider.reporting import reporting
from controlplane.terraform_provider.schemas import (
    NAMESPACE_FIELDS,
    namespace_body,
    namespace_glob_problem,
    namespace_state,
    with_etag,
)

_WRITABLE = ("description", "labels", "variables", "allowed_namespaces")


class NamespaceResource(TerraformObject):
    """CRUD and import for ``flowplane_namespace``."""

    NAME = "namespace"
    DESCRIPTION = "A Flowplane namespace and its metadata."
    FIELDS = NAMESPACE_FIELDS
    SERVER_TRACKED = True

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        """Each ``allowed_namespaces`` entry is a namespace name or glob, as the API requires.

        The name is checked by its field's validator. Entries unknown until
        apply are skipped; the server checks them then.
        """
        super().validate(diags, type_name, config)
        allowed = config.get("allowed_namespaces")
        if not isinstance(allowed, list):
            return
        for index, entry in enumerate(allowed):
            problem = namespace_glob_problem(entry) if isinstance(entry, str) else None
            if problem is not None:
                diags.add_error(
                    f"allowed_namespaces[{index}] is not a namespace name or glob",
                    problem,
                    path=["allowed_namespaces", (index,)],
                )

    def plan(self, ctx: Context, current: State | None, planned: State) -> State:
        """`tf`'s hook, left as is: ``PlanningServicer`` calls ``modify_plan`` instead."""
        del ctx, current
        return planned

    def modify_plan(
        self, ctx: Context, prior: State | None, planned: State, config: State
    ) -> State:
        """The id is the name, so it is known as soon as the name is; a write moves the ETag."""
        del ctx, config
        planned = {**planned, "id": planned.get("name")}
        if prior is not None and any(planned.get(k) != prior.get(k) for k in _WRITABLE):
            planned["etag"] = UNKNOWN
        return planned

    def create(self, ctx: Context, planned: State) -> State | None:
        """PUT the namespace; one created implicitly by a flow is adopted."""
        name = planned["name"]
        with reporting(ctx.diagnostics, f"create namespace {name}"):
            body = self.provider.require_client().put_namespace(name, namespace_body(planned))
            return with_etag(namespace_state(body, planned), body)
        return None

    def read(self, ctx: Context, current: State) -> State | None:
        """The namespace as the server has it; None (recreate) when it is gone."""
        name = current["name"]
        with reporting(ctx.diagnostics, f"read namespace {name}"):
            body = self.provider.require_client().get_namespace(name)
            return None if body is None else with_etag(namespace_state(body, current), body)
        return current

    def update(self, ctx: Context, current: State, planned: State) -> State | None:
        """PUT replaces every attribute at once, if the namespace is as last read."""
        name = planned["name"]
        with reporting(ctx.diagnostics, f"update namespace {name}"):
            body = self.provider.require_client().put_namespace(
                name, namespace_body(planned), if_match=current.get("etag")
            )
            return with_etag(namespace_state(body, planned), body)
        return None

    def delete(self, ctx: Context, current: State) -> None:
        """DELETE; the server refuses while the namespace still holds flows."""
        name = current["name"]
        with reporting(ctx.diagnostics, f"delete namespace {name}"):
            self.provider.require_client().delete_namespace(name)

    def import_(self, ctx: Context, resource_id: str) -> State | None:
        """``terraform import flowplane_namespace.x <name>``."""
        with reporting(ctx.diagnostics, f"import namespace {resource_id}"):
            body = self.provider.require_client().get_namespace(resource_id)
            if body is None:
                ctx.diagnostics.add_error(
                    f"import namespace {resource_id}: no such namespace on the server"
                )
                return None
            return with_etag(namespace_state(body, None), body)
        return None

    def upgrade(self, ctx: Context, version: int, old: State) -> State:
        """Schema version 0 is the only one so far: the state is kept as is."""
        del ctx, version
        return old
