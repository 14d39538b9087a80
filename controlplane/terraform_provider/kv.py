"""``flowplane_kv``: one entry of a namespace's key-value store.

- **Types.** ``value`` is a string. With ``type = "JSON"`` it is JSON text
  (``jsonencode(...)``) and the server stores the parsed value, so flows read
  a number, a list or an object; left unset (or ``"STRING"``) the string is
  stored as is.
- **Drift.** ``read`` compares the server's value with state. JSON is compared
  by meaning (key order and spacing are not a change); anything else the
  server holds replaces the value in state, so the plan writes the configured
  one back. A value a flow sealed (it carried a secret) reads as ``******``:
  also a difference, also written back.
- **Import** ``<namespace>/<key>``: a string becomes a ``STRING`` value, anything
  else canonical JSON with ``type = "JSON"``.
"""

from __future__ import annotations

import json
from typing import Any

from controlplane.terraform_provider.framework import (
    UNKNOWN,
    Context,
    Diagnostics,
    Field,
    Kind,
    State,
)
from controlplane.terraform_provider.objects import TerraformObject
from controlplane.terraform_provider.reporting import reporting
from controlplane.terraform_provider.validators import KV_KEY, NAMESPACE_NAME, one_of

_TYPES = ("STRING", "JSON")

KV_FIELDS = (
    Field("id", Kind.STRING, "`<namespace>/<key>`.", computed=True),
    Field(
        "namespace",
        Kind.STRING,
        "Dotted namespace name, e.g. `platform.ops`. Changing it replaces the entry.",
        required=True,
        requires_replace=True,
        validators=(NAMESPACE_NAME,),
    ),
    Field(
        "key",
        Kind.STRING,
        "The key flows read with `kv.Get` or `kv('key')` (letters, digits, `.`, `_`, `-`). "
        "Changing it replaces the entry.",
        required=True,
        requires_replace=True,
        validators=(KV_KEY,),
    ),
    Field(
        "value",
        Kind.STRING,
        "The value. Text as is, or JSON text (`jsonencode(...)`) when `type` is `JSON`. "
        "A value a flow sealed because it carried a secret reads back as `******`, so "
        "the plan writes the configured value again.",
        required=True,
    ),
    Field(
        "type",
        Kind.STRING,
        "`STRING` (the default when unset) or `JSON`: the value is parsed and stored as a "
        "number, boolean, list or object. JSON is compared by meaning, not spelling.",
        optional=True,
        validators=(one_of("type", _TYPES),),
    ),
    Field("description", Kind.STRING, "Free text shown in the Flowplane UI.", optional=True),
)


def canonical_json(value: Any) -> str:
    """The one spelling of a JSON value used to compare and to show it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def kv_state(body: dict[str, Any], prior: State | None) -> State:
    """Terraform state from the API's entry; ``prior``'s spelling kept when it means the same."""
    prior = prior or {}
    server = body.get("value")
    value: str
    kind = prior.get("type")
    if kind == "JSON" and _same_json(prior.get("value"), server):
        value = prior["value"]
    elif isinstance(server, str) and kind != "JSON":
        value = server
    else:
        value, kind = canonical_json(server), "JSON"
    namespace, key = body["namespace"], body["key"]
    return {
        "id": f"{namespace}/{key}",
        "namespace": namespace,
        "key": key,
        "value": value,
        "type": kind,
        "description": body.get("description"),
    }


def kv_value(planned: State) -> Any:
    """The value to send: the string, or the parsed JSON."""
    text = planned["value"]
    return json.loads(text) if planned.get("type") == "JSON" else text


def _same_json(text: object, server: Any) -> bool:
    if not isinstance(text, str):
        return False
    try:
        return canonical_json(json.loads(text)) == canonical_json(server)
    except ValueError:
        return False


class KvResource(TerraformObject):
    """CRUD, plan and import for ``flowplane_kv``."""

    NAME = "kv"
    DESCRIPTION = "An entry of a namespace's key-value store (Kestra's KV store)."
    FIELDS = KV_FIELDS
    SERVER_TRACKED = True

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        """The fields' checks; a JSON value must parse."""
        super().validate(diags, type_name, config)
        value = config.get("value")
        if config.get("type") == "JSON" and isinstance(value, str) and value is not UNKNOWN:
            try:
                json.loads(value)
            except ValueError as exc:
                diags.add_error(
                    "value is not valid JSON",
                    f"type is JSON, so value must be JSON text (use jsonencode()): {exc}.",
                    path=["value"],
                )

    def plan(self, ctx: Context, current: State | None, planned: State) -> State:
        """`tf`'s hook, left as is: ``PlanningServicer`` calls ``modify_plan`` instead."""
        del ctx, current
        return planned

    def modify_plan(
        self, ctx: Context, prior: State | None, planned: State, config: State
    ) -> State:
        """The id follows namespace and key, so it is known in the plan."""
        del ctx, prior, config
        namespace, key = planned.get("namespace"), planned.get("key")
        known = isinstance(namespace, str) and isinstance(key, str)
        return {**planned, "id": f"{namespace}/{key}" if known else UNKNOWN}

    def create(self, ctx: Context, planned: State) -> State | None:
        """PUT the entry; an existing one is overwritten (a KV key has no owner)."""
        return self._put(ctx, "create", planned)

    def read(self, ctx: Context, current: State) -> State | None:
        """The entry as the server has it; None (recreate) when it is gone or expired."""
        namespace, key = current["namespace"], current["key"]
        with reporting(ctx.diagnostics, f"read KV {namespace}/{key}"):
            body = self.provider.require_client().get_kv(namespace, key)
            return None if body is None else kv_state(body, current)
        return current

    def update(self, ctx: Context, current: State, planned: State) -> State | None:
        """PUT the configured value and description."""
        del current
        return self._put(ctx, "update", planned)

    def delete(self, ctx: Context, current: State) -> None:
        """DELETE the entry; one already gone is not an error."""
        namespace, key = current["namespace"], current["key"]
        with reporting(ctx.diagnostics, f"delete KV {namespace}/{key}"):
            self.provider.require_client().delete_kv(namespace, key)

    def import_(self, ctx: Context, resource_id: str) -> State | None:
        """``terraform import flowplane_kv.x <namespace>/<key>``."""
        namespace, _, key = resource_id.rpartition("/")
        if not namespace or not key:
            ctx.diagnostics.add_error(
                f"import KV {resource_id!r}: expected <namespace>/<key>",
                "For example: terraform import flowplane_kv.region platform.ops/region",
            )
            return None
        with reporting(ctx.diagnostics, f"import KV {resource_id}"):
            body = self.provider.require_client().get_kv(namespace, key)
            if body is None:
                ctx.diagnostics.add_error(f"import KV {resource_id}: no such key on the server")
                return None
            return kv_state(body, None)
        return None

    def upgrade(self, ctx: Context, version: int, old: State) -> State:
        """Schema version 0 is the only one so far: the state is kept as is."""
        del ctx, version
        return old

    def _put(self, ctx: Context, action: str, planned: State) -> State | None:
        namespace, key = planned["namespace"], planned["key"]
        with reporting(ctx.diagnostics, f"{action} KV {namespace}/{key}"):
            body = self.provider.require_client().put_kv(
                namespace, key, kv_value(planned), planned.get("description")
            )
            return kv_state(body, planned)
        return None
