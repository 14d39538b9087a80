"""``flowplane_git_source``: a Git repository whose flows Flowplane keeps active.

- **Server defaults are not diffs.** Every attribute the server defaults
  (branch, paths, interval, approval policy, prune, self_heal) is optional and
  computed: left unset, it is "known after apply" on create and then keeps the
  server's value, whatever that default is.
- **The webhook secret is write-only on the server.** The API answers only
  ``has_webhook_secret``. State keeps the value Terraform wrote together with
  the source's ``version``; when the version moved on (the source was changed
  outside Terraform), the provider can no longer tell whether the secret was
  part of that change, so it forgets the value and the next apply writes the
  configured one again. ``has_webhook_secret`` is planned from the
  configuration, so a secret added or removed on the server shows up as a diff.
- **Write-only twin.** ``webhook_secret_wo`` (Terraform 1.11+) is sent to the
  server and never kept in state or plan files; ``webhook_secret_wo_version``
  (in state) is what Terraform compares, so a rotation is a version bump. A
  PUT replaces the whole source, so every write sends the configured secret
  (the same one again is no change on the server). When the source's version
  moved outside Terraform, the recorded ``webhook_secret_wo_version`` is
  forgotten like ``webhook_secret``, and the next apply writes the secret again.
- **Lost updates.** Updates send the ETag read last (``etag``) as If-Match.
"""

from __future__ import annotations

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
from controlplane.terraform_provider.validators import (
    SOURCE_ID,
    both_set,
    check_write_only_version,
    git_url,
    in_range,
    one_of,
)

if TYPE_CHECKING:
    from controlplane.terraform_provider.client import FlowplaneClient

_APPROVAL_POLICIES = ("auto", "approval")
# Attributes the API accepts in a PUT; every other attribute is the server's.
_WRITABLE = (
    "url",
    "branch",
    "flows_path",
    "secrets_path",
    "poll_interval_seconds",
    "webhook_secret",
    "approval",
    "required_approvals",
    "prune",
    "self_heal",
    "take_over",
)
# Decided by the server on every write: a PUT of the same body keeps the
# version, and a sync running meanwhile may move last_commit.
_SERVER_DERIVED = ("version", "etag", "last_commit")
_DEFAULTED = "Left unset, the server's default is kept and never shown as a diff."

GIT_SOURCE_FIELDS = (
    Field(
        "id",
        Kind.STRING,
        "The source's id (lowercase letters, digits, `.`, `_`, `-`). Flows it writes carry "
        "origin `git:<id>`. Changing it replaces the source.",
        required=True,
        requires_replace=True,
        validators=(SOURCE_ID,),
    ),
    Field(
        "url",
        Kind.STRING,
        "Repository URL: `https://`, `http://`, `ssh://`, `git://`, `file://` or "
        "`git@host:path`; checked at plan time.",
        required=True,
        validators=(git_url,),
    ),
    Field("branch", Kind.STRING, f"Branch to follow. {_DEFAULTED}", optional=True, computed=True),
    Field(
        "flows_path",
        Kind.STRING,
        f"Folder of the flows in the repository. {_DEFAULTED}",
        optional=True,
        computed=True,
    ),
    Field(
        "secrets_path",
        Kind.STRING,
        f"Folder of the encrypted namespace secrets in the repository. {_DEFAULTED}",
        optional=True,
        computed=True,
    ),
    Field(
        "poll_interval_seconds",
        Kind.NUMBER,
        f"Seconds between polls of the branch (5 to 86400). {_DEFAULTED}",
        optional=True,
        computed=True,
        validators=(in_range("poll_interval_seconds", 5, 86_400),),
    ),
    Field(
        "webhook_secret",
        Kind.STRING,
        "Secret that signs push webhooks. Sensitive: redacted in plans, but **stored in "
        "Terraform state** and plan files. Prefer `webhook_secret_wo`. The server never "
        "returns it.",
        optional=True,
        sensitive=True,
    ),
    Field(
        "webhook_secret_wo",
        Kind.STRING,
        "Secret that signs push webhooks, write-only (Terraform 1.11+): sent to the server, "
        "never stored in state or plan files. Terraform cannot see a change of it: bump "
        "`webhook_secret_wo_version` to write a new one. Set at most one of `webhook_secret` "
        "and `webhook_secret_wo`.",
        optional=True,
        sensitive=True,
        write_only=True,
    ),
    Field(
        "webhook_secret_wo_version",
        Kind.NUMBER,
        "Any number; changing it writes `webhook_secret_wo` again (rotation). Stored in state.",
        optional=True,
    ),
    Field(
        "approval",
        Kind.STRING,
        f"`auto` applies each plan at once; `approval` waits for reviews. {_DEFAULTED}",
        optional=True,
        computed=True,
        validators=(one_of("approval", _APPROVAL_POLICIES),),
    ),
    Field(
        "required_approvals",
        Kind.NUMBER,
        f"Approvals a plan needs under the `approval` policy (1 to 10). {_DEFAULTED}",
        optional=True,
        computed=True,
        validators=(in_range("required_approvals", 1, 10),),
    ),
    Field(
        "prune",
        Kind.BOOL,
        f"Delete flows that disappear from the repository. {_DEFAULTED}",
        optional=True,
        computed=True,
    ),
    Field(
        "self_heal",
        Kind.BOOL,
        f"Plan corrections when an owned flow drifts from the repository. {_DEFAULTED}",
        optional=True,
        computed=True,
    ),
    Field(
        "take_over",
        Kind.BOOL,
        "A flow another origin owns: `false` makes it a plan problem, `true` an explicit "
        f"take-over action in the source's plan. {_DEFAULTED}",
        optional=True,
        computed=True,
    ),
    Field(
        "has_webhook_secret",
        Kind.BOOL,
        "Whether the server holds a webhook secret for this source.",
        computed=True,
    ),
    Field("last_commit", Kind.STRING, "The last commit applied from the branch.", computed=True),
    Field(
        "version",
        Kind.NUMBER,
        "The server's version of the source; it grows with every change.",
        computed=True,
    ),
    Field(
        "etag",
        Kind.STRING,
        "The ETag Terraform read last; updates send it as If-Match.",
        computed=True,
    ),
)


def source_state(
    body: dict[str, Any], webhook_secret: str | None, wo_version: float | None = None
) -> State:
    """Terraform state from the API's source body; the secret comes from Terraform.

    ``webhook_secret_wo`` is always null here (write-only); its version is kept
    only while the server holds a secret.
    """
    state: State = {name: body.get(name) for name in _WRITABLE if name != "webhook_secret"}
    held = bool(body.get("has_webhook_secret"))
    return {
        **state,
        "id": body["id"],
        "webhook_secret": webhook_secret if held else None,
        "webhook_secret_wo": None,
        "webhook_secret_wo_version": wo_version if held else None,
        "has_webhook_secret": bool(body.get("has_webhook_secret")),
        "last_commit": body.get("last_commit"),
        "version": body["version"],
        "etag": body.get("etag"),
    }


def source_body(planned: State) -> dict[str, Any]:
    """The PUT body: every known writable attribute; the webhook secret even when null.

    Unset defaulted attributes are left out on create, so the server applies
    its defaults; on update they hold the prior (server) values. The secret
    is ``webhook_secret`` or, during apply, ``webhook_secret_wo`` (which
    ``PlanningServicer`` copies from the configuration): a PUT without one
    would remove it.
    """
    body = {
        name: planned.get(name)
        for name in _WRITABLE
        if planned.get(name) is not None and planned.get(name) is not UNKNOWN
    }
    body["webhook_secret"] = planned.get("webhook_secret") or planned.get("webhook_secret_wo")
    return body


class GitSourceResource(ServerResource):
    """CRUD, plan and import for ``flowplane_git_source``."""

    NAME = "git_source"
    DESCRIPTION = "A Git repository whose flows Flowplane keeps active."
    FIELDS = GIT_SOURCE_FIELDS
    LABEL = "Git source"
    IDENTITY = ("id",)
    MISSING = "source"

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        """The fields' checks; then at most one secret, and a version with the write-only one."""
        super().validate(diags, type_name, config)
        detail = (
            "They are two ways to give the webhook secret; webhook_secret_wo is never "
            "stored in state."
        )
        if not both_set(diags, config, ("webhook_secret", "webhook_secret_wo"), detail):
            check_write_only_version(diags, config, "webhook_secret")

    def modify_plan(
        self, ctx: Context, prior: State | None, planned: State, config: State
    ) -> State:
        """Plan ``has_webhook_secret`` from the configuration; a write moves the version.

        The write-only secret is null in ``planned`` (Terraform never plans
        one), so whether it is set is read from ``config``.
        """
        del ctx
        secret, secret_wo = planned.get("webhook_secret"), config.get("webhook_secret_wo")
        unknown = secret is UNKNOWN or secret_wo is UNKNOWN
        planned = {
            **planned,
            "has_webhook_secret": UNKNOWN
            if unknown
            else secret is not None or secret_wo is not None,
        }
        if prior is None:
            return planned
        compared = (*_WRITABLE, "has_webhook_secret", "webhook_secret_wo_version")
        if any(planned.get(name) != prior.get(name) for name in compared):
            planned.update(dict.fromkeys(_SERVER_DERIVED, UNKNOWN))
        return planned

    def create(self, ctx: Context, planned: State) -> State | None:
        """PUT a new source; one that already exists is refused, so adoption stays explicit."""
        return self.write(ctx, "create", planned, lambda client: self._create(ctx, client, planned))

    def _create(self, ctx: Context, client: FlowplaneClient, planned: State) -> State | None:
        source_id = planned["id"]
        if client.get_source(source_id) is not None:
            ctx.diagnostics.add_error(
                f"create Git source {source_id}: it already exists on the server",
                "To manage it with Terraform, import it: "
                f"terraform import flowplane_git_source.<name> {source_id}",
            )
            return None
        return self.put(client, planned, None)

    def put(self, client: FlowplaneClient, planned: State, current: State | None) -> State | None:
        """PUT every attribute, conditional on the ETag read last (none on create)."""
        body = client.put_source(
            planned["id"], source_body(planned), if_match=(current or {}).get("etag")
        )
        return source_state(
            body, planned.get("webhook_secret"), planned.get("webhook_secret_wo_version")
        )

    def fetch(self, client: FlowplaneClient, identity: State) -> dict[str, Any] | None:
        """The source (never its webhook secret), or None."""
        return client.get_source(identity["id"])

    def remove(self, client: FlowplaneClient, identity: State) -> None:
        """DELETE: syncing stops; the flows it synced stay live and are released."""
        client.delete_source(identity["id"])

    def to_state(self, body: dict[str, Any], prior: State | None) -> State:
        """The server's source; the webhook secret kept while the version did not move."""
        prior = prior or {}
        if body["version"] == prior.get("version"):
            return source_state(
                body, prior.get("webhook_secret"), prior.get("webhook_secret_wo_version")
            )
        # Changed outside Terraform (or imported): whether the secret was part
        # of it is unknowable, so both records of it are forgotten and rewritten.
        return source_state(body, None, None)
