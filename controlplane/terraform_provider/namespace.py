"""``flowplane_namespace``: a namespace's description, labels, variables and allowed callers.

A PUT replaces every attribute, so create and update send the same body, and
that body carries every writable attribute: one left out would be emptied by
each apply (as ``allowed_namespaces`` once was). How the server's empty values
are kept from showing up as diffs is explained in ``schemas.namespace_state``.
An update carries the ETag read last as If-Match, so a namespace changed on the
server after the plan is never overwritten.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controlplane.terraform_provider.framework import UNKNOWN, Context, Diagnostics, State
from controlplane.terraform_provider.objects import ServerResource
from controlplane.terraform_provider.schemas import (
    NAMESPACE_FIELDS,
    namespace_body,
    namespace_glob_problem,
    namespace_state,
    with_etag,
)

if TYPE_CHECKING:
    from controlplane.terraform_provider.client import FlowplaneClient

_WRITABLE = ("description", "labels", "variables", "allowed_namespaces")


class NamespaceResource(ServerResource):
    """CRUD and import for ``flowplane_namespace``."""

    NAME = "namespace"
    DESCRIPTION = "A Flowplane namespace and its metadata."
    FIELDS = NAMESPACE_FIELDS
    LABEL = "namespace"
    IDENTITY = ("name",)
    MISSING = "namespace"

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

    def modify_plan(
        self, ctx: Context, prior: State | None, planned: State, config: State
    ) -> State:
        """The id is the name, so it is known as soon as the name is; a write moves the ETag."""
        del ctx, config
        planned = {**planned, "id": planned.get("name")}
        if prior is not None and any(planned.get(k) != prior.get(k) for k in _WRITABLE):
            planned["etag"] = UNKNOWN
        return planned

    def fetch(self, client: FlowplaneClient, identity: State) -> dict[str, Any] | None:
        """The namespace, or None."""
        return client.get_namespace(identity["name"])

    def remove(self, client: FlowplaneClient, identity: State) -> None:
        """DELETE; the server refuses while the namespace still holds flows."""
        client.delete_namespace(identity["name"])

    def to_state(self, body: dict[str, Any], prior: State | None) -> State:
        """``namespace_state`` with the ETag."""
        return with_etag(namespace_state(body, prior), body)

    def put(self, client: FlowplaneClient, planned: State, current: State | None) -> State | None:
        """PUT replaces every attribute at once, if the namespace is as last read.

        On create there is no ETag: one created implicitly by a flow is adopted.
        """
        body = client.put_namespace(
            planned["name"], namespace_body(planned), if_match=(current or {}).get("etag")
        )
        return with_etag(namespace_state(body, planned), body)
