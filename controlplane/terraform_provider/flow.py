"""``flowplane_flow``: one flow, its YAML kept byte for byte.

Plan-time behaviour, which is where Terraform users feel a provider:

- The content is checked by the server's ``/validate`` while planning, so an
  invalid flow fails ``terraform plan`` with the server's ``file:line`` messages.
- ``namespace`` and ``flow_id`` come from the content unless set; a change of
  either replaces the flow (a flow's identity is its namespace and id).
- When the content changes, ``revision``, ``spec_sha256``, ``origin`` and
  ``etag`` become unknown and ``sha256`` is recomputed, so apply never
  contradicts the plan.
- An update carries the ETag read last as If-Match: a flow changed on the
  server after the plan was made is refused (412), never overwritten.
- Reading back a flow whose server copy differs only cosmetically (same
  ``spec_sha256``) keeps Terraform's copy: no diff. A real edit on the server
  shows up as a change that the next apply writes back.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from controlplane.terraform_provider.errors import ApiError, Problem
from controlplane.terraform_provider.framework import (
    UNKNOWN,
    Context,
    Diagnostics,
    State,
)
from controlplane.terraform_provider.objects import ServerResource
from controlplane.terraform_provider.reporting import reporting
from controlplane.terraform_provider.schemas import FLOW_FIELDS, flow_state, with_etag

if TYPE_CHECKING:
    from controlplane.terraform_provider.client import FlowplaneClient

# The server decides these on a write. Even a PUT of content it already holds
# (a no-op) keeps the existing revision and origin, so they are never predicted.
_SERVER_DERIVED = ("revision", "spec_sha256", "origin", "etag")


class FlowResource(ServerResource):
    """CRUD, plan and import for ``flowplane_flow``."""

    NAME = "flow"
    DESCRIPTION = "A Kestra-compatible flow stored in Flowplane."
    FIELDS = FLOW_FIELDS
    LABEL = "flow"
    IDENTITY = ("namespace", "flow_id")
    MISSING = "flow"
    IMPORT_EXAMPLE = "flowplane_flow.backup platform.ops/backup"

    def modify_plan(
        self, ctx: Context, prior: State | None, planned: State, config: State
    ) -> State:
        """For new or changed content: validate it, derive identity, mark computed values."""
        content = planned.get("content")
        if content is UNKNOWN and prior is not None:
            # Known only at apply (e.g. from another resource's output): it may
            # change, so may everything the server derives from it. Identity is
            # assumed to stay; docs/terraform.md says to set it explicitly then.
            return {**planned, **dict.fromkeys(_SERVER_DERIVED, UNKNOWN), "sha256": UNKNOWN}
        if not isinstance(content, str) or (prior and prior.get("content") == content):
            return planned
        with reporting(ctx.diagnostics, "validate flow content", ["content"]):
            result = self.provider.require_client().validate_flow(content)
            if not result.get("valid"):
                problems = [Problem.from_json(p) for p in result.get("problems") or []]
                detail = "\n".join(p.render() for p in problems)
                ctx.diagnostics.add_error("Invalid flow content", detail, path=["content"])
                return planned
            namespace, flow_id = str(result["namespace"]), str(result["id"])
            _check_identity(ctx.diagnostics, config, namespace, flow_id)
            planned = {
                **planned,
                "namespace": namespace,
                "flow_id": flow_id,
                "id": f"{namespace}/{flow_id}",
            }
        owner = (prior or {}).get("origin")
        if isinstance(owner, str) and owner.startswith("git:"):
            ctx.diagnostics.add_warning(
                f"flow {planned.get('id')} is managed by {owner}",
                "Flowplane refuses writes to a flow owned by a Git source; this change "
                "will fail with HTTP 409 on apply. Change it in that repository instead.",
                path=["content"],
            )
        return {
            **planned,
            "sha256": hashlib.sha256(content.encode()).hexdigest(),
            **dict.fromkeys(_SERVER_DERIVED, UNKNOWN),
        }

    def create(self, ctx: Context, planned: State) -> State | None:
        """PUT a new flow; an existing one is refused, so adoption stays explicit."""
        content: str = planned["content"]
        with reporting(ctx.diagnostics, "create flow", ["content"]):
            namespace, flow_id = self._identity(planned)
            client = self.provider.require_client()
            existing = client.get_flow(namespace, flow_id)
            if existing is not None:
                ctx.diagnostics.add_error(
                    f"create flow {namespace}/{flow_id}: it already exists on the server",
                    f"It is at revision {existing.get('revision')}, written by "
                    f"{existing.get('origin')}. To manage it with Terraform, import it: "
                    f"terraform import flowplane_flow.<name> {namespace}/{flow_id}",
                )
                return None
            body = client.put_flow(namespace, flow_id, content)
            return with_etag(flow_state(body, content), body)
        return None

    def update(self, ctx: Context, current: State, planned: State) -> State | None:
        """PUT the new content if the flow is as last read; namespace and id replace."""
        return self.write(
            ctx, "update", planned, lambda client: self.put(client, planned, current), ["content"]
        )

    def put(self, client: FlowplaneClient, planned: State, current: State | None) -> State | None:
        """PUT the content, conditional on the ETag read last."""
        body = client.put_flow(
            planned["namespace"],
            planned["flow_id"],
            planned["content"],
            if_match=(current or {}).get("etag"),
        )
        return with_etag(flow_state(body, None), body)

    def fetch(self, client: FlowplaneClient, identity: State) -> dict[str, Any] | None:
        """The live flow, or None (deleted on the server)."""
        return client.get_flow(identity["namespace"], identity["flow_id"])

    def remove(self, client: FlowplaneClient, identity: State) -> None:
        """DELETE; the server keeps the history behind a tombstone revision."""
        client.delete_flow(identity["namespace"], identity["flow_id"])

    def to_state(self, body: dict[str, Any], prior: State | None) -> State:
        """The server's flow; ``prior``'s content kept when it differs only cosmetically."""
        prior = prior or {}
        content = body["content"]
        if content != prior.get("content") and body["spec_sha256"] == prior.get("spec_sha256"):
            # Same normalized flow: only comments, quoting or layout differ.
            content = prior["content"]
        return with_etag(flow_state(body, content), body)

    def _identity(self, planned: State) -> tuple[str, str]:
        """Namespace and id: planned when known, else read from the content now."""
        namespace, flow_id = planned.get("namespace"), planned.get("flow_id")
        if isinstance(namespace, str) and isinstance(flow_id, str):
            return namespace, flow_id
        result: dict[str, Any] = self.provider.require_client().validate_flow(planned["content"])
        if not result.get("valid"):
            problems = [Problem.from_json(p) for p in result.get("problems") or []]
            detail = "\n".join(p.render() for p in problems)
            raise ApiError("the content is not a valid flow", detail)
        return str(result["namespace"]), str(result["id"])


def _check_identity(diagnostics: Diagnostics, config: State, namespace: str, flow_id: str) -> None:
    """An explicit namespace or flow_id must agree with the content's."""
    for attr, key, found in (("namespace", "namespace", namespace), ("flow_id", "id", flow_id)):
        wanted = config.get(attr)
        if isinstance(wanted, str) and wanted != found:
            diagnostics.add_error(
                f"{attr} does not match the content",
                f"{attr} is {wanted!r} but the content says {key}: {found!r}.",
                path=[attr],
            )
