"""Kestra (Pebble) expressions: syntax checks and rendering.

Templates are rendered by a sandboxed Jinja2 environment with ``StrictUndefined``
that also understands Pebble's ``??``, ``???``, ``c ? a : b`` and ``null``
(see :mod:`controlplane.domain.pebble`), and that offers the Kestra functions
and filters flows use most. Output follows Kestra: maps and lists print as
compact JSON, datetimes as ISO-8601 (``Z`` for UTC), booleans as ``true`` /
``false`` and null as nothing.

Every render is bounded in cost (integer and text sizes, ``range()``, loop
iterations, CPU time; see "Cost bounds" in :mod:`controlplane.domain.pebble`):
exceeding a bound is a :class:`RenderError` that names it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, Undefined, pass_context

from controlplane.domain import filters
from controlplane.domain.cost import bounded_filter
from controlplane.domain.parse import load_yaml
from controlplane.domain.pebble import PebbleEnvironment

if TYPE_CHECKING:
    from jinja2.environment import Environment
    from jinja2.runtime import Context
    from jinja2.sandbox import SandboxedEnvironment

_D = TypeVar("_D", bound=dt.date)


class RenderError(ValueError):
    """A template could not be rendered; the message says what and where."""


@dataclass(frozen=True)
class ExpressionSyntaxError:
    """Where and why a template does not parse."""

    message: str
    line: int
    column: int | None


def is_templated(text: str) -> bool:
    """Tell whether text contains '{{' or '{%' (i.e. needs rendering)."""
    return "{{" in text or "{%" in text


def check_syntax(text: str) -> ExpressionSyntaxError | None:
    """Parse without rendering; None when the template is valid.

    Only the grammar is checked: unknown filters and variables surface when
    rendering, since the engine may register more of them than we know here.
    """
    try:
        _default_environment().parse(text)
    except TemplateSyntaxError as exc:
        return _syntax_error(exc, text)
    return None


def create_environment() -> SandboxedEnvironment:
    """Build a sandboxed environment with StrictUndefined, Pebble operators and Kestra helpers."""
    # Pebble as configured by Kestra neither trims newlines after tags nor
    # drops the template's final newline, and never escapes HTML.
    env = PebbleEnvironment(
        undefined=StrictUndefined,
        finalize=_finalize,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.globals.update(
        now=_now,
        json=_from_json,
        fromJson=_from_json,
        yaml=_from_yaml,
        render=_render_again,
        renderOnce=_render_once,
        secret=_secret,
        read=_read,
        dayOfWeek=_day_of_week,
        dayOfMonth=_day_of_month,
        monthOfYear=_month_of_year,
        hourOfDay=_hour_of_day,
        isWeekend=_is_weekend,
        isDayWeekInMonth=_is_day_week_in_month,
        printContext=_print_context,
        fetchContext=_print_context,
        max=filters.pebble_max,
        min=filters.pebble_min,
        uuid=filters.new_uuid,
        id=filters.new_id,
        randomInt=filters.random_int,
        randomPort=filters.random_port,
    )
    kestra_filters: dict[str, Callable[..., Any]] = {
        "json": _to_json,
        "toJson": _to_json,
        "yaml": filters.to_yaml,
        "jq": filters.jq,
        "date": _date,
        "dateAdd": _date_add,
        "timestamp": functools.partial(_timestamp, scale=1),
        "timestampMilli": functools.partial(_timestamp, scale=10**3),
        "timestampMicro": functools.partial(_timestamp, scale=10**6),
        "timestampNano": functools.partial(_timestamp, scale=10**9),
        "keys": _keys,
        "values": filters.values,
        "number": filters.number,
        "numberformat": filters.number_format,
        "className": filters.class_name,
        "slugify": _slugify,
        "default": _default,
        "d": _default,
        "abbreviate": filters.abbreviate,
        "capitalize": filters.capitalize,
        "title": filters.title,
        "substringBefore": filters.substring_before,
        "substringAfter": filters.substring_after,
        "substringBeforeLast": filters.substring_before_last,
        "substringAfterLast": filters.substring_after_last,
        "startsWith": filters.starts_with,
        "endsWith": filters.ends_with,
        "replace": filters.pebble_replace(env.filters["replace"]),
        "split": filters.split,
        "escapeChar": filters.escape_char,
        "urlencode": filters.urlencode,
        "urldecode": filters.urldecode,
        "base64encode": filters.base64encode,
        "base64decode": filters.base64decode,
        "sha1": filters.sha1,
        "sha256": filters.sha256,
        "sha512": filters.sha512,
        "md5": filters.md5,
        "nindent": filters.nindent,
        "length": filters.length,
        "sort": filters.sort,
        "rsort": filters.rsort,
        "reverse": filters.reverse,
        "merge": filters.merge,
        "slice": filters.pebble_slice,
        "chunk": filters.chunk,
        "distinct": filters.distinct,
        "flatten": filters.flatten,
    }
    # Named apart from Jinja's filters so that the size checks written for
    # Jinja's signatures (replace, slice...) do not apply to ours.
    env.filters.update(
        {name: bounded_filter(f"kestra.{name}", f) for name, f in kestra_filters.items()}
    )
    env.tests.update(
        null=filters.is_null,
        empty=filters.is_empty,
        map=filters.is_map,
        json=filters.is_json,
    )
    return env


def render(text: str, context: Mapping[str, Any], *, env: Environment | None = None) -> str:
    """Render a template string; raise RenderError naming what failed."""
    environment = env if env is not None else _default_environment()
    if "{" not in text:  # nothing Jinja could act on: skip the parse entirely
        return text
    try:
        template = (
            environment.template(text)
            if isinstance(environment, PebbleEnvironment)
            else environment.from_string(text)
        )
    except TemplateSyntaxError as exc:
        error = _syntax_error(exc, text)
        raise RenderError(f"invalid expression at line {error.line}: {error.message}") from exc
    try:
        return template.render(context)
    except RenderError:
        raise
    except Exception as exc:
        # Filters and functions raise whatever Python raises; callers get one type.
        raise RenderError(_describe_failure(exc, text)) from exc


def render_value(
    value: Any,
    context: Mapping[str, Any],
    *,
    env: Environment | None = None,
) -> Any:
    """Recursively render strings inside dicts/lists; non-strings pass through.

    Map keys are rendered too, as Kestra does.
    """
    if isinstance(value, str):
        return render(value, context, env=env)
    if isinstance(value, Mapping):
        return {
            render_value(key, context, env=env): render_value(item, context, env=env)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(render_value(item, context, env=env) for item in value)
    return value


@functools.cache
def _default_environment() -> SandboxedEnvironment:
    return create_environment()


def _syntax_error(exc: TemplateSyntaxError, text: str) -> ExpressionSyntaxError:
    message = " ".join((exc.message or "invalid template").split())
    message = message.replace("Jinja was looking for", "expected")
    column = None
    # The lexer reports "unexpected char 'x' at <offset>": turn the offset into a column.
    found = re.search(r" at (\d+)$", message)
    if found:
        message = message[: found.start()]
        offset = int(found[1])
        source = "\n".join(re.split(r"\r\n|\r|\n", text))
        column = offset - source.rfind("\n", 0, offset)
    return ExpressionSyntaxError(message=message, line=exc.lineno, column=column)


def _describe_failure(exc: Exception, text: str) -> str:
    if isinstance(exc, TemplateError):
        message = (exc.message or type(exc).__name__).rstrip(".")
    else:
        message = f"{type(exc).__name__}: {exc}"
    # Jinja rewrites tracebacks so template frames carry template line numbers.
    line = None
    trace = exc.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    lines = text.splitlines()
    if line is None or not 0 < line <= len(lines):
        return f"{message} in {_shorten(text)!r}"
    return f"{message} at line {line}: {_shorten(lines[line - 1].strip())!r}"


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- Output -------------------------------------------------------------------------


def _iso(value: dt.date | dt.time) -> str:
    text = value.isoformat()
    if isinstance(value, dt.datetime | dt.time) and value.utcoffset() == dt.timedelta(0):
        text = text.removesuffix("+00:00") + "Z"
    return text


def _finalize(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):
        return _iso(value)
    if isinstance(value, Mapping | list | tuple):
        return _to_json(value)
    return value


def _json_default(value: object) -> object:
    if isinstance(value, dt.date | dt.time):
        return _iso(value)
    if isinstance(value, Undefined):
        return str(value)  # StrictUndefined raises here, naming the variable
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _to_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


# -- Functions ------------------------------------------------------------------------


def _now(timeZone: str | None = None) -> dt.datetime:  # noqa: N803 - Kestra's argument name
    return dt.datetime.now(_zone(timeZone))


def _from_json(value: object) -> object:
    if isinstance(value, Undefined):
        str(value)  # raises for StrictUndefined
    return json.loads(value) if isinstance(value, str) else value


def _from_yaml(value: str) -> object:
    # The same YAML 1.2 reading, alias-bomb and depth limits as flows.
    return load_yaml(value)


@pass_context
def _render_again(context: Context, value: object, recursive: bool = True) -> object:
    """Kestra's ``render``: render again until nothing changes (once if not ``recursive``).

    Every round spends from the caller's budget, so a template that keeps
    producing new templates stops at the render's time or size bound.
    """
    rendered = value
    while isinstance(rendered, str) and is_templated(rendered):
        again = render(rendered, context.get_all(), env=context.environment)
        if again == rendered or not recursive:
            return again
        rendered = again
    return rendered


@pass_context
def _render_once(context: Context, value: object) -> object:
    return _render_again(context, value, recursive=False)


@pass_context
def _print_context(context: Context) -> dict[str, Any]:
    """The variables a template sees (Kestra's ``printContext``), without functions or internals."""
    return {
        name: value
        for name, value in context.get_all().items()
        if not name.startswith("__") and not callable(value)
    }


@pass_context
def _secret(context: Context, key: str) -> str:
    lookup = context.get("__secret_lookup")
    if not callable(lookup):
        raise RenderError(f"secret '{key}' is not available")
    try:
        value = lookup(key)
    except KeyError as exc:
        raise RenderError(f"secret '{key}' is not available") from exc
    if value is None:
        raise RenderError(f"secret '{key}' is not available")
    return str(value)


@pass_context
def _read(context: Context, path: str, namespace: str | None = None) -> str:
    """Kestra's ``read(path)``: a file of this execution or a namespace file (worker only)."""
    reader = context.get("__read_file")
    if not callable(reader):
        raise RenderError("read() is only available to a task's properties, when it runs")
    return str(reader(path, namespace))


# -- Calendar functions (Kestra's schedule helpers) --------------------------------------
# Each reads the date as written: an offset is kept, never normalized to UTC.
_POSITIONS: Final = ("FIRST", "SECOND", "THIRD", "FOURTH")


def _calendar_date(value: object, function: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise RenderError(
            f"{function}() could not read {value!r} as an ISO-8601 date or date-time"
        ) from None


def _day_of_week(date: object) -> str:
    """``MONDAY`` ... ``SUNDAY``."""
    return _DAYS[_calendar_date(date, "dayOfWeek").weekday()].upper()


def _day_of_month(date: object) -> int:
    return _calendar_date(date, "dayOfMonth").day


def _month_of_year(date: object) -> int:
    return _calendar_date(date, "monthOfYear").month


def _hour_of_day(date: object) -> int:
    # A date without a time has no hour: refused, as Kestra does.
    if isinstance(date, str) and "T" not in date.upper() and " " not in date.strip():
        raise RenderError(f"hourOfDay() needs a date-time, not the date {date!r}")
    if isinstance(date, dt.date) and not isinstance(date, dt.datetime):
        raise RenderError(f"hourOfDay() needs a date-time, not the date {date.isoformat()!r}")
    return _calendar_date(date, "hourOfDay").hour


def _is_weekend(date: object) -> bool:
    return _calendar_date(date, "isWeekend").weekday() >= _DAYS.index("Saturday")


def _is_day_week_in_month(date: object, dayOfWeek: str, position: str) -> bool:  # noqa: N803
    """Whether ``date`` is the FIRST..FOURTH or LAST ``dayOfWeek`` of its month."""
    day = _calendar_date(date, "isDayWeekInMonth").date()
    names = [name.upper() for name in _DAYS]
    if str(dayOfWeek).upper() not in names:
        raise RenderError(
            f"isDayWeekInMonth(): dayOfWeek {dayOfWeek!r} is not one of {', '.join(names)}"
        )
    place = str(position).upper()
    if place not in {*_POSITIONS, "LAST"}:
        choices = ", ".join((*_POSITIONS, "LAST"))
        raise RenderError(f"isDayWeekInMonth(): position {position!r} is not one of {choices}")
    if day.weekday() != names.index(str(dayOfWeek).upper()):
        return False
    if place == "LAST":
        return day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    return (day.day - 1) // 7 == _POSITIONS.index(place)


# -- Filters --------------------------------------------------------------------------


def _keys(value: Mapping[Any, Any]) -> list[Any]:
    return list(value.keys())


def _slugify(value: object) -> str:
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _default(value: object, default_value: object = "", boolean: bool = False) -> object:
    # Pebble's default replaces undefined, null and empty values; Jinja's
    # boolean mode (falsy values) is kept for templates written for Jinja.
    if isinstance(value, Undefined) or value is None:
        return default_value
    if isinstance(value, str | list | tuple | Mapping) and len(value) == 0:
        return default_value
    return default_value if boolean and not value else value


# -- Dates ------------------------------------------------------------------------------
# Java DateTimeFormatter patterns: the number of repeated letters picks the style.
_TWO_DIGITS: Final = 2
_SHORT_TEXT: Final = 3  # "MMM" -> Jan, and "XXX" -> +01:00
_FULL_TEXT: Final = 4  # "MMMM" -> January
_LONG_OFFSET: Final = 5  # "ZZZZZ" -> +01:00 or Z
_NOON: Final = 12
_MONTHS: Final = (
    *("January", "February", "March", "April", "May", "June", "July"),
    *("August", "September", "October", "November", "December"),
)
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SHORTCUTS: Final = {  # Kestra's named formats, without Java's optional parts
    "iso": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_sec": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "sql": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "sql_seq": "yyyy-MM-dd HH:mm:ss",
    "sql_sec": "yyyy-MM-dd HH:mm:ss",
    "iso_date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_offset_date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_zoned_date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "iso_local_date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSSSS",
    "iso_date": "yyyy-MM-ddXXX",
    "iso_local_date": "yyyy-MM-dd",
    "iso_time": "HH:mm:ss.SSSSSSXXX",
    "iso_offset_time": "HH:mm:ss.SSSSSSXXX",
    "iso_local_time": "HH:mm:ss.SSSSSS",
    "iso_ordinal_date": "yyyy-DDDXXX",
}
_NUMBERS: Final[dict[str, Callable[[dt.datetime], int]]] = {
    "d": lambda when: when.day,
    "D": lambda when: when.timetuple().tm_yday,
    "H": lambda when: when.hour,
    "h": lambda when: when.hour % 12 or 12,
    "k": lambda when: when.hour or 24,
    "K": lambda when: when.hour % 12,
    "m": lambda when: when.minute,
    "s": lambda when: when.second,
    "n": lambda when: when.microsecond * 1000,
    "Q": lambda when: (when.month - 1) // 3 + 1,
    "w": lambda when: when.isocalendar().week,
}
# A quoted literal ('' is a quote), a run of one pattern letter, or any other character.
_PATTERN_TOKEN: Final = re.compile(r"'((?:[^']|'')*)'|([A-Za-z])\2*|.", re.DOTALL)
# strptime directives for existingFormat, by letter and then by "is text" (3+ letters).
_STRPTIME: Final = {
    **dict.fromkeys("yu", ("%Y", "%Y")),
    **dict.fromkeys("ML", ("%m", "%b")),
    **dict.fromkeys("XxZ", ("%z", "%z")),
    "E": ("%a", "%a"),
    **{letter: (f"%{code}",) * 2 for letter, code in zip("dHhmsSaD", "dHIMSfpj", strict=True)},
}
_STEPS: Final = {
    "SECONDS": dt.timedelta(seconds=1),
    "MINUTES": dt.timedelta(minutes=1),
    "HOURS": dt.timedelta(hours=1),
    "DAYS": dt.timedelta(days=1),
    "WEEKS": dt.timedelta(weeks=1),
}
_MONTH_STEPS: Final = {"MONTHS": 1, "YEARS": 12}


def _zone(name: str | None) -> dt.tzinfo:
    return dt.UTC if name is None else ZoneInfo(name)


def _to_datetime(value: object, zone: dt.tzinfo, existing_format: str | None) -> dt.datetime:
    """Read a date like Kestra: naive values are in ``zone``, a bare date at noon."""
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime.combine(value, dt.time(_NOON))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, zone)  # epoch seconds, as Kestra reads longs
    elif isinstance(value, str) and existing_format is not None:
        when = dt.datetime.strptime(value, _strptime_pattern(existing_format))  # noqa: DTZ007
    elif isinstance(value, str):
        when = dt.datetime.fromisoformat(value)
    else:
        raise TypeError(f"cannot read a date from {type(value).__name__}")
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)


def _pattern_tokens(pattern: str) -> list[tuple[str, int]]:
    """Split a Java pattern (or Kestra shortcut) into (letter, count) or (literal, 0)."""
    tokens: list[tuple[str, int]] = []
    for match in _PATTERN_TOKEN.finditer(_SHORTCUTS.get(pattern, pattern)):
        if match[1] is not None:
            tokens.append((match[1].replace("''", "'") or "'", 0))
        elif match[2] is not None:
            tokens.append((match[2], len(match[0])))
        else:
            tokens.append((match[0], 0))
    return tokens


def _strptime_pattern(pattern: str) -> str:
    parts = []
    for text, count in _pattern_tokens(pattern):
        if not count:
            parts.append(text.replace("%", "%%"))
        elif text in "yu" and count == _TWO_DIGITS:
            parts.append("%y")
        elif text in _STRPTIME:
            code = _STRPTIME[text][count >= _SHORT_TEXT]
            parts.append(code.upper() if count >= _FULL_TEXT and text in "MLE" else code)
        else:
            raise ValueError(f"unsupported letter {text!r} in date pattern {pattern!r}")
    return "".join(parts)


def _offset(letter: str, count: int, when: dt.datetime) -> str:
    minutes = int((when.utcoffset() or dt.timedelta(0)).total_seconds()) // 60
    if letter == "Z" and count == _FULL_TEXT:
        return "GMT" + (_offset("X", _SHORT_TEXT, when) if minutes else "")
    if not minutes and (letter == "X" or (letter == "Z" and count == _LONG_OFFSET)):
        return "Z"
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    if letter in "Xx" and count == 1:
        return f"{sign}{hours:02d}" + (f"{rest:02d}" if rest else "")
    with_colon = count == _LONG_OFFSET or (letter in "Xx" and count == _SHORT_TEXT)
    return f"{sign}{hours:02d}{':' if with_colon else ''}{rest:02d}"


def _number_field(get: Callable[[dt.datetime], int], count: int, when: dt.datetime) -> str:
    return f"{get(when):0{count}d}"


def _text(name: str, count: int) -> str:
    return name if count >= _FULL_TEXT else name[:3]


_FIELDS: Final[dict[str, Callable[[int, dt.datetime], str]]] = {
    **dict.fromkeys(
        "yu",
        lambda n, when: f"{when.year % 100:02d}" if n == _TWO_DIGITS else f"{when.year:0{n}d}",
    ),
    **dict.fromkeys(
        "ML",
        lambda n, when: (
            _text(_MONTHS[when.month - 1], n) if n >= _SHORT_TEXT else f"{when.month:0{n}d}"
        ),
    ),
    "E": lambda n, when: _text(_DAYS[when.weekday()], n),
    "S": lambda n, when: f"{when.microsecond:06d}000"[:n].ljust(n, "0"),
    "X": lambda n, when: _offset("X", n, when),
    "x": lambda n, when: _offset("x", n, when),
    "Z": lambda n, when: _offset("Z", n, when),
    "a": lambda _n, when: "AM" if when.hour < _NOON else "PM",
    "z": lambda _n, when: when.tzname() or "",
    "V": lambda _n, when: str(getattr(when.tzinfo, "key", None) or when.tzname() or ""),
    "G": lambda _n, _when: "AD",
    **{letter: functools.partial(_number_field, get) for letter, get in _NUMBERS.items()},
}


def _format(when: dt.datetime, pattern: str) -> str:
    if pattern == "iso_instant":
        return _iso(when.astimezone(dt.UTC))
    parts = []
    for text, count in _pattern_tokens(pattern):
        if count and text not in _FIELDS:
            raise ValueError(f"unsupported letter {text!r} in date pattern {pattern!r}")
        parts.append(_FIELDS[text](count, when) if count else text)
    return "".join(parts)


def _date(
    value: object,
    format: str = "iso",  # noqa: A002 - Kestra's argument name
    timeZone: str | None = None,  # noqa: N803 - Kestra's argument name
    existingFormat: str | None = None,  # noqa: N803 - Kestra's argument name
) -> str:
    zone = _zone(timeZone)
    return _format(_to_datetime(value, zone, existingFormat).astimezone(zone), format)


def _timestamp(
    value: object,
    timeZone: str | None = None,  # noqa: N803 - Kestra's argument name
    existingFormat: str | None = None,  # noqa: N803 - Kestra's argument name
    *,
    scale: int,
) -> int:
    """Epoch time of a date in seconds, or milli-, micro- or nanoseconds by ``scale``."""
    when = _to_datetime(value, _zone(timeZone), existingFormat)
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds
    return micros * scale // 10**6


def _add_months(when: _D, months: int) -> _D:
    year, month = divmod(when.year * 12 + when.month - 1 + months, 12)
    day = min(when.day, calendar.monthrange(year, month + 1)[1])  # Jan 31 + 1 month: Feb 28/29
    return when.replace(year=year, month=month + 1, day=day)


def _shift(when: _D, amount: int, unit: str) -> _D:
    if unit in _MONTH_STEPS:
        return _add_months(when, amount * _MONTH_STEPS[unit])
    if unit not in _STEPS:
        raise ValueError(f"unknown unit {unit!r}, expected one of {[*_STEPS, *_MONTH_STEPS]}")
    if not isinstance(when, dt.datetime) and _STEPS[unit] < dt.timedelta(days=1):
        raise ValueError(f"cannot add {unit} to a date without time")
    return when + amount * _STEPS[unit]


def _date_add(
    value: object,
    amount: int,
    unit: str,
    format: str | None = None,  # noqa: A002 - Kestra's argument name
    *,
    timeZone: str | None = None,  # noqa: N803 - Kestra's argument name
    existingFormat: str | None = None,  # noqa: N803 - Kestra's argument name
) -> object:
    """Add ``amount`` ``unit``s, returning the kind of value received (strings stay ISO)."""
    unit = unit.upper()
    if format is not None or timeZone is not None or existingFormat is not None:
        zone = _zone(timeZone)
        when = _to_datetime(value, zone, existingFormat).astimezone(zone)
        return _format(_shift(when, amount, unit), format or "iso")
    if isinstance(value, dt.date):  # datetimes too
        return _shift(value, amount, unit)
    if isinstance(value, int | float) and not isinstance(value, bool):
        shifted = _shift(dt.datetime.fromtimestamp(value, dt.UTC), amount, unit)
        return type(value)(shifted.timestamp())
    if isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return _iso(_shift(dt.datetime.fromisoformat(value), amount, unit))
        return _shift(day, amount, unit).isoformat()
    raise TypeError(f"cannot add time to {type(value).__name__}")
