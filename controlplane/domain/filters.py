"""Kestra's and Pebble's filters, functions and tests that Jinja lacks or reads differently.

Each follows the Java implementation it stands for (Pebble's ``CoreExtension``
and Kestra's ``runners.pebble.Extension``): ``capitalize`` leaves the rest of
the word alone, ``slice`` takes indexes, ``replace`` takes a map, ``split``
takes a regular expression, ``urlencode`` encodes as a form does. Every one
stays inside the render's cost bounds (:mod:`controlplane.domain.cost`): it
checks the time, refuses a result it can predict to be too large before
building it, and its result is measured by ``bounded_filter`` or the sandbox.

``jq`` runs in a short-lived child process with CPU, memory and output
limits: a jq program is a language of its own (``repeat``, string repetition,
recursion) whose cost nothing inside this process could stop.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import secrets
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Final

import yaml
from jinja2 import Undefined, pass_environment
from jinja2.filters import do_sort

from controlplane.domain.cost import (
    MAX_RENDER_SECONDS,
    MAX_TEXT_SIZE,
    CostBoundError,
    check_result,
    check_time,
    refuse_text,
    text_size,
)

if TYPE_CHECKING:
    from jinja2.environment import Environment

# A jq child may use this much memory and CPU; its output is read up to
# MAX_TEXT_SIZE. The wall-clock guard only catches a child that hangs.
_JQ_MEMORY: Final = 512 * 1024 * 1024
_JQ_WALL_SECONDS: Final = 30
_MAX_JQ_PROGRAM: Final = 4096
_ELLIPSIS: Final = "..."
# Regular expressions that can backtrack exponentially: a quantified group
# holding a quantifier, or a back-reference.
_NESTED_QUANTIFIER: Final = re.compile(r"\((?:[^()\\]|\\.)*[*+}](?:[^()\\]|\\.)*\)\s*[*+{?]")
_BACKREFERENCE: Final = re.compile(r"\\[1-9]|\(\?P=")
_JAVA_GROUP_REF: Final = re.compile(r"\\(.)|\$(\d+)|\$\{(\w+)\}")
_JAVA_NAMES: Final = {
    bool: "java.lang.Boolean",
    int: "java.lang.Integer",
    float: "java.lang.Double",
    str: "java.lang.String",
    list: "java.util.ArrayList",
    tuple: "java.util.ArrayList",
    dict: "java.util.LinkedHashMap",
}
_NUMBER_TYPES: Final[dict[str, Callable[[Any], int | float | Decimal]]] = {
    "INT": int,
    "INTEGER": int,
    "LONG": int,
    "BIGINTEGER": int,
    "FLOAT": float,
    "DOUBLE": float,
    "BIGDECIMAL": Decimal,
}
_ESCAPES: Final = {"single": ("'", "\\'"), "double": ('"', '\\"'), "shell": ("'", "'\\''")}


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def checked_regex(pattern: str) -> re.Pattern[str]:
    """Compile a template's regular expression, refusing the shapes that backtrack exponentially."""
    refuse_text(len(pattern))
    if _NESTED_QUANTIFIER.search(pattern) or _BACKREFERENCE.search(pattern):
        raise CostBoundError(
            f"regular expression {pattern!r} could backtrack without end"
            " (a repeated group that repeats inside, or a back-reference)"
        )
    return re.compile(pattern)


# -- Strings --------------------------------------------------------------------------


def abbreviate(value: object, length: int) -> str:
    """Cut to ``length`` characters, the ellipsis included (Pebble's ``abbreviate``)."""
    text = _text(value)
    if length < 0:
        raise ValueError("abbreviate needs a length of 0 or more")
    if len(text) <= length:
        return text
    if length <= len(_ELLIPSIS):
        return _ELLIPSIS[:length]
    return text[: length - len(_ELLIPSIS)] + _ELLIPSIS


def capitalize(value: object) -> str:
    """Upper-case the first letter; leave the rest as it is (Pebble, unlike Jinja)."""
    text = _text(value)
    return text[:1].upper() + text[1:]


def title(value: object) -> str:
    """Upper-case the first letter of each word; leave the rest as it is (Pebble)."""
    return re.sub(r"(^|\s)(\S)", lambda m: m[1] + m[2].upper(), _text(value))


def substring_before(value: object, separator: str) -> str:
    """The text before the first ``separator``; all of it when absent (Apache StringUtils)."""
    text = _text(value)
    if not separator:
        return ""
    index = text.find(separator)
    return text if index < 0 else text[:index]


def substring_after(value: object, separator: str) -> str:
    """The text after the first ``separator``; nothing when absent."""
    text = _text(value)
    index = text.find(separator)
    return "" if index < 0 else text[index + len(separator) :]


def substring_before_last(value: object, separator: str) -> str:
    """The text before the last ``separator``; all of it when absent."""
    text = _text(value)
    index = text.rfind(separator) if separator else -1
    return text if index < 0 else text[:index]


def substring_after_last(value: object, separator: str) -> str:
    """The text after the last ``separator``; nothing when absent."""
    text = _text(value)
    index = text.rfind(separator) if separator else -1
    return "" if index < 0 else text[index + len(separator) :]


def starts_with(value: object, prefix: str) -> bool:
    """Whether the text starts with ``prefix``."""
    return _text(value).startswith(prefix)


def ends_with(value: object, suffix: str) -> bool:
    """Whether the text ends with ``suffix``."""
    return _text(value).endswith(suffix)


def _java_replacement(template: str, match: re.Match[str]) -> str:
    r"""Expand ``$1``, ``${name}`` and ``\$`` as Java's ``replaceAll`` does."""

    def expand(found: re.Match[str]) -> str:
        if found[1] is not None:
            return found[1]
        return match[int(found[2])] if found[2] is not None else match[found[3]]

    return _JAVA_GROUP_REF.sub(expand, template)


def _bounded_sub(pattern: re.Pattern[str], new: str, text: str, *, regexp: bool) -> str:
    """``pattern.sub``, refusing the result as soon as it would grow past the text bound."""
    grown = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal grown
        replacement = _java_replacement(new, match) if regexp else new
        grown += len(replacement) - len(match[0])
        refuse_text(len(text) + grown)
        return replacement

    return pattern.sub(replace, text)


def pebble_replace(
    jinja_replace: Callable[..., Any],
) -> Callable[..., Any]:
    """``replace({'old': 'new'}, regexp=false)`` as Pebble, or Jinja's ``replace(old, new)``."""

    @pass_environment
    def replace(environment: Environment, value: object, *args: Any, **kwargs: Any) -> Any:
        if not (args and isinstance(args[0], Mapping)):
            return jinja_replace(environment, value, *args, **kwargs)
        regexp = bool(kwargs.pop("regexp", args[1] if len(args) > 1 else False))
        text = _text(value)
        for old, new in args[0].items():
            check_time()
            pattern = checked_regex(_text(old)) if regexp else re.compile(re.escape(_text(old)))
            text = _bounded_sub(pattern, _text(new), text, regexp=regexp)
        return text

    return replace


def split(value: object, delimiter: str, limit: int | None = None) -> list[str]:
    """Java's ``String.split``: ``delimiter`` is a regular expression; trailing empties go."""
    text = _text(value)
    if not delimiter:
        refuse_text(3 * len(text))  # one short string per character
        parts = list(text)
    else:
        pattern = checked_regex(delimiter)
        parts = pattern.split(text, maxsplit=max(limit - 1, 0) if limit and limit > 0 else 0)
    if not limit:
        while parts and not parts[-1]:
            parts.pop()
    return parts


def escape_char(value: object, type: str) -> object:  # noqa: A002 - Kestra's argument name
    """Escape quotes for a ``single``- or ``double``-quoted string, or a ``shell`` word."""
    if value is None:
        return None
    if type not in _ESCAPES:
        raise ValueError(f"escapeChar type must be one of {sorted(_ESCAPES)}, not {type!r}")
    text = _text(value)
    quote, escaped = _ESCAPES[type]
    refuse_text(len(text) + text.count(quote) * (len(escaped) - 1))
    return text.replace(quote, escaped)


def urlencode(value: object) -> str:
    """Encode as an HTML form does (space as ``+``), like Java's ``URLEncoder``."""
    text = _text(value)
    refuse_text(len(text))
    return urllib.parse.quote_plus(text, safe="*")


def urldecode(value: object) -> str:
    """Decode a form-encoded string (``+`` as space)."""
    return urllib.parse.unquote_plus(_text(value))


def base64encode(value: object) -> str:
    """Base64 of the text's UTF-8 bytes."""
    data = _text(value).encode()
    refuse_text(4 * (len(data) // 3 + 1))
    return base64.b64encode(data).decode()


def base64decode(value: object) -> str:
    """Decode base64 to UTF-8 text; invalid input is an error."""
    return base64.b64decode(_text(value), validate=True).decode()


def _digest(name: str) -> Callable[[object], str]:
    def digest(value: object) -> str:
        return hashlib.new(name, _text(value).encode()).hexdigest()

    digest.__name__ = name
    digest.__doc__ = f"The hex {name} of the text's UTF-8 bytes."
    return digest


sha1, sha256, sha512, md5 = (_digest(name) for name in ("sha1", "sha256", "sha512", "md5"))


def nindent(value: object, width: int = 4) -> str:
    """A newline, then every line indented by ``width`` spaces (Kestra's ``nindent``)."""
    text = _text(value)
    refuse_text(len(text) + 1 + (text.count("\n") + 1) * max(width, 0))
    return "\n" + "\n".join(" " * width + line for line in text.split("\n"))


def number_format(value: object, pattern: str) -> str:
    """Pebble's ``numberformat`` for the usual Java patterns (``#,##0.00``, ``0.#``)."""
    number = Decimal(str(value))
    integer, _, fraction = pattern.partition(".")
    places_max = sum(1 for c in fraction if c in "0#")
    places_min = fraction.count("0")
    rounded = number.quantize(Decimal(1).scaleb(-places_max), rounding=ROUND_HALF_EVEN)
    text = f"{abs(rounded):,.{places_max}f}" if "," in integer else f"{abs(rounded):.{places_max}f}"
    if places_max > places_min:
        whole, _, digits = text.partition(".")
        digits = digits.rstrip("0").ljust(places_min, "0")
        text = f"{whole}.{digits}" if digits else whole
    return ("-" if rounded < 0 else "") + text


# -- Collections -----------------------------------------------------------------------


def values(value: Mapping[Any, Any]) -> list[Any]:
    """The values of a map, in order."""
    return list(value.values())


def length(value: object) -> int:
    """Items of a list or map, characters of a string; null has none."""
    if value is None:
        return 0
    if isinstance(value, Iterable) and not isinstance(value, str | Mapping | list | tuple):
        return sum(1 for _ in value)
    return len(value)  # type: ignore[arg-type]


@pass_environment
def sort(
    environment: Environment,
    value: Iterable[Any],
    reverse: bool = False,
    case_sensitive: bool = True,
    attribute: str | int | None = None,
) -> list[Any]:
    """Pebble's natural order (case-sensitive), with Jinja's optional arguments."""
    return do_sort(environment, value, reverse, case_sensitive, attribute)


@pass_environment
def rsort(environment: Environment, value: Iterable[Any]) -> list[Any]:
    """Sort in reverse natural order."""
    return do_sort(environment, value, True, True, None)  # noqa: FBT003 - positional in Jinja


def reverse(value: object) -> object:
    """A reversed string or list (Jinja would give an iterator for a list)."""
    if isinstance(value, str):
        return value[::-1]
    return list(reversed(list(value)))  # type: ignore[call-overload]


def merge(value: object, other: object) -> object:
    """A list followed by another, or a map updated by another (Pebble's ``merge``)."""
    refuse_text(text_size(value) + text_size(other))
    if isinstance(value, Mapping) and isinstance(other, Mapping):
        return {**value, **other}
    if isinstance(value, list | tuple) and isinstance(other, list | tuple):
        return [*value, *other]
    if isinstance(value, list | tuple) and isinstance(other, Mapping):
        return [*value, *other.items()]
    raise TypeError(
        f"merge needs two lists or two maps, not {type(value).__name__} and {type(other).__name__}"
    )


def pebble_slice(value: object, fromIndex: int = 0, toIndex: int | None = None) -> object:  # noqa: N803 - Pebble's argument names
    """The part of a string or list from ``fromIndex`` up to (not including) ``toIndex``."""
    if not isinstance(value, str | list | tuple):
        raise TypeError(f"slice needs a string or a list, not {type(value).__name__}")
    end = len(value) if toIndex is None else toIndex
    if not 0 <= fromIndex <= end <= len(value):
        raise IndexError(f"slice({fromIndex}, {end}) is outside 0..{len(value)}")
    part = value[fromIndex:end]
    return list(part) if isinstance(part, tuple) else part


def chunk(value: Iterable[Any], size: int) -> list[list[Any]]:
    """Lists of ``size`` items (the last one may be shorter)."""
    if size < 1:
        raise ValueError("chunk needs a size of 1 or more")
    items = list(value)
    return [items[start : start + size] for start in range(0, len(items), size)]


def distinct(value: Iterable[Any]) -> list[Any]:
    """The items in their first order, each once."""
    seen: list[Any] = []
    hashable: set[Any] = set()
    for item in value:
        check_time()  # unhashable items compare one by one
        try:
            if item in hashable:
                continue
            hashable.add(item)
        except TypeError:
            if item in seen:
                continue
        seen.append(item)
    return seen


def flatten(value: Iterable[Any]) -> list[Any]:
    """One level of nested lists spread into the list."""
    flat: list[Any] = []
    for item in value:
        if isinstance(item, list | tuple):
            flat.extend(item)
        else:
            flat.append(item)
    return flat


def number(value: object, type: str | None = None) -> int | float | Decimal:  # noqa: A002 - Kestra's argument name
    """Read a number; ``type`` (INT, LONG, FLOAT, DOUBLE, BIGDECIMAL...) forces its kind."""
    if type is not None:
        kind = _NUMBER_TYPES.get(type.upper())
        if kind is None:
            raise ValueError(f"number type must be one of {sorted(_NUMBER_TYPES)}, not {type!r}")
        text = _text(value).strip()
        return kind(float(text)) if kind is int and "." in text else kind(text)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = _text(value).strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def class_name(value: object) -> str | None:
    """The Java class Kestra would report for the value."""
    if value is None:
        return None
    for kind, name in _JAVA_NAMES.items():
        if type(value) is kind:
            return name
    if isinstance(value, Mapping):
        return "java.util.LinkedHashMap"
    return type(value).__name__


def to_yaml(value: object) -> str:
    """The value as a YAML document (Kestra's ``yaml`` filter)."""
    refuse_text(text_size(value))
    return yaml.safe_dump(
        json.loads(json.dumps(value, default=str)),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )


# -- jq ------------------------------------------------------------------------------------

# The child: set its limits, run the program, print each result as one JSON
# line, and stop once the output is over the bound.
_JQ_CHILD: Final = """
import json, resource, sys
memory, seconds, limit = (int(arg) for arg in sys.argv[1:4])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))
import jq
request = json.load(sys.stdin)
written = 0
try:
    for result in jq.compile(request["program"]).input_text(request["input"]):
        line = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
        written += len(line) + 1
        if written > limit:
            sys.stdout.write("!size\\n")
            break
        sys.stdout.write(line + "\\n")
except ValueError as exc:
    sys.stdout.write("!error " + str(exc).replace("\\n", " ") + "\\n")
"""


def jq(value: object, program: str) -> list[Any]:
    """Run a jq program on the value; its results, always as a list (Kestra's ``jq``)."""
    if not isinstance(program, str) or len(program) > _MAX_JQ_PROGRAM:
        raise ValueError(f"jq needs a program of at most {_MAX_JQ_PROGRAM} characters")
    check_time()
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    refuse_text(len(data))
    command = [
        sys.executable,
        "-I",
        "-c",
        _JQ_CHILD,
        str(_JQ_MEMORY),
        str(math.ceil(MAX_RENDER_SECONDS)),
        str(MAX_TEXT_SIZE),
    ]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and script, no shell
            command,
            input=json.dumps({"program": program, "input": data}),
            capture_output=True,
            text=True,
            timeout=_JQ_WALL_SECONDS,
            check=False,
            env={},
        )
    except subprocess.TimeoutExpired as exc:
        raise CostBoundError(f"jq program ran over {_JQ_WALL_SECONDS} s") from exc
    lines = done.stdout.splitlines()
    if lines and lines[-1] == "!size":
        refuse_text(MAX_TEXT_SIZE + 1)
    if lines and lines[-1].startswith("!error "):
        raise ValueError(f"jq {program!r}: {lines[-1].removeprefix('!error ')}")
    if done.returncode != 0:
        if done.returncode < 0 or "MemoryError" in done.stderr:
            raise CostBoundError(
                f"jq program used over {MAX_RENDER_SECONDS:g} s of CPU"
                f" or {_JQ_MEMORY // 2**20} MiB of memory"
            )
        reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise ValueError(f"jq {program!r}: {reason}")
    return check_result([json.loads(line) for line in lines])  # type: ignore[no-any-return]


# -- Functions --------------------------------------------------------------------------------


def pebble_max(*numbers: Any) -> Any:
    """The largest argument (Pebble's ``max(a, b, ...)``)."""
    return max(numbers)


def pebble_min(*numbers: Any) -> Any:
    """The smallest argument."""
    return min(numbers)


def new_uuid() -> str:
    """A random UUID."""
    return str(uuid.uuid4())


def new_id() -> str:
    """A short unique id, as Kestra's ``id()`` (22 base62 characters)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    number = uuid.uuid4().int
    chars = []
    while number:
        number, digit = divmod(number, 62)
        chars.append(alphabet[digit])
    return "".join(reversed(chars)).rjust(22, "0")


def random_int(lower: int, upper: int) -> int:
    """A random integer from ``lower`` (included) to ``upper`` (excluded)."""
    if upper <= lower:
        raise ValueError("randomInt needs lower < upper")
    return lower + secrets.randbelow(upper - lower)


def random_port() -> int:
    """A random unprivileged TCP port number."""
    return random.randint(1024, 65535)  # noqa: S311 - not a secret


# -- Tests ---------------------------------------------------------------------------------------


def is_empty(value: object) -> bool:
    """Pebble's ``empty``: null, a blank string, an empty list or map."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | set | frozenset | Mapping):
        return len(value) == 0
    return False


def is_null(value: object) -> bool:
    """Pebble's ``null`` test; an undefined variable is an error, as with strict variables."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises here, naming the variable
    return value is None


def is_map(value: object) -> bool:
    """Pebble's ``map`` test."""
    return isinstance(value, Mapping)


def is_json(value: object) -> bool:
    """Kestra's ``json`` test: a string that parses as JSON."""
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True
