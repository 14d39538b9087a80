"""What every resource and data source shares: its name, schema and provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from controlplane.terraform_provider.framework import Field, build_schema

if TYPE_CHECKING:
    from controlplane.terraform_provider.provider import FlowplaneProvider


class TerraformObject:
    """Base of the provider's resources and data sources.

    Subclasses declare ``NAME`` (without the provider prefix), ``DESCRIPTION``
    and ``FIELDS``; `tf` reads the name and schema through the classmethods.
    """

    NAME: ClassVar[str]
    DESCRIPTION: ClassVar[str]
    FIELDS: ClassVar[tuple[Field, ...]]

    def __init__(self, provider: FlowplaneProvider) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        """Type name without the provider prefix."""
        return cls.NAME

    @classmethod
    def get_schema(cls) -> object:
        """The schema built from ``FIELDS``."""
        return build_schema(cls.FIELDS, cls.DESCRIPTION)
