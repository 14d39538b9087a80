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
from typing import TYPE_CHECKING, Any

from controlplane.terraform_provider.framework import (
    UNKNOWN,
    Context,
    Diagnostics,
    Field,
    Kind,
    State,
)
from controlplane.terraform_provider.objects import ServerResource, with_pair_id
from controlplane.terraform_provider.schemas import namespace_field
from controlplane.terraform_provider.validators import KV_KEY, one_of

if TYPE_CHECKING:
    from controlplane.terraform_provider.client import FlowplaneClient

_TYPES = ("STRING", "JSON")

KV_FIELDS = (
    Field("id", Kind.STRING, "`<namespace>/<key>`.", computed=True),
    namespace_field("entry"),
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


class KvResource(ServerResource):
    """CRUD, plan and import for ``flowplane_kv``.

    A PUT creates or overwrites the entry (a KV key has no owner); an entry
    gone or expired reads as None, so Terraform recreates it.
    """

    NAME = "kv"
    DESCRIPTION = "An entry of a namespace's key-value store (Kestra's KV store)."
    FIELDS = KV_FIELDS
    LABEL = "KV"
    IDENTITY = ("namespace", "key")
    MISSING = "key"
    IMPORT_EXAMPLE = "flowplane_kv.region platform.ops/region"

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

    def modify_plan(
        self, ctx: Context, prior: State | None, planned: State, config: State
    ) -> State:
        """The id follows namespace and key, so it is known in the plan."""
        del ctx, prior, config
        return with_pair_id(planned, "namespace", "key")

    def fetch(self, client: FlowplaneClient, identity: State) -> dict[str, Any] | None:
        """The entry, or None."""
        return client.get_kv(identity["namespace"], identity["key"])

    def remove(self, client: FlowplaneClient, identity: State) -> None:
        """DELETE the entry."""
        client.delete_kv(identity["namespace"], identity["key"])

    def to_state(self, body: dict[str, Any], prior: State | None) -> State:
        """``kv_state``."""
        return kv_state(body, prior)

    def put(self, client: FlowplaneClient, planned: State, current: State | None) -> State | None:
        """PUT the configured value and description."""
        del current
        body = client.put_kv(
            planned["namespace"], planned["key"], kv_value(planned), planned.get("description")
        )
        return kv_state(body, planned)
