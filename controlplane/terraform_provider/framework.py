"""The one seam between this package and the `tf` provider framework.

`tf` ships no type information, so it is loaded with ``importlib`` here and
every other module sees only the small typed surface below: protocols for the
objects `tf` hands to resources, a ``Field`` description that becomes a `tf`
schema, and the ``UNKNOWN`` sentinel. Resources do not subclass `tf`'s
protocols; `tf` calls them by duck typing, which is all it needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from controlplane.terraform_provider import protocol

# Before any `tf` module loads its own tfplugin6 classes: ours add write_only.
protocol.install()
_tf_schema = importlib.import_module("tf.schema")
_tf_types = importlib.import_module("tf.types")
_tf_utils = importlib.import_module("tf.utils")

State = dict[str, Any]
"""A resource's attribute values by name; a value may be ``UNKNOWN`` in a plan."""

UNKNOWN: object = _tf_types.Unknown
"""`tf`'s marker for a value Terraform will only know after apply."""


class Diagnostics(Protocol):
    """The diagnostics list `tf` passes in every context; errors stop Terraform."""

    def add_error(self, summary: str, detail: str = "", path: list[Any] | None = None) -> object:
        """Record an error."""

    def add_warning(self, summary: str, detail: str = "", path: list[Any] | None = None) -> object:
        """Record a warning."""

    def has_errors(self) -> bool:
        """Whether an error was recorded."""

    def to_pb(self) -> list[Any]:
        """The protobuf messages Terraform receives."""


class Context(Protocol):
    """What `tf` passes to every resource and data source call."""

    @property
    def diagnostics(self) -> Diagnostics:
        """Where failures are reported."""

    @property
    def type_name(self) -> str:
        """The full type name, e.g. ``flowplane_flow``."""


def new_diagnostics() -> Diagnostics:
    """An empty `tf` diagnostics list, for calls `tf` itself does not make."""
    diagnostics: Diagnostics = _tf_utils.Diagnostics()
    return diagnostics


class Kind(Enum):
    """The attribute types this provider uses."""

    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"
    STRING_MAP = "map(string)"
    STRING_LIST = "list(string)"

    def to_tf(self) -> object:
        """The matching `tf.types` instance."""
        if self is Kind.STRING:
            return _tf_types.String()
        if self is Kind.NUMBER:
            return _tf_types.Number()
        if self is Kind.BOOL:
            return _tf_types.Bool()
        if self is Kind.STRING_LIST:
            return _tf_types.List(_tf_types.String())
        return _tf_types.Map(_tf_types.String())


@dataclass(frozen=True)
class Field:
    """One attribute of a schema, described without touching `tf`."""

    name: str
    kind: Kind
    description: str
    required: bool = False
    optional: bool = False
    computed: bool = False
    sensitive: bool = False
    requires_replace: bool = False
    write_only: bool = False
    # Plan-time checks of a known value: (summary, detail) when the server would refuse it.
    validators: tuple[Callable[[object], tuple[str, str] | None], ...] = ()

    def problems(self, value: object) -> list[tuple[str, str]]:
        """What the validators find wrong with ``value``; nothing for unset or unknown values."""
        if unknown_or_none(value):
            return []
        return [p for check in self.validators if (p := check(value)) is not None]

    def to_tf(self) -> object:
        """The matching `tf.schema.Attribute` (write-only ones set the protocol flag)."""
        klass = _WriteOnlyAttribute if self.write_only else _tf_schema.Attribute
        return klass(
            self.name,
            self.kind.to_tf(),
            description=self.description,
            required=self.required,
            optional=self.optional,
            computed=self.computed,
            sensitive=self.sensitive,
            requires_replace=self.requires_replace,
        )


class _WriteOnlyAttribute(_tf_schema.Attribute):  # type: ignore[misc,name-defined]
    """`tf`'s attribute, marked ``write_only`` in the schema Terraform receives."""

    def to_pb(self) -> Any:
        message = super().to_pb()
        message.write_only = True
        return message


def build_schema(fields: tuple[Field, ...], description: str) -> object:
    """A `tf.schema.Schema` at version 0 made of ``fields``."""
    return _tf_schema.Schema(
        attributes=[f.to_tf() for f in fields],
        description=description,
        version=0,
    )


def unknown_or_none(value: object) -> bool:
    """Whether ``value`` is not yet usable: unset (None) or unknown until apply."""
    return value is None or value is UNKNOWN
