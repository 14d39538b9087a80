"""``flowplane_namespace_secret``: one write-only secret of a namespace.

The server never returns a secret's value, only a ``version`` that grows with
every change. Drift is detected through that version:

- State keeps the value Terraform wrote and the version the server answered.
- ``read`` compares the server's version with the one in state. When they
  differ, the secret was changed outside Terraform (rotated through the API or
  the UI): the value in state is set to null, because Terraform no longer
  knows what the server holds. The configured value then differs from state,
  so the plan shows an in-place update (``value`` is redacted as sensitive),
  and apply writes the configured value back.
- After an import the value is likewise null, so the first apply writes the
  configured value. Writing the same value the server holds keeps its version.

`tf` 1.2 has no write-only attributes, so the value is stored in Terraform
state (see docs/terraform.md); it is marked sensitive, so plans redact it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controlplane.terraform_provider.framework import (
    UNKNOWN,
    Context,
    Diagnostics,
    State,
)
from controlplane.terraform_provider.objects import ServerResource, with_pair_id
from controlplane.terraform_provider.schemas import SECRET_FIELDS, secret_state
from controlplane.terraform_provider.validators import both_set, check_write_only_version

if TYPE_CHECKING:
    from controlplane.terraform_provider.client import FlowplaneClient


class NamespaceSecretResource(ServerResource):
    """CRUD, plan and import for ``flowplane_namespace_secret``."""

    NAME = "namespace_secret"
    DESCRIPTION = "A namespace secret; the server never returns its value."
    FIELDS = SECRET_FIELDS
    LABEL = "secret"
    IDENTITY = ("namespace", "key")
    MISSING = "secret"
    IMPORT_EXAMPLE = "flowplane_namespace_secret.db platform.ops/DB_PASSWORD"

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        """The fields' checks; then exactly one of ``value`` and ``value_wo``."""
        super().validate(diags, type_name, config)
        value, value_wo = config.get("value"), config.get("value_wo")
        if value is None and value_wo is None:
            diags.add_error(
                "Set value_wo (or value)",
                "value_wo is write-only and never stored in state; value is stored in state.",
                path=["value_wo"],
            )
        elif not both_set(
            diags, config, ("value", "value_wo"), "They are two ways to give the value."
        ):
            check_write_only_version(diags, config, "value")

    def modify_plan(
        self, ctx: Context, prior: State | None, planned: State, config: State
    ) -> State:
        """The id follows namespace and key; a write may change the version."""
        del ctx, config
        planned = with_pair_id(planned, "namespace", "key")
        if prior is None or any(
            planned.get(name) != prior.get(name)
            for name in ("value", "description", "value_wo_version")
        ):
            # The server decides: the same value again keeps the version.
            planned["version"] = UNKNOWN
        return planned

    def fetch(self, client: FlowplaneClient, identity: State) -> dict[str, Any] | None:
        """The secret's metadata, or None."""
        return client.get_secret(identity["namespace"], identity["key"])

    def remove(self, client: FlowplaneClient, identity: State) -> None:
        """DELETE the secret."""
        client.delete_secret(identity["namespace"], identity["key"])

    def to_state(self, body: dict[str, Any], prior: State | None) -> State:
        """A new version means the value changed out of band, so it is forgotten.

        After an import the value is unknown too: the next apply writes the
        configured one.
        """
        prior = prior or {}
        value = prior.get("value") if body["version"] == prior.get("version") else None
        return secret_state(body, value, prior.get("value_wo_version"))

    def put(self, client: FlowplaneClient, planned: State, current: State | None) -> State | None:
        """PUT the configured value and description; an existing secret is overwritten."""
        del current
        # value_wo is in ``planned`` only during apply: PlanningServicer puts
        # it there from the configuration and nulls it in what is returned.
        value: str = planned.get("value") or planned["value_wo"]
        body = client.put_secret(
            planned["namespace"], planned["key"], value, planned.get("description")
        )
        return secret_state(body, planned.get("value"), planned.get("value_wo_version"))
