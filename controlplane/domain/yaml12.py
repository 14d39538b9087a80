"""A PyYAML loader that reads scalars as YAML 1.2 (core schema), as Kestra does.

PyYAML implements YAML 1.1, where ``yes``, ``no``, ``on``, ``off``, ``y`` and
``n`` are booleans, ``1:30`` is a base-60 number, ``017`` is octal and
``2023-01-01`` is a date. Kestra reads flows as YAML 1.2, so ``country: NO``
or ``message: on`` are strings there; reading them as booleans would refuse
valid flows. Only the scalar resolution changes: the C parser is kept.

The core schema (YAML 1.2.2, section 10.3.2), applied to plain scalars only
(a quoted scalar is always a string):

====================================================  ===============
``null``, ``Null``, ``NULL``, ``~``, empty             null
``true``, ``True``, ``TRUE``, ``false`` …              bool
``[-+]?[0-9]+``, ``0o[0-7]+``, ``0x[0-9a-fA-F]+``      int
``1.5``, ``.5``, ``1e3``, ``-.inf``, ``.nan`` …        float
anything else                                          str
====================================================  ===============

The merge key ``<<`` stays, as in Kestra's parser.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError

_Base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
MERGE_TAG = "tag:yaml.org,2002:merge"

_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_DIGITS = "0123456789"
_DECIMAL = re.compile(r"[-+]?[0-9]+\Z")
_INT = re.compile(r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT = re.compile(
    r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)

# (tag, pattern, the characters a matching scalar can start with); "" is the empty scalar.
_CORE_SCHEMA: tuple[tuple[str, str, str | list[str]], ...] = (
    (NULL_TAG, r"(?:~|null|Null|NULL|)\Z", ["~", "n", "N", ""]),
    (BOOL_TAG, r"(?:true|True|TRUE|false|False|FALSE)\Z", "tTfF"),
    (INT_TAG, _INT.pattern, "-+" + _DIGITS),
    (FLOAT_TAG, _FLOAT.pattern, "-+." + _DIGITS),
    (MERGE_TAG, r"<<\Z", "<"),
)


class Yaml12Loader(_Base):  # type: ignore[misc]
    """The safe loader (C parser when available) with YAML 1.2 core-schema scalars."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012 - PyYAML's class-level registry

    def construct_yaml12_bool(self, node: yaml.ScalarNode) -> bool:
        """``true``/``false`` in three spellings; YAML 1.1's ``yes``/``on`` are not booleans."""
        value = self.construct_scalar(node)
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise _bad_scalar(node, value, "boolean")

    def construct_yaml12_int(self, node: yaml.ScalarNode) -> int:
        """Decimal, ``0o`` octal or ``0x`` hex; no base 60, no ``_`` separators."""
        value = str(self.construct_scalar(node))
        if not _INT.match(value):
            raise _bad_scalar(node, value[:40], "integer")
        try:
            # Base 0 reads the 0o/0x prefix; a decimal "017" is 17, not octal.
            return int(value, 10) if _DECIMAL.match(value) else int(value, 0)
        except ValueError:  # more digits than Python converts
            raise _bad_scalar(node, value[:40], "integer of a supported size") from None

    def construct_yaml12_float(self, node: yaml.ScalarNode) -> float:
        """Decimal and exponent forms, ``±.inf`` and ``.nan``."""
        value = str(self.construct_scalar(node))
        if not _FLOAT.match(value):  # Python's float() would also take "1_0" or "infinity"
            raise _bad_scalar(node, value[:40], "float")
        unsigned = value.lstrip("+-").lower()
        if unsigned == ".inf":
            return -math.inf if value.startswith("-") else math.inf
        if unsigned == ".nan":
            return math.nan
        return float(value)


def _bad_scalar(node: yaml.ScalarNode, value: object, kind: str) -> ConstructorError:
    return ConstructorError(None, None, f"{value!r} is not a YAML 1.2 {kind}", node.start_mark)


for _tag, _pattern, _first in _CORE_SCHEMA:
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
Yaml12Loader.add_constructor(BOOL_TAG, Yaml12Loader.construct_yaml12_bool)
Yaml12Loader.add_constructor(INT_TAG, Yaml12Loader.construct_yaml12_int)
Yaml12Loader.add_constructor(FLOAT_TAG, Yaml12Loader.construct_yaml12_float)
