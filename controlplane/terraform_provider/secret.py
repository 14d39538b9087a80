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

from controlplane.terraform_provider.framework import (
    UNKNOWN,
    Context,
    Diagnostics,
    State,
)
from controlplane.terraform_provider.objects import TerraformObject
from controlplane.terraform_provider.reporting import reporting
from controlplane.terraform_provider.schemas import SECRET_FIELDS, secret_state


class NamespaceSecretResource(TerraformObject):
    """CRUD, plan and import for ``flowplane_namespace_secret``."""

    NAME = "namespace_secret"
    DESCRIPTION = "A namespace secret; the server never returns its value."
    FIELDS = SECRET_FIELDS
    SERVER_TRACKED = True

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
        elif value is not None and value_wo is not None:
            diags.add_error(
                "Set only one of value and value_wo",
                "They are two ways to give the value.",
                path=["value"],
            )
        elif value_wo is not None and config.get("value_wo_version") is None:
            diags.add_error(
                "value_wo needs value_wo_version",
                "Terraform cannot see a write-only value change; bump value_wo_version "
                "(e.g. 1, then 2) to write a new one.",
                path=["value_wo_version"],
            )

    def plan(self, ctx: Context, current: State | None, planned: State) -> State:
        """`tf`'s hook, left as is: ``PlanningServicer`` calls ``modify_plan`` instead."""
        del ctx, current
        return planned

    def modify_plan(
        self, ctx: Context, prior: State | None, planned: State, config: State
    ) -> State:
        """The id follows namespace and key; a write may change the version."""
        del ctx, config
        namespace, key = planned.get("namespace"), planned.get("key")
        known = isinstance(namespace, str) and isinstance(key, str)
        planned = {**planned, "id": f"{namespace}/{key}" if known else UNKNOWN}
        if prior is None or any(
            planned.get(name) != prior.get(name)
            for name in ("value", "description", "value_wo_version")
        ):
            # The server decides: the same value again keeps the version.
            planned["version"] = UNKNOWN
        return planned

    def create(self, ctx: Context, planned: State) -> State | None:
        """PUT the secret; an existing one is overwritten with the configured value."""
        namespace, key = planned["namespace"], planned["key"]
        with reporting(ctx.diagnostics, f"create secret {namespace}/{key}"):
            return self._put(planned)
        return None

    def read(self, ctx: Context, current: State) -> State | None:
        """The server's metadata; a new version means the value changed out of band."""
        namespace, key = current["namespace"], current["key"]
        with reporting(ctx.diagnostics, f"read secret {namespace}/{key}"):
            body = self.provider.require_client().get_secret(namespace, key)
            if body is None:
                return None
            value = current.get("value") if body["version"] == current.get("version") else None
            return secret_state(body, value, current.get("value_wo_version"))
        return current

    def update(self, ctx: Context, current: State, planned: State) -> State | None:
        """PUT the configured value and description."""
        del current
        namespace, key = planned["namespace"], planned["key"]
        with reporting(ctx.diagnostics, f"update secret {namespace}/{key}"):
            return self._put(planned)
        return None

    def delete(self, ctx: Context, current: State) -> None:
        """DELETE the secret; one already gone is not an error."""
        namespace, key = current["namespace"], current["key"]
        with reporting(ctx.diagnostics, f"delete secret {namespace}/{key}"):
            self.provider.require_client().delete_secret(namespace, key)

    def import_(self, ctx: Context, resource_id: str) -> State | None:
        """``terraform import flowplane_namespace_secret.x <namespace>/<key>``."""
        namespace, _, key = resource_id.rpartition("/")
        if not namespace or not key:
            ctx.diagnostics.add_error(
                f"import secret {resource_id!r}: expected <namespace>/<key>",
                "For example: terraform import "
                "flowplane_namespace_secret.db platform.ops/DB_PASSWORD",
            )
            return None
        with reporting(ctx.diagnostics, f"import secret {resource_id}"):
            body = self.provider.require_client().get_secret(namespace, key)
            if body is None:
                ctx.diagnostics.add_error(
                    f"import secret {resource_id}: no such secret on the server"
                )
                return None
            # The value cannot be read: the next apply writes the configured one.
            return secret_state(body, None)
        return None

    def upgrade(self, ctx: Context, version: int, old: State) -> State:
        """Schema version 0 is the only one so far: the state is kept as is."""
        del ctx, version
        return old

    def _put(self, planned: State) -> State:
        # value_wo is in ``planned`` only during apply: PlanningServicer puts
        # it there from the configuration and nulls it in what is returned.
        value: str = planned.get("value") or planned["value_wo"]
        body = self.provider.require_client().put_secret(
            planned["namespace"], planned["key"], value, planned.get("description")
        )
        return secret_state(body, planned.get("value"), planned.get("value_wo_version"))
