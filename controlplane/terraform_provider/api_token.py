"""``flowplane_api_token``: an API token, and its bearer secret, made by Terraform.

A token cannot be changed once made, so every configurable attribute replaces
it. The secret (``token``) is in the creation answer only: the provider keeps
it in state, since `tf` has neither write-only attributes nor ephemeral
resources, and ``read`` carries it over. A token revoked or deleted on the
server reads as gone (404), so Terraform drops it from state and plans a new one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from controlplane.terraform_provider.framework import (
    UNKNOWN,
    Context,
    Diagnostics,
    Field,
    Kind,
    State,
)
from controlplane.terraform_provider.objects import ServerResource

if TYPE_CHECKING:
    from controlplane.terraform_provider.client import FlowplaneClient

_ROLES = ("viewer", "editor", "reviewer", "admin")
_REPLACES = "Changing it replaces the token."

API_TOKEN_FIELDS = (
    Field("id", Kind.STRING, "The token's id (`tok_…`), not its secret.", computed=True),
    Field(
        "name",
        Kind.STRING,
        f"Who or what uses the token; recorded as the actor of its writes. {_REPLACES}",
        required=True,
        requires_replace=True,
    ),
    Field(
        "role",
        Kind.STRING,
        f"`viewer`, `editor`, `reviewer` or `admin`; each can do what the ones before it "
        f"can. {_REPLACES}",
        required=True,
        requires_replace=True,
    ),
    Field(
        "namespaces",
        Kind.STRING_LIST,
        "Namespace patterns the token may see and change, e.g. `team-a.*`; the server's "
        f"default is every namespace (`*`). {_REPLACES}",
        optional=True,
        computed=True,
        requires_replace=True,
    ),
    Field(
        "expires_at",
        Kind.STRING,
        "RFC 3339 time with offset after which the token stops working, e.g. "
        f"`2027-01-01T00:00:00Z`; unset for no expiry. {_REPLACES}",
        optional=True,
        requires_replace=True,
    ),
    Field(
        "token",
        Kind.STRING,
        "The bearer secret. Known only when Terraform creates the token, so it is kept "
        "in Terraform state; sensitive, so plans redact it. Null after an import.",
        computed=True,
        sensitive=True,
    ),
    Field("created_at", Kind.STRING, "When the token was made (RFC 3339).", computed=True),
    Field("created_by", Kind.STRING, "Who made the token.", computed=True),
)


def token_state(body: dict[str, Any], secret: str | None, prior: State | None) -> State:
    """Terraform state from the API's token body; ``secret`` comes from the creation answer.

    The server answers ``expires_at`` in UTC; the configured spelling of the
    same instant (another offset, no fraction) is kept, so it is not a change.
    """
    expires_at = body.get("expires_at")
    configured = (prior or {}).get("expires_at")
    if isinstance(configured, str) and _same_instant(configured, expires_at):
        expires_at = configured
    return {
        "id": body["id"],
        "name": body["name"],
        "role": body["role"],
        "namespaces": list(body.get("namespaces") or []),
        "expires_at": expires_at,
        "token": secret,
        "created_at": body.get("created_at"),
        "created_by": body.get("created_by"),
    }


def _same_instant(a: str, b: object) -> bool:
    if not isinstance(b, str):
        return False
    try:
        return datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except ValueError:
        return False


class ApiTokenResource(ServerResource):
    """Create, read, revoke and import for ``flowplane_api_token``.

    ``tf`` calls ``plan`` unchanged: every change replaces the token.
    """

    NAME = "api_token"
    DESCRIPTION = "A Flowplane API token with a role and namespace scopes."
    FIELDS = API_TOKEN_FIELDS
    LABEL = "API token"
    IDENTITY = ("id",)
    MISSING = "live token"
    DELETE_VERB = "revoke"

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        """The role is one of four words and expires_at an RFC 3339 time with an offset."""
        super().validate(diags, type_name, config)
        role = config.get("role")
        if isinstance(role, str) and role not in _ROLES:
            diags.add_error(
                f"role must be one of {', '.join(_ROLES)}", f"Got {role!r}.", path=["role"]
            )
        expires_at = config.get("expires_at")
        if isinstance(expires_at, str):
            try:
                parsed = datetime.fromisoformat(expires_at)
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                diags.add_error(
                    "expires_at must be an RFC 3339 time with an offset",
                    f"Got {expires_at!r}; for example 2027-01-01T00:00:00Z.",
                    path=["expires_at"],
                )

    def put(self, client: FlowplaneClient, planned: State, current: State | None) -> State | None:
        """POST the token and keep the secret the answer shows once."""
        del current
        body: dict[str, Any] = {"name": planned["name"], "role": planned["role"]}
        namespaces = planned.get("namespaces")
        if namespaces is not None and namespaces is not UNKNOWN:
            body["namespaces"] = namespaces
        if planned.get("expires_at") is not None:
            body["expires_at"] = planned["expires_at"]
        created = client.create_token(body)
        return token_state(created, created["token"], planned)

    def update(self, ctx: Context, current: State, planned: State) -> State | None:
        """Never called: every configurable attribute replaces the token."""
        del current
        ctx.diagnostics.add_error(
            "an API token cannot be changed in place (a bug in the provider)",
            "Every attribute of flowplane_api_token forces replacement.",
        )
        return planned

    def describe(self, state: State) -> str:
        """Tokens are named by their ``name``: the id is not what users wrote."""
        return str(state.get("name"))

    def fetch(self, client: FlowplaneClient, identity: State) -> dict[str, Any] | None:
        """The token's metadata; None once it is revoked or deleted (a new one is made)."""
        return client.get_token(identity["id"])

    def remove(self, client: FlowplaneClient, identity: State) -> None:
        """Revoke the token."""
        client.delete_token(identity["id"])

    def to_state(self, body: dict[str, Any], prior: State | None) -> State:
        """``token_state``; the secret carried over from ``prior`` (null after an import)."""
        return token_state(body, (prior or {}).get("token"), prior)
