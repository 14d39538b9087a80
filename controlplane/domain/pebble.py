"""Pebble syntax on top of Jinja2: ``??``, ``???``, ``cond ? a : b`` and ``null``.

Kestra flows are written for Pebble, whose expression grammar is close to
Jinja's but adds a few operators. Rather than rewriting template text with
regular expressions (which breaks on strings and nested braces), this module
teaches Jinja's own lexer the new operator tokens and extends its recursive
descent parser, so every construct becomes ordinary Jinja AST nodes.

Precedence follows Pebble (and so Kestra) rather than JavaScript:

* ``a ?? b`` (null-coalescing) and ``a ??? b`` (undefined-coalescing) bind
  tighter than every binary operator (Pebble gives them 120, above ``~`` at
  110 and filters at 100), so ``x ?? 0 == 0`` means ``(x ?? 0) == 0`` and
  ``x ?? 'a' ~ 'b'`` means ``(x ?? 'a') ~ 'b'``. They associate to the left.
* ``c ? a : b`` is the loosest construct (below Jinja's ``a if c else b``)
  and associates to the right; only the chosen branch is evaluated.

Every binary operator follows Pebble's precedence table (``CoreExtension``),
not Jinja's: ``or`` 10, ``and`` 15, ``is``/``is not``/``contains`` 20,
comparisons and ``equals`` 30, ``+ -`` 40, ``* / %`` 60, ``|`` 100, ``~`` 110,
``..`` 120. So ``'a' ~ b | upper`` upper-cases the whole concatenation and
``not`` negates only its operand (``not a == b`` is ``(not a) == b``), as in
Kestra. Jinja's own ``in``, ``not in``, ``//`` and ``**`` keep working, at the
level of comparisons, ``*`` and just above it.

Jinja offers no public hook for new operators, so three internals are used,
each isolated in one place below: the lexer's rule table (``Lexer.rules`` and
its ``_Rule`` tuples), ``Environment.lexer`` (a property we override) and
``Environment._parse`` (the documented internal hook that ``parse`` and
``compile`` both go through). They are stable across Jinja 3.x.

The environment also bounds what one render may cost, since a flow author
writes the templates and a webhook caller sends part of their data: see
"Cost bounds" below. Where a cost can be predicted from the operands (a
power's bits, a repetition's length) it is refused before it is paid; a
per-render budget of loop iterations and CPU time, checked at every operation
the sandbox intercepts, catches the rest. Exceeding a bound raises
:class:`CostBoundError`, which names the bound.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.lexer import (
    TOKEN_BLOCK_BEGIN,
    TOKEN_LINESTATEMENT_BEGIN,
    TOKEN_OPERATOR,
    TOKEN_VARIABLE_BEGIN,
    Lexer,
    Token,
    operator_re,
)
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from controlplane.domain.cost import (
    BUDGET,
    MAX_RENDER_SECONDS,
    BoundedNamespace,
    Budget,
    bounded_filter,
    bounded_lipsum,
    bounded_range,
    bounded_sum,
    check_binop,
    check_method_call,
    check_result,
    check_time,
    count_iterations,
    refuse_text,
)

if TYPE_CHECKING:
    from jinja2.environment import Environment, Template

NULL_COALESCE: Final = "??"
UNDEFINED_COALESCE: Final = "???"
TERNARY: Final = "?"
RANGE: Final = ".."
# Longest first so that "???" is not read as "??" followed by "?".
_PEBBLE_OPERATORS: Final = (UNDEFINED_COALESCE, NULL_COALESCE, TERNARY, RANGE)
_COALESCE: Final = (NULL_COALESCE, UNDEFINED_COALESCE)
# Pebble's binary operators by Jinja token type (or keyword), with Pebble's
# precedence; all associate to the left. Jinja's ``in``, ``//`` and ``**``,
# which Pebble lacks, sit next to their closest Pebble relatives.
_PRECEDENCE: Final = {
    "or": 10,
    "and": 15,
    "is": 20,
    "contains": 20,
    **dict.fromkeys(("eq", "ne", "lt", "lteq", "gt", "gteq", "equals", "in", "not in"), 30),
    **dict.fromkeys(("add", "sub"), 40),
    **dict.fromkeys(("mul", "div", "floordiv", "mod"), 60),
    "pow": 70,
    "pipe": 100,
    "tilde": 110,
    **dict.fromkeys((RANGE, NULL_COALESCE, UNDEFINED_COALESCE), 120),
}
_KEYWORD_OPERATORS: Final = frozenset({"or", "and", "is", "contains", "equals", "in"})
_COMPARE: Final = {"equals": "eq", "not in": "notin"}
_ARITHMETIC: Final[dict[str, type[nodes.BinExpr]]] = {
    "add": nodes.Add,
    "sub": nodes.Sub,
    "mul": nodes.Mul,
    "div": nodes.Div,
    "floordiv": nodes.FloorDiv,
    "mod": nodes.Mod,
    "pow": nodes.Pow,
}
# Pebble's upper-case literals, next to Jinja's true/false/none.
_LITERALS: Final = {"null": None, "NULL": None, "NONE": None, "TRUE": True, "FALSE": False}
# Words that end a test: ``x is defined and y`` gives ``defined`` no argument.
_NOT_AN_ARGUMENT: Final = frozenset({*_KEYWORD_OPERATORS, "not", "if", "else"})
_OPERATOR_RE: Final = re.compile(
    "|".join(re.escape(op) for op in _PEBBLE_OPERATORS) + "|" + operator_re.pattern
)


class PebbleLexer(Lexer):
    """Jinja's lexer, plus the ``?``, ``??`` and ``???`` operator tokens."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        # Internal: swap the operator rule of every expression state for one
        # that also knows the Pebble operators; the other rules stay as-is.
        for state in (TOKEN_BLOCK_BEGIN, TOKEN_VARIABLE_BEGIN, TOKEN_LINESTATEMENT_BEGIN):
            self.rules[state] = [
                rule._replace(pattern=_OPERATOR_RE) if rule.pattern is operator_re else rule
                for rule in self.rules[state]
            ]

    def wrap(
        self,
        stream: Iterable[tuple[int, str, str]],
        name: str | None = None,
        filename: str | None = None,
    ) -> Iterator[Token]:
        """Give the Pebble operators their own token types before Jinja's wrapping.

        Jinja's ``wrap`` maps operators through a fixed table and would fail on
        ours; a token whose type is the operator itself passes through it
        untouched and reads well in error messages ("got '?'").
        """
        retagged = (
            (lineno, value, value)
            if token == TOKEN_OPERATOR and value in _PEBBLE_OPERATORS
            else (lineno, token, value)
            for lineno, token, value in stream
        )
        return super().wrap(retagged, name, filename)


class PebbleParser(Parser):
    """Jinja's parser extended with the Pebble operators and ``null``."""

    def parse_expression(self, with_condexpr: bool = True) -> nodes.Expr:
        """Parse an expression, then an optional ``? yes : no`` tail."""
        lineno = self.stream.current.lineno
        test = super().parse_expression(with_condexpr)
        if not self.stream.skip_if(TERNARY):
            return test
        yes = self.parse_expression(with_condexpr)
        self.stream.expect("colon")
        no = self.parse_expression(with_condexpr)
        return nodes.CondExpr(test, yes, no, lineno=lineno)

    def parse_or(self) -> nodes.Expr:
        """Parse every binary operator by Pebble's precedence (Jinja enters here)."""
        return self._parse_binary(0)

    def parse_primary(self, with_namespace: bool = False) -> nodes.Expr:
        """Read Pebble's ``null`` (and upper-case ``NULL``, ``TRUE``...) literals."""
        token = self.stream.current
        if token.type == "name" and token.value in _LITERALS:
            next(self.stream)
            return nodes.Const(_LITERALS[token.value], lineno=token.lineno)
        return super().parse_primary(with_namespace)

    def _parse_operand(self) -> nodes.Expr:
        """A primary with its postfix (``.a``, ``[b]``, ``(c)``), or a unary operator on one.

        Pebble gives ``not``, ``-`` and ``+`` precedence 500: they take only the
        operand that follows, never a binary expression.
        """
        token = self.stream.current
        if token.test("name:not"):
            next(self.stream)
            return nodes.Not(self._parse_operand(), lineno=token.lineno)
        return super().parse_unary(with_filter=False)

    def _binary_operator(self) -> str | None:
        token = self.stream.current
        if token.type == "name":
            if token.value in _KEYWORD_OPERATORS:
                return str(token.value)
            if token.value == "not" and self.stream.look().test("name:in"):
                return "not in"
            return None
        return token.type if token.type in _PRECEDENCE else None

    def _parse_binary(self, min_precedence: int) -> nodes.Expr:
        """Precedence climbing, as Pebble's ``ExpressionParser.parseExpression``."""
        left = self._parse_operand()
        while (operator := self._binary_operator()) is not None:
            precedence = _PRECEDENCE[operator]
            if precedence < min_precedence:
                break
            left = self._parse_right(operator, left, precedence + 1)
        return left

    def _parse_right(self, operator: str, left: nodes.Expr, tighter: int) -> nodes.Expr:
        """Parse what follows ``operator`` and combine it with ``left``."""
        lineno = self.stream.current.lineno
        node: nodes.Expr
        if operator == "pipe":
            return self.parse_filter(left)  # type: ignore[return-value]  # never None here
        if operator == "is":
            return self._parse_test(left)
        if operator in _COALESCE:
            return self._parse_coalesce(left, tighter)
        next(self.stream)
        if operator == "not in":
            next(self.stream)
        right = self._parse_binary(tighter)
        if operator in {"or", "and"}:
            node = (nodes.Or if operator == "or" else nodes.And)(left, right)
        elif operator == "contains":
            node = _call(contains, left, right)
        elif operator == RANGE:
            node = _call(inclusive_range, left, right)
        elif operator == "tilde":
            # A call, which Jinja never folds at compile time: folding would print
            # null as "None". ``join_text`` prints parts as the output does.
            target = nodes.EnvironmentAttribute("join_text")
            node = nodes.Call(target, [left, right], [], None, None)
        elif operator in _ARITHMETIC:
            node = _ARITHMETIC[operator](left, right)
        else:
            node = nodes.Compare(left, [nodes.Operand(_COMPARE.get(operator, operator), right)])
        node.set_lineno(lineno)
        return node

    def _parse_test(self, node: nodes.Expr) -> nodes.Expr:
        """``x is [not] name`` or ``x is [not] name(args)``, as Pebble reads a test.

        ``defined`` looks a missing ``a.b.c`` chain up safely, so ``outputs.t.value
        is defined`` is false (not an error) when task ``t`` has no outputs.
        """
        token = next(self.stream)
        negated = self.stream.skip_if("name:not")
        name = self.stream.expect("name").value
        args: list[nodes.Expr] = []
        kwargs: list[nodes.Keyword] = []
        dyn_args = dyn_kwargs = None
        current = self.stream.current
        if current.type == "lparen":
            args, kwargs, dyn_args, dyn_kwargs = self.parse_call_args()
        elif current.type in {"string", "integer", "float", "lbracket", "lbrace"} or (
            current.type == "name" and current.value not in _NOT_AN_ARGUMENT
        ):
            args = [self.parse_postfix(self.parse_primary())]  # Jinja's ``is divisibleby 3``
        if name == "defined" and (chain := _split_chain(node)) is not None:
            root, kinds, keys = chain
            node = _call(lookup_or_undefined, root, nodes.Const(kinds), *keys)
        test: nodes.Expr = nodes.Test(
            node, name, args, kwargs, dyn_args, dyn_kwargs, lineno=token.lineno
        )
        test.set_lineno(token.lineno)
        return nodes.Not(test, lineno=token.lineno) if negated else test

    def parse_for(self) -> nodes.For:
        """Parse a for loop whose iterations count against the render's budget."""
        node = super().parse_for()
        node.iter = _call(count_iterations, node.iter)  # type: ignore[arg-type]  # an Expr
        node.iter.set_lineno(node.lineno)
        return node

    def parse_filter(
        self, node: nodes.Expr | None, start_inline: bool = False
    ) -> nodes.Expr | None:
        """Let ``a.b.c | default(x)`` survive a missing ``a`` or ``b``, as in Pebble."""
        result = super().parse_filter(node, start_inline)
        first = result
        while isinstance(first, nodes.Filter) and first.node is not node:
            first = first.node
        if (
            isinstance(first, nodes.Filter)
            and first.name in {"default", "d"}
            and first.node is not None
        ):
            chain = _split_chain(first.node)
            if chain is not None:
                root, kinds, keys = chain
                first.node = _call(lookup_or_undefined, root, nodes.Const(kinds), *keys)
                first.node.set_lineno(first.lineno)
        return result

    def _parse_coalesce(self, left: nodes.Expr, tighter: int) -> nodes.Expr:
        """``a ?? b ??? c``: one node for the run, so every operand but the last is safe."""
        lineno = self.stream.current.lineno
        operands = [left]
        operators: list[str] = []
        while self.stream.current.type in _COALESCE:
            operators.append(next(self.stream).type)
            operands.append(self._parse_binary(tighter))
        node = build_coalesce(operands, operators)
        node.set_lineno(lineno)
        return node


# -- Runtime helpers called from compiled templates ---------------------------


class _Box:
    """A value that is always truthy, so Python's ``or`` can pick between boxes."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return True


_MISSING: Final = object()


def _is_missing(value: object) -> bool:
    return value is _MISSING or isinstance(value, Undefined)


@pass_context
def lookup(context: Context, root: object, kinds: str, *keys: object) -> _Box:
    """Walk ``root.a[b]...`` like Jinja would, but yield a missing box instead of raising.

    ``kinds`` has one letter per key: ``a`` for ``.attr``, ``i`` for ``[item]``.
    Lookups go through the (sandboxed) environment, so nothing becomes
    reachable that plain attribute access could not reach.
    """
    env = context.environment
    value: Any = root
    for kind, key in zip(kinds, keys, strict=True):
        if value is None or _is_missing(value) or _is_missing(key):
            return _Box(_MISSING)
        value = env.getattr(value, key) if kind == "a" else env.getitem(value, key)  # type: ignore[arg-type]
    return _Box(value)


@pass_context
def lookup_or_undefined(context: Context, root: object, kinds: str, *keys: object) -> object:
    """Like :func:`lookup`, but a missing value becomes an ``Undefined``."""
    value = lookup(context, root, kinds, *keys).value
    if value is _MISSING:
        return context.environment.undefined(name=str(keys[-1]) if keys else None)
    return value


def box(value: object) -> _Box:
    """Box an already evaluated operand."""
    return _Box(value)


def keep_if_not_null(boxed: _Box) -> _Box | None:
    """``??``: keep the left value unless it is undefined or null."""
    return None if boxed.value is None or _is_missing(boxed.value) else boxed


def keep_if_defined(boxed: _Box) -> _Box | None:
    """``???``: keep the left value unless it is undefined (null is kept)."""
    return None if _is_missing(boxed.value) else boxed


def unbox(boxed: _Box) -> object:
    """Take the chosen value out of its box."""
    return boxed.value


_KEEP: Final = {NULL_COALESCE: keep_if_not_null, UNDEFINED_COALESCE: keep_if_defined}


def _require_defined(value: object) -> None:
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises here, naming the variable


def contains(container: object, item: object) -> bool:
    """Pebble's ``contains``: a substring, a list item (or all of a list's items), a map key.

    A null container contains nothing, as in Pebble.
    """
    _require_defined(container)
    _require_defined(item)
    check_time()
    if container is None:
        return False
    if isinstance(container, str):
        return (item if isinstance(item, str) else str(item)) in container
    if isinstance(container, Mapping):
        try:
            return item in container
        except TypeError:  # an unhashable item is no key
            return False
    if isinstance(container, list | tuple | set | frozenset):
        wanted = item if isinstance(item, list | tuple | set | frozenset) else (item,)
        for one in wanted:
            check_time()  # each lookup walks the list: bound the product
            if one not in container:
                return False
        return True
    raise TypeError(
        f"'contains' needs a string, a list or a map on its left, not {type(container).__name__}"
    )


def inclusive_range(start: int, end: int) -> list[int]:
    """Pebble's ``start..end``: both ends included, counting down when ``start > end``."""
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (start, end)):
        raise TypeError("'..' needs two integers")
    numbers = bounded_range(start, end + 1) if start <= end else bounded_range(start, end - 1, -1)
    return list(numbers)  # Pebble gives a list, which prints as one


def pebble_range(*args: int) -> list[int]:
    """Pebble's ``range(start, end, step=1)``: ``end`` included, as a list.

    With one argument it is Jinja's ``range(stop)`` (Pebble has no such form).
    A negative ``step`` counts down; ``range(5, 1)`` is empty, as in Pebble.
    """
    if any(not isinstance(n, int) or isinstance(n, bool) for n in args):
        raise TypeError("range() needs integers")
    if len(args) < 2 or len(args) > 3:  # noqa: PLR2004 - start, end and an optional step
        return list(bounded_range(*args))
    start, end, step = args[0], args[1], args[2] if len(args) == 3 else 1  # noqa: PLR2004
    if step == 0:
        raise ValueError("range() step must not be 0")
    return list(bounded_range(start, end + (1 if step > 0 else -1), step))


# -- AST construction ----------------------------------------------------------


def _java_divide(left: int, right: int) -> int | float:
    """Pebble divides two integers as Java longs: the quotient truncated toward zero."""
    if isinstance(left, bool) or isinstance(right, bool) or right == 0:
        return left / right  # Python's error for a zero, or its float for booleans
    quotient = abs(left) // abs(right)
    return quotient if (left < 0) == (right < 0) else -quotient


def _call(func: Callable[..., object], *args: nodes.Expr) -> nodes.Call:
    # ImportedName makes the compiled template import the helper directly, so
    # it cannot be shadowed by (or leak into) template variables.
    target = nodes.ImportedName(f"{__name__}.{func.__name__}")
    return nodes.Call(target, list(args), [], None, None)


def _split_chain(expr: nodes.Expr) -> tuple[nodes.Expr, str, list[nodes.Expr]] | None:
    """Split ``root.a['b'].c`` into ``(root, "aia", [a, 'b', c])``; None if no lookup."""
    kinds: list[str] = []
    keys: list[nodes.Expr] = []
    node = expr
    while True:
        if isinstance(node, nodes.Getattr):
            kinds.append("a")
            keys.append(nodes.Const(node.attr))
        elif isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Slice):
            # Slices only compile inside brackets; such a node stays the root.
            kinds.append("i")
            keys.append(node.arg)
        else:
            break
        node = node.node
    if not kinds:
        return None
    return node, "".join(reversed(kinds)), list(reversed(keys))


def _safe(expr: nodes.Expr) -> nodes.Expr:
    """Wrap ``expr`` so that it yields a box and never raises on a missing lookup chain."""
    chain = _split_chain(expr)
    if chain is None:
        return _call(box, expr)
    root, kinds, keys = chain
    return _call(lookup, root, nodes.Const(kinds), *keys)


def build_coalesce(operands: list[nodes.Expr], operators: list[str]) -> nodes.Expr:
    """Build ``o0 op0 o1 op1 ... on`` (left-associative) as Jinja nodes.

    Every operand but the last is evaluated safely (a missing chain counts as
    undefined, as Pebble catches the lookup error); the last one is evaluated
    normally, so ``a ?? b`` still fails when both are missing. Python's ``or``
    makes each operand lazy: it is only evaluated when the ones before it
    were rejected.
    """
    acc = _safe(operands[0])
    for operator, operand in zip(operators[:-1], operands[1:-1], strict=True):
        acc = nodes.Or(_call(_KEEP[operator], acc), _safe(operand))
    last = nodes.Or(_call(_KEEP[operators[-1]], acc), _call(box, operands[-1]))
    return _call(unbox, last)


class PebbleCodeGenerator(CodeGenerator):
    """Jinja's code generator, routing ``~`` and list, tuple and map literals through checks."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802 - Jinja's name
        """Compile ``a ~ b`` to a join that refuses a too-large result before building it.

        Never folded at compile time: Jinja's folding would print ``null`` as "None".
        """
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            super().visit_Concat(node, frame)
            return
        self.write("environment.join_text(")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:  # noqa: N802 - Jinja's name
        """Measure a list literal: ``[a, a]`` doubles ``a``, and so on, exponentially."""
        self.write("environment.check_result(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:  # noqa: N802 - Jinja's name
        """Measure a tuple literal, but not a tuple of assignment targets."""
        if node.ctx != "load":
            super().visit_Tuple(node, frame)
            return
        self.write("environment.check_result(")
        super().visit_Tuple(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:  # noqa: N802 - Jinja's name
        """Measure a map literal."""
        self.write("environment.check_result(")
        super().visit_Dict(node, frame)
        self.write(")")


# -- Environment -------------------------------------------------------------------

_lexers: dict[tuple[object, ...], PebbleLexer] = {}


class PebbleEnvironment(ImmutableSandboxedEnvironment):
    """A sandbox that parses Pebble syntax and prefers map keys over attributes.

    The sandbox is the immutable flavour so that a template cannot change the
    lists and maps of the execution context it is rendered with. Every render
    is bounded in cost (see "Cost bounds"): the binary operators that can
    build large values are intercepted, loops and output are counted, and
    each intercepted operation checks the render's time budget.
    """

    code_generator_class = PebbleCodeGenerator
    # ``+``, ``*`` and ``%`` can repeat or pad text; ``*`` and ``**`` grow integers.
    # Intercepted operators are also never folded at compile time, so a
    # constant expression is bounded like any other.
    # ``/`` is intercepted to divide integers as Pebble (Java) does.
    intercepted_binops = frozenset({"+", "*", "**", "%", "/"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals.update(range=pebble_range, lipsum=bounded_lipsum, namespace=BoundedNamespace)
        self.filters["sum"] = bounded_sum
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}

    @property
    def lexer(self) -> Lexer:
        """The Pebble lexer, shared by environments with the same delimiters."""
        key = (
            self.block_start_string,
            self.block_end_string,
            self.variable_start_string,
            self.variable_end_string,
            self.comment_start_string,
            self.comment_end_string,
            self.line_statement_prefix,
            self.line_comment_prefix,
            self.trim_blocks,
            self.lstrip_blocks,
            self.newline_sequence,
            self.keep_trailing_newline,
        )
        lexer = _lexers.get(key)
        if lexer is None:
            lexer = _lexers[key] = PebbleLexer(self)
        return lexer

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        return PebbleParser(self, source, name, filename).parse()

    def template(self, source: str) -> Template:
        """Compile ``source`` once; the engine renders the same strings many times."""
        return self._templates(source)

    @functools.cached_property
    def _templates(self) -> Callable[[str], Template]:
        return functools.lru_cache(maxsize=4096)(self.from_string)

    def getattr(self, obj: object, attribute: str) -> object:
        """Resolve ``map.key`` to the entry, as Pebble does, even for ``items`` or ``keys``."""
        check_time()
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: object, argument: object) -> object:
        """Subscribe like Jinja's sandbox, within the render's time budget."""
        check_time()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: object, right: object) -> object:
        """Apply a binary operator, refusing results past the size bounds before computing them."""
        check_time()
        check_binop(operator, left, right)
        if operator == "/" and isinstance(left, int) and isinstance(right, int):
            return _java_divide(left, right)
        return check_result(super().call_binop(context, operator, left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Call a function or method from a template within the render's bounds."""
        check_time()
        check_method_call(obj, args, kwargs)
        return check_result(super().call(context, obj, *args, **kwargs), [*args, *kwargs.values()])

    def join_text(self, *parts: object) -> str:
        """``a ~ b ~ ...``: refused when the result would pass MAX_TEXT_SIZE."""
        check_time()
        # Print each part as the template output would (null as nothing, true as
        # "true"), since Pebble's ``~`` skips null and prints Java's forms.
        finalize = self.finalize if callable(self.finalize) else None
        texts = [str(finalize(part) if finalize is not None else part) for part in parts]
        refuse_text(sum(len(text) for text in texts))
        return check_result("".join(texts))  # type: ignore[no-any-return]

    def check_result(self, value: object) -> object:
        """Measure a list, tuple or map a template literal builds (see :func:`check_result`)."""
        check_time()
        return check_result(value)

    def concat(self, parts: Iterable[str]) -> str:
        """Join a template's output, refusing it past MAX_TEXT_SIZE as it grows.

        Jinja renders through here (the template, and each ``set`` block and
        macro inside it), so the outermost call opens the render's budget.
        """
        token = None
        if BUDGET.get() is None:
            token = BUDGET.set(Budget(deadline=time.thread_time() + MAX_RENDER_SECONDS))
        try:
            texts: list[str] = []
            size = 0
            for text in parts:
                size += len(text)
                refuse_text(size)
                check_time()
                texts.append(text)
            return check_result("".join(texts))  # type: ignore[no-any-return]
        finally:
            if token is not None:
                BUDGET.reset(token)
