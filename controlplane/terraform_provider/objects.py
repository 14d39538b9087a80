"""What every resource and data source shares: its name, schema and provider.

``ServerResource`` adds what every resource shares: the CRUD and import plumbing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from controlplane.terraform_provider.framework import (
    UNKNOWN,
    Context,
    Diagnostics,
    Field,
    Kind,
    State,
    build_schema,
)
from controlplane.terraform_provider.reporting import reporting

if TYPE_CHECKING:
    from collections.abc import Callable

    from controlplane.terraform_provider.client import FlowplaneClient
    from controlplane.terraform_provider.provider import FlowplaneProvider


SERVER_ID = Field(
    "server_id",
    Kind.STRING,
    "The id of the Flowplane server this object is on (`GET /api/v1/whoami`). Terraform "
    "refuses a plan when the endpoint now answers as another server.",
    computed=True,
)


class TerraformObject:
    """Base of the provider's resources and data sources.

    Subclasses declare ``NAME`` (without the provider prefix), ``DESCRIPTION``
    and ``FIELDS``; `tf` reads the name and schema through the classmethods.
    """

    NAME: ClassVar[str]
    DESCRIPTION: ClassVar[str]
    FIELDS: ClassVar[tuple[Field, ...]]
    # Resources record the server they live on in a computed ``server_id``.
    SERVER_TRACKED: ClassVar[bool] = False

    def __init__(self, provider: FlowplaneProvider) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        """Type name without the provider prefix."""
        return cls.NAME

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        """Run each field's validators; subclasses add cross-field checks and call this."""
        del type_name
        for field in self.FIELDS:
            for summary, detail in field.problems(config.get(field.name)):
                diags.add_error(summary, detail, path=[field.name])

    @classmethod
    def get_schema(cls) -> object:
        """The schema built from ``FIELDS``."""
        return build_schema(cls.schema_fields(), cls.DESCRIPTION)

    @classmethod
    def schema_fields(cls) -> tuple[Field, ...]:
        """``FIELDS``, and ``server_id`` for a resource."""
        return (*cls.FIELDS, SERVER_ID) if cls.SERVER_TRACKED else cls.FIELDS


class ServerResource(TerraformObject):
    """Base of the resources: the CRUD and import plumbing they all share.

    A subclass names its object (``LABEL``, ``MISSING``), the attributes that
    identify it (``IDENTITY``, also the parts of its import id), and supplies
    the three calls that differ: ``fetch``, ``remove`` and ``to_state``, plus
    ``put`` for the default create and update. Every call runs inside
    ``reporting``, so a failure becomes a diagnostic that names the object.
    """

    SERVER_TRACKED = True
    # How messages name the type: "read KV ops/region", "import flow ops/backup".
    LABEL: ClassVar[str]
    # Attributes naming the object, in import-id order: ("namespace", "key").
    IDENTITY: ClassVar[tuple[str, ...]]
    # The noun of "import …: no such <MISSING> on the server".
    MISSING: ClassVar[str]
    # ``<type>.<name> <id>`` shown when an import id has the wrong shape.
    IMPORT_EXAMPLE: ClassVar[str] = ""
    DELETE_VERB: ClassVar[str] = "delete"

    def fetch(self, client: FlowplaneClient, identity: State) -> dict[str, Any] | None:
        """The server's body for the object ``identity`` names; None when it is gone."""
        raise NotImplementedError

    def remove(self, client: FlowplaneClient, identity: State) -> None:
        """Delete the object; one already gone is not an error."""
        raise NotImplementedError

    def to_state(self, body: dict[str, Any], prior: State | None) -> State:
        """Terraform state from a read body; ``prior`` is None on import."""
        raise NotImplementedError

    def put(self, client: FlowplaneClient, planned: State, current: State | None) -> State | None:
        """Write ``planned`` (``current`` is None on create) and return the new state."""
        raise NotImplementedError

    def describe(self, state: State) -> str:
        """How messages name the object in ``state``: its identity, ``/``-joined."""
        return "/".join(str(state[name]) for name in self.IDENTITY)

    def plan(self, ctx: Context, current: State | None, planned: State) -> State:
        """`tf`'s hook, left as is: ``PlanningServicer`` calls ``modify_plan`` where one exists."""
        del ctx, current
        return planned

    def create(self, ctx: Context, planned: State) -> State | None:
        """``put`` the planned object."""
        return self.write(ctx, "create", planned, lambda client: self.put(client, planned, None))

    def read(self, ctx: Context, current: State) -> State | None:
        """The object as the server has it; None (recreate) when it is gone."""
        with reporting(ctx.diagnostics, f"read {self.LABEL} {self.describe(current)}"):
            body = self.fetch(self.provider.require_client(), current)
            return None if body is None else self.to_state(body, current)
        return current

    def update(self, ctx: Context, current: State, planned: State) -> State | None:
        """``put`` the planned object over the current one."""
        return self.write(ctx, "update", planned, lambda client: self.put(client, planned, current))

    def delete(self, ctx: Context, current: State) -> None:
        """Delete the object; one already gone is not an error."""
        with reporting(
            ctx.diagnostics, f"{self.DELETE_VERB} {self.LABEL} {self.describe(current)}"
        ):
            self.remove(self.provider.require_client(), current)

    def import_(self, ctx: Context, resource_id: str) -> State | None:
        """``terraform import <type>.<name> <id>``, the id being ``IDENTITY`` ``/``-joined."""
        identity = self.import_identity(resource_id)
        if identity is None:
            shape = "/".join(f"<{name}>" for name in self.IDENTITY)
            ctx.diagnostics.add_error(
                f"import {self.LABEL} {resource_id!r}: expected {shape}",
                f"For example: terraform import {self.IMPORT_EXAMPLE}",
            )
            return None
        with reporting(ctx.diagnostics, f"import {self.LABEL} {resource_id}"):
            body = self.fetch(self.provider.require_client(), identity)
            if body is None:
                ctx.diagnostics.add_error(
                    f"import {self.LABEL} {resource_id}: no such {self.MISSING} on the server"
                )
                return None
            return self.to_state(body, None)
        return None

    def import_identity(self, resource_id: str) -> State | None:
        """The identity an import id names; None when a two-part id lacks a part.

        The last ``/`` separates the parts: namespaces and keys hold none.
        """
        if len(self.IDENTITY) == 1:
            return {self.IDENTITY[0]: resource_id}
        head, _, tail = resource_id.rpartition("/")
        return dict(zip(self.IDENTITY, (head, tail), strict=True)) if head and tail else None

    def upgrade(self, ctx: Context, version: int, old: State) -> State:
        """Schema version 0 is the only one so far: the state is kept as is."""
        del ctx, version
        return old

    def write(
        self,
        ctx: Context,
        action: str,
        planned: State,
        send: Callable[[FlowplaneClient], State | None],
        path: list[Any] | None = None,
    ) -> State | None:
        """``send`` through the client, a failure reported against ``action`` and the object."""
        with reporting(ctx.diagnostics, f"{action} {self.LABEL} {self.describe(planned)}", path):
            return send(self.provider.require_client())
        return None


def with_pair_id(planned: State, first: str, second: str) -> State:
    """``planned`` with ``id`` set to ``<first>/<second>``, unknown until both are known."""
    a, b = planned.get(first), planned.get(second)
    known = isinstance(a, str) and isinstance(b, str)
    return {**planned, "id": f"{a}/{b}" if known else UNKNOWN}
