"""Every render is bounded in cost: each bound fails fast, naming itself, and normal
expressions are untouched."""

from __future__ import annotations

import pytest

from controlplane.domain import pebble
from controlplane.domain.expressions import RenderError, render

# Flow-like context: what a task's fields are rendered with.
CONTEXT = {
    "flow": {"namespace": "company.team", "id": "bounded"},
    "inputs": {"count": 3, "name": "world"},
    "outputs": {"fetch": {"body": "x" * 2_000_000}},  # large, but not built by the template
}

INTEGER = "integer result too large (over 4096 bits)"
TEXT = "text result too large (over 1048576 characters)"
LOOPS = "more than 100000 loop iterations"
RANGE = "range() too long (over 10000 items)"
TIME = "render took longer than"

COSTLY = [
    # The reported bug: held the process for 10 s.
    pytest.param("{{ 9 ** 14348905 > 1 }}", INTEGER, id="huge-power"),
    pytest.param("{{ (2 ** 5000) > 0 }}", INTEGER, id="power-over-the-bound"),
    pytest.param(
        "{% set ns = namespace(n=3) %}{% for i in range(20) %}{% set ns.n = ns.n * ns.n %}"
        "{% endfor %}{{ ns.n > 0 }}",
        INTEGER,
        id="squaring-in-a-loop",
    ),
    pytest.param("{{ ('ab' * 600000) | length }}", TEXT, id="string-repeat"),
    pytest.param("{{ ([1, 2] * 600000) | length }}", TEXT, id="list-repeat"),
    pytest.param("{% set s = 'x' * 600000 %}{{ (s ~ s) | length }}", TEXT, id="tilde-concat"),
    pytest.param("{% set s = 'x' * 600000 %}{{ (s + s) | length }}", TEXT, id="plus-concat"),
    pytest.param("{{ range(2000) | join('-' * 1000) | length }}", TEXT, id="big-join"),
    pytest.param("{{ ('a' * 2000) | replace('a', 'b' * 1000) | length }}", TEXT, id="big-replace"),
    pytest.param("{{ 'x' | center(2000000) | length }}", TEXT, id="big-center"),
    pytest.param("{{ ('a\n' * 1000) | indent('x' * 2000) | length }}", TEXT, id="big-indent"),
    pytest.param("{{ ('%2000000d' % 1) | length }}", TEXT, id="printf-width"),
    pytest.param("{{ 'x'.ljust(2000000) | length }}", TEXT, id="str-method-padding"),
    pytest.param(
        "{% for i in range(2000) %}{{ 'x' * 1000 }}{% endfor %}", TEXT, id="rendered-output"
    ),
    pytest.param("{{ 'x' ~ outputs.fetch.body }}", TEXT, id="concat-onto-large-context"),
    pytest.param(
        # [a, a] doubles a: sixty rounds would print 2**60 items.
        "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
        "{% endfor %}{{ ns.l == ns.l }}",
        TEXT,
        id="shared-nesting",
    ),
    pytest.param("{{ range(20000) | length }}", RANGE, id="range-cap"),
    pytest.param(
        "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
        LOOPS,
        id="nested-range-loops",
    ),
    pytest.param(
        "{% set t = '{% for j in range(1000) %}{% endfor %}' %}"
        "{% for i in range(200) %}{{ render(t) }}{% endfor %}",
        LOOPS,
        id="nested-render-shares-the-budget",
    ),
    pytest.param(
        # Within every size bound, but about a millisecond per iteration.
        "{% set l = range(10000) | list %}{% for i in range(90) %}{% for j in range(1000) %}"
        "{{ l | unique | max }}{% endfor %}{% endfor %}",
        TIME,
        id="slow-loop",
    ),
]


@pytest.mark.parametrize(("template", "bound"), COSTLY)
def test_costly_expression_fails_with_the_bound_it_exceeded(template: str, bound: str) -> None:
    with pytest.raises(RenderError) as failure:
        render(template, CONTEXT)
    message = str(failure.value)
    assert message.startswith("expression exceeded its cost bound: "), message
    assert bound in message


def test_time_limit_is_checked_at_every_operation(monkeypatch: pytest.MonkeyPatch) -> None:
    # A deadline already past: the first intercepted operation notices it.
    monkeypatch.setattr(pebble, "MAX_RENDER_SECONDS", -1.0)
    with pytest.raises(RenderError, match=TIME):
        render("{{ inputs.name }}", CONTEXT)


def test_budget_is_per_render() -> None:
    # Each render has its own budget: many renders under the bound all pass.
    loop = "{% for i in range(10000) %}{% endfor %}{{ inputs.count }}"
    assert [render(loop, CONTEXT) for _ in range(20)] == ["3"] * 20


NORMAL = [
    ("{{ 2 ** 10 }}", "1024"),
    ("{{ 2 ** 4000 > 0 }}", "true"),
    ("{{ 7 * 6 }} {{ 10 // 3 }} {{ 10 % 3 }} {{ 1 + 2 }}", "42 3 1 3"),
    ("{{ 'ab' * inputs.count }}", "ababab"),
    ("{{ [1, 2] + [3] }}", "[1,2,3]"),
    ("{{ {'a': [1, 2]} }}", '{"a":[1,2]}'),
    ("{{ flow.namespace ~ '.' ~ flow.id }}", "company.team.bounded"),
    ("{{ range(3) | join(',') }}", "0,1,2"),
    # Pebble's range includes its end.
    ("{{ range(1, 4) | map('string') | join('-') }}", "1-2-3-4"),
    ("{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}", "1/3 2/3 3/3 "),
    ("{% for k in {'a': 1, 'b': 2} %}{{ k }}{% else %}none{% endfor %}", "ab"),
    ("{% for x in [] %}{{ x }}{% else %}none{% endfor %}", "none"),
    ("{% set a, b = 1, 2 %}{{ a + b }}", "3"),
    ("{{ '%05d' % 42 }} {{ '%s-%s' % ('a', 'b') }}", "00042 a-b"),
    ("{{ '{:>5}'.format('x') }}|{{ 'x'.ljust(3) }}|", "    x|x  |"),
    ("{{ 'a-b' | replace('-', '+') }} {{ 'x' | center(5) }}", "a+b   x  "),
    ("{{ [[1], [2, 3]] | sum(start=[]) }} {{ [1, 2, 3] | sum }}", "[1,2,3] 6"),
    ("{{ range(5) | batch(2, 0) | list }}", "[[0,1],[2,3],[4,0]]"),
    (
        "{% set ns = namespace(total=0) %}{% for i in range(4) %}{% set ns.total = ns.total + i %}"
        "{% endfor %}{{ ns.total }}",
        "6",
    ),
    ("{{ outputs.fetch.body | length }}", "2000000"),
    ("{{ inputs.missing ?? 'fallback' }}", "fallback"),
    ("{{ render('{{ inputs.name }}') }}", "world"),
]


@pytest.mark.parametrize(("template", "expected"), NORMAL)
def test_normal_expressions_render_as_before(template: str, expected: str) -> None:
    assert render(template, CONTEXT) == expected
