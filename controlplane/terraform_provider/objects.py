"""What every resource and data source shares: its name, schema and provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from controlplane.terraform_provider.framework import (
    Diagnostics,
    Field,
    Kind,
    State,
    build_schema,
)

if TYPE_CHECKING:
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
