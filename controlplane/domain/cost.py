"""What one template render may cost: integer size, built text, loop steps and CPU time.

A flow author writes the templates and a webhook caller sends part of their
data, so a render is untrusted work. Where a cost can be predicted from the
operands (a power's bits, a repetition's length) it is refused before it is
paid; a per-render budget of loop iterations and CPU time, checked at every
operation the sandbox intercepts, catches the rest. Exceeding a bound raises
:class:`CostBoundError`, which names the bound. ``pebble.PebbleEnvironment``
wires these checks into Jinja.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeGuard

from jinja2 import pass_environment
from jinja2.exceptions import TemplateRuntimeError
from jinja2.filters import make_attrgetter
from jinja2.utils import Namespace, generate_lorem_ipsum

if TYPE_CHECKING:
    from jinja2.environment import Environment

# Integers past a few thousand bits are never a flow's business, and multiplying
# or raising them costs quadratic time or worse: 9 ** 14348905 held a process 10 s.
MAX_INT_BITS: Final = 4096
# Characters of a string a template builds (repetition, ``~``, join, padding...),
# of the printed form of a list or map it builds, and of a rendered template.
# Far above any real message, body or script; far below a worker's memory.
MAX_TEXT_SIZE: Final = 1024 * 1024
# Everything one render builds, added up: values each under MAX_TEXT_SIZE, kept
# in variables or made again on each loop iteration, still cannot add up to
# gigabytes.
MAX_BUILT_SIZE: Final = 16 * MAX_TEXT_SIZE
# range() serves small fixed sequences (Jinja's own sandbox allows 100,000).
MAX_RANGE: Final = 10_000
# Loop iterations in one render, nested loops included: range(10000) inside
# range(10000) is a hundred million iterations, not a template.
MAX_ITERATIONS: Final = 100_000
# Time one render may compute, checked at every intercepted operation. A
# template still busy after a second is a runaway: it holds a worker thread
# (or, for a webhook condition, an API request thread). It is the CPU time of
# the rendering thread, not wall time: waiting for the database in secret() or
# for the GIL on a busy machine costs nothing and must not fail a healthy render.
MAX_RENDER_SECONDS: Final = 1.0
# Jinja's lipsum() makes n paragraphs of up to ``max`` words; keep it a filler.
_MAX_LIPSUM: Final = 100
# Printed size guessed for a float, a date or any other value that is not a
# string, an integer or a container.
_SCALAR_SIZE: Final = 8
_PRINTF_SPEC: Final = re.compile(
    r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?.", re.DOTALL
)
_FORMAT_FIELD: Final = re.compile(r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")


class CostBoundError(TemplateRuntimeError):
    """An expression would exceed one of the cost bounds; the message names the bound."""

    def __init__(self, what: str) -> None:
        super().__init__(f"expression exceeded its cost bound: {what}")


@dataclass
class Budget:
    """What the current render (nested ``render()`` calls included) has spent."""

    deadline: float
    iterations: int = 0
    built: int = 0
    # Printed sizes of containers already measured, by id; the container is
    # kept so that its id cannot be reused while the render lasts.
    sizes: dict[int, tuple[object, int]] = field(default_factory=dict)


# One budget per render, in a context variable: the environment is shared by
# threads, and a nested render() must spend from the budget of its caller.
BUDGET: Final[ContextVar[Budget | None]] = ContextVar("render_budget", default=None)


def check_time() -> None:
    """Raise CostBoundError once this render has used up its CPU time."""
    budget = BUDGET.get()
    if budget is not None and time.thread_time() > budget.deadline:
        raise CostBoundError(f"render took longer than {MAX_RENDER_SECONDS:g} s")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _children(container: Iterable[Any]) -> Iterable[Any]:
    if isinstance(container, Mapping):
        return itertools.chain.from_iterable(container.items())
    return container


def _namespace_values(value: Namespace) -> list[Any]:
    return list(value._Namespace__attrs.values())  # noqa: SLF001


def text_size(value: object, limit: int = MAX_TEXT_SIZE) -> int:
    """Estimate how many characters ``value`` prints as, counting shared parts each time.

    ``[a, a]`` counts ``a`` twice, as printing, comparing or serializing it
    would. The walk stops once the count passes ``limit``, and every step
    adds to the count, so it costs at most about ``limit`` steps even for a
    list nested in itself sixty times over. A namespace inside a list or map
    is refused: it can change after the list was measured.
    """
    budget = BUDGET.get()
    memo = budget.sizes if budget is not None else {}
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif _is_int(item):
            total += item.bit_length() // 3 + 1  # about its decimal digits
        elif isinstance(item, Namespace):
            raise CostBoundError("a namespace cannot be stored in a list or map")
        elif isinstance(item, list | tuple | set | frozenset | Mapping):
            known = memo.get(id(item))
            if known is not None and known[0] is item:
                total += known[1]
                continue
            total += 2 + len(item)  # brackets and separators
            stack.extend(_children(item))
        else:
            total += _SCALAR_SIZE
    if budget is not None and isinstance(value, list | tuple | set | frozenset | Mapping):
        memo[id(value)] = (value, total)
    return total


def refuse_text(size: int) -> None:
    """Raise CostBoundError for a text result over MAX_TEXT_SIZE characters."""
    if size > MAX_TEXT_SIZE:
        raise CostBoundError(f"text result too large (over {MAX_TEXT_SIZE} characters)")


def _charge(size: int) -> None:
    budget = BUDGET.get()
    if budget is not None:
        budget.built += size
        if budget.built > MAX_BUILT_SIZE:
            raise CostBoundError(f"one render built over {MAX_BUILT_SIZE} characters")


def check_result(result: object, inputs: Iterable[object] = ()) -> Any:
    """Refuse a built string or container past MAX_TEXT_SIZE and charge it to the render.

    A result that is one of the inputs was not built here (``default``
    returns its value), so a large value passed along from the context is
    not refused for being large.
    """
    if any(result is given for given in inputs):
        return result
    if isinstance(result, str | bytes):
        real = len(result)
        refuse_text(real)
    elif isinstance(result, Namespace):
        values = _namespace_values(result)
        refuse_text(text_size(values))
        real = len(values)
    elif isinstance(result, list | tuple | set | frozenset | Mapping):
        refuse_text(text_size(result))
        real = len(result)
    else:
        return result
    _charge(real)
    return result


def count_iterations(iterable: Iterable[Any]) -> Iterator[Any]:
    """Yield from ``iterable``, counting each iteration against the render's budget."""
    budget = BUDGET.get()
    for item in iterable:
        if budget is not None:
            budget.iterations += 1
            if budget.iterations > MAX_ITERATIONS:
                raise CostBoundError(f"more than {MAX_ITERATIONS} loop iterations")
        check_time()
        yield item


def bounded_range(*args: int) -> range:
    """``range()`` refusing more than MAX_RANGE items."""
    numbers = range(*args)
    try:
        too_long = len(numbers) > MAX_RANGE
    except OverflowError:  # longer than a C integer can count
        too_long = True
    if too_long:
        raise CostBoundError(f"range() too long (over {MAX_RANGE} items)")
    return numbers


def bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002 - Jinja's signature
    """Jinja's ``lipsum()`` with its counts capped."""
    if n > _MAX_LIPSUM or max > _MAX_LIPSUM:
        raise CostBoundError(f"lipsum() over {_MAX_LIPSUM} paragraphs or words")
    return str(generate_lorem_ipsum(n, html, min, max))


class BoundedNamespace(Namespace):
    """Jinja's ``namespace()``, measuring what ``{% set ns.x = ... %}`` stores."""

    def __setitem__(self, name: str, value: object) -> None:
        refuse_text(text_size(value))
        super().__setitem__(name, value)


# -- Size estimates of the operations that build text ------------------------------


def _widest(values: Iterable[object]) -> int:
    return max((text_size(value) for value in values), default=0)


def _printf_size(template: str, args: object) -> int:
    """Printed size of ``template % args``, widths and precisions included."""
    if isinstance(args, Mapping):
        values = list(args.values())
    else:
        values = list(args) if isinstance(args, tuple) else [args]
    widest = _widest(values)
    stars = sum(value for value in values if _is_int(value) and value > 0)
    size = len(template)
    for spec in _PRINTF_SPEC.finditer(template):
        size += widest + sum(stars if part == "*" else int(part) for part in spec.groups() if part)
    return size


def _format_size(template: str, args: Iterable[object], kwargs: Mapping[str, object]) -> int:
    """Printed size of ``template.format(...)``: numbers in fields may be widths."""
    values = [*args, *kwargs.values()]
    widest = _widest(values)
    stars = sum(value for value in values if _is_int(value) and value > 0)
    size = len(template)
    for found in _FORMAT_FIELD.finditer(template):
        size += widest + stars + sum(int(number) for number in re.findall(r"\d+", found[0]))
    return size


def _replace_size(text: str, old: str, new: str, count: int | None = None) -> int:
    times = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        times = min(times, count)
    return len(text) + times * max(len(new) - len(old), 0)


def _join_size(items: list[Any], separator: str) -> int:
    size = len(separator) * max(len(items) - 1, 0)
    for item in items:
        size += text_size(item)
        if size > MAX_TEXT_SIZE:
            break
    return size


def _indent_size(text: str, width: int | str = 4) -> int:
    prefix = len(width) if isinstance(width, str) else width
    return len(text) + (text.count("\n") + 1) * max(prefix, 0)


def _wordwrap_size(text: str, width: int = 79, wrapstring: str | None = None) -> int:
    lines = len(text) // max(width, 1) + text.count("\n") + 1
    return len(text) + lines * len(wrapstring or "\n")


def check_binop(operator: str, left: object, right: object) -> None:
    """Refuse ``left operator right`` before computing it when its result would be too large."""
    if _is_int(left) and _is_int(right):
        if operator == "**" and right > 0 and abs(left) > 1:
            bits = right * math.log2(abs(left))
        elif operator == "*":
            bits = left.bit_length() + right.bit_length()
        else:
            return
        if bits > MAX_INT_BITS:
            raise CostBoundError(f"integer result too large (over {MAX_INT_BITS} bits)")
    elif operator == "*" and (_is_int(left) or _is_int(right)):
        times, sequence = (left, right) if _is_int(left) else (right, left)
        if isinstance(sequence, str | bytes | list | tuple) and times > 0:  # type: ignore[operator]
            refuse_text(text_size(sequence) * times)  # type: ignore[operator]
    elif operator == "+" and all(isinstance(x, str | bytes | list | tuple) for x in (left, right)):
        refuse_text(text_size(left) + text_size(right))
    elif operator == "%" and isinstance(left, str):
        refuse_text(_printf_size(left, right))


def check_method_call(method: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a str, bytes or int method call whose result would be too large."""
    method = getattr(method, "__wrapped__", method)  # the sandbox wraps str.format
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if _is_int(owner) and name == "to_bytes":
        refuse_text(args[0] if args else kwargs.get("length", 1))
    if not isinstance(owner, str | bytes):
        return
    size = len(owner)
    if name in {"ljust", "rjust", "center", "zfill"} and args and _is_int(args[0]):
        size = max(size, args[0])
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        size += (owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")) * tab
    elif name == "join" and args:
        size = _join_size(list(args[0]), "") + len(owner) * max(len(args[0]) - 1, 0)
    elif name == "replace" and len(args) >= 2 and isinstance(owner, str):  # noqa: PLR2004 - old, new
        size = _replace_size(owner, *args[:3])
    elif name in {"format", "format_map"} and isinstance(owner, str):
        size = _format_size(owner, args, args[0] if name == "format_map" and args else kwargs)
    elif name == "translate" and args and isinstance(args[0], Mapping):
        size = len(owner) * max(_widest(args[0].values()), 1)
    refuse_text(size)


# Checks run before a Jinja filter, on its bound arguments, for the filters
# whose result can be much larger than their input.
_FILTER_CHECKS: Final[dict[str, Callable[[dict[str, Any]], int]]] = {
    "join": lambda a: _join_size(a["value"], a["d"]),
    "replace": lambda a: _replace_size(str(a["s"]), str(a["old"]), str(a["new"]), a["count"]),
    "center": lambda a: max(len(str(a["value"])), a["width"]),
    "indent": lambda a: _indent_size(str(a["s"]), a["width"]),
    "format": lambda a: _printf_size(str(a["value"]), a["kwargs"] or a["args"]),
    "wordwrap": lambda a: _wordwrap_size(str(a["s"]), a["width"], a["wrapstring"]),
    "batch": lambda a: a["linecount"] * (1 + text_size(a["fill_with"])),
    "slice": lambda a: a["slices"] * (2 + text_size(a["fill_with"])),
}


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter: check the time, its size estimate if any, and the size of its result."""
    check = _FILTER_CHECKS.get(name)
    signature = inspect.signature(func) if check is not None else None

    @functools.wraps(func)  # keeps Jinja's pass_context/pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        check_time()
        if signature is not None and check is not None:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            if "value" in bound.arguments and not isinstance(bound.arguments["value"], str):
                # Measure a generator (``map(...) | join``) once, then hand over the list.
                bound.arguments["value"] = list(bound.arguments["value"])
            refuse_text(check(bound.arguments))
            args, kwargs = bound.args, bound.kwargs
        return check_result(func(*args, **kwargs), [*args, *kwargs.values()])

    return bounded


@pass_environment
def bounded_sum(
    environment: Environment,
    iterable: Iterable[Any],
    attribute: str | int | None = None,
    start: Any = 0,
) -> Any:
    """Jinja's ``sum``, concatenating lists in linear time (``+`` would copy each time)."""
    values = list(iterable)
    if attribute is not None:
        getter = make_attrgetter(environment, attribute)
        values = [getter(value) for value in values]
    if isinstance(start, list | tuple):
        refuse_text(_join_size([start, *values], ""))
        return check_result(type(start)(itertools.chain(start, *values)))
    return check_result(sum(values, start))
