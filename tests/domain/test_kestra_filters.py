"""The filters, functions and tests Kestra documents, and their cost bounds."""

from __future__ import annotations

import re
from typing import Any

import pytest

from controlplane.domain.expressions import RenderError, render

CONTEXT: dict[str, Any] = {
    "items": [{"name": "alpha", "value": 1}, {"name": "bravo", "value": 2}],
    "when": "2024-01-02T03:04:05Z",
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # JSON, YAML, jq
        ("{{ items | jq('.[1].name') | first }}", "bravo"),
        ("{{ items | jq('.[].value * 2') }}", "[2,4]"),
        ("{{ items | toJson }}", '[{"name":"alpha","value":1},{"name":"bravo","value":2}]'),
        ("{{ fromJson('{\"a\": [1]}').a[0] }}", "1"),
        ("{{ {'a': [1, 2]} | yaml }}", "a:\n- 1\n- 2\n"),
        ("{{ yaml('a: 1').a }}", "1"),
        # strings
        ("{{ 'a.b.c' | substringBefore('.') }}", "a"),
        ("{{ 'a.b.c' | substringAfter('.') }}", "b.c"),
        ("{{ 'a.b.c' | substringBeforeLast('.') }}", "a.b"),
        ("{{ 'a.b.c' | substringAfterLast('.') }}", "c"),
        ("{{ 'abc' | substringAfter('x') }}", ""),
        ("{{ 'abc' | substringBefore('x') }}", "abc"),
        ("{{ 'report.csv' | endsWith('.csv') }}", "true"),
        ("{{ 'report.csv' | startsWith('data') }}", "false"),
        ("{{ 'this is a long sentence.' | abbreviate(7) }}", "this..."),
        ("{{ 'hello World' | capitalize }}", "Hello World"),
        ("{{ 'article tiTle' | title }}", "Article TiTle"),
        ("{{ '  padded ' | trim }}", "padded"),
        ("{{ 'Mixed' | upper ~ ('Mixed' | lower) }}", "MIXEDmixed"),
        ("{{ 'I like %this%.' | replace({'%this%': 'tea'}) }}", "I like tea."),
        ("{{ 'v1.2.30' | replace({'[0-9]+': '#'}, regexp=true) }}", "v#.#.#"),
        ("{{ 'john smith' | replace({'(\\\\w+) (\\\\w+)': '$2 $1'}, regexp=true) }}", "smith john"),
        ("{{ 'abc' | replace('b', 'B') }}", "aBc"),
        ("{{ 'a,b,,c,,' | split(',') }}", '["a","b","","c"]'),
        ("{{ 'a1b22c' | split('[0-9]+') }}", '["a","b","c"]'),
        ("{{ 'a,b,c' | split(',', 2) }}", '["a","b,c"]'),
        ("{{ ['a', 'b'] | join('-') }}", "a-b"),
        ("{{ 'Hello World!' | slugify }}", "hello-world"),
        ("{{ \"L'eau\" | escapeChar('single') }}", "L\\'eau"),
        ("{{ \"L'eau\" | escapeChar('shell') }}", "L'\\''eau"),
        ("{{ 'a b/c' | urlencode }}", "a+b%2Fc"),
        ("{{ 'a+b%2Fc' | urldecode }}", "a b/c"),
        ("{{ 'test' | base64encode }}", "dGVzdA=="),
        ("{{ 'dGVzdA==' | base64decode }}", "test"),
        ("{{ 'test' | md5 }}", "098f6bcd4621d373cade4e832627b4f6"),
        ("{{ 'test' | sha1 }}", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"),
        (
            "{{ 'test' | sha256 }}",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
        ("{{ 'test' | sha512 | length }}", "128"),
        ("{{ 'a\nb' | nindent(2) }}", "\n  a\n  b"),
        ("{{ 'a\nb' | indent(2) }}", "a\n  b"),
        ("{{ 1234567.891 | numberformat('#,##0.00') }}", "1,234,567.89"),
        # collections
        ("{{ {'a': 1, 'b': 2} | keys }}", '["a","b"]'),
        ("{{ {'a': 1, 'b': 2} | values }}", "[1,2]"),
        ("{{ ['b', 'B', 'a'] | sort }}", '["B","a","b"]'),
        ("{{ [3, 1, 2] | rsort }}", "[3,2,1]"),
        ("{{ [1, 2, 3] | reverse }}", "[3,2,1]"),
        ("{{ [1, 2, 3] | first }}~{{ [1, 2, 3] | last }}~{{ 'abc' | length }}", "1~3~3"),
        ("{{ null | length }}", "0"),
        ("{{ [1, 2] | merge([3]) }}", "[1,2,3]"),
        ("{{ {'a': 1} | merge({'b': 2}) }}", '{"a":1,"b":2}'),
        ("{{ 'apple' | slice(1, 3) }}", "pp"),
        ("{{ [1, 2, 3, 4] | slice(2) }}", "[3,4]"),
        ("{{ [1, 2, 3, 4, 5] | chunk(2) }}", "[[1,2],[3,4],[5]]"),
        ("{{ [1, 2, 1, {'a': 1}, {'a': 1}] | distinct }}", '[1,2,{"a":1}]'),
        ("{{ [[1, 2], [3], 4] | flatten }}", "[1,2,3,4]"),
        ("{{ '12' | number + 1 }}", "13"),
        ("{{ '12.5' | number('FLOAT') }}", "12.5"),
        (
            "{{ 'x' | className }}~{{ 1 | className }}~{{ [] | className }}",
            ("java.lang.String~java.lang.Integer~java.util.ArrayList"),
        ),
        # dates
        ("{{ when | date('yyyy-MM-dd') }}", "2024-01-02"),
        ("{{ when | date('HH:mm', timeZone='Europe/Paris') }}", "04:04"),
        ("{{ when | dateAdd(1, 'DAYS') }}", "2024-01-03T03:04:05Z"),
        ("{{ when | timestamp }}", "1704164645"),
        ("{{ when | timestampMilli }}", "1704164645000"),
        ("{{ when | timestampMicro }}", "1704164645000000"),
        ("{{ when | timestampNano }}", "1704164645000000000"),
        # functions
        ("{{ max(1, 5, 3) }}~{{ min(4, 2) }}", "5~2"),
        ("{{ render('{{ inner }}') }}", "2"),
        ("{{ renderOnce('{{ 40 + 2 }}') }}", "42"),
        ("{{ printContext().when }}", "2024-01-02T03:04:05Z"),
        ("{{ randomInt(3, 4) }}", "3"),
    ],
)
def test_filter(template: str, expected: str) -> None:
    context = {**CONTEXT, "inner": "{% raw %}{{ 1 + 1 }}{% endraw %}"}
    assert render(template, context) == expected


def test_render_is_recursive_and_render_once_is_not() -> None:
    context = {"a": "{{ b }}", "b": "{{ c }}", "c": "deep"}
    assert render("{{ render(a) }}", context) == "deep"
    assert render("{{ renderOnce(a) }}", context) == "{{ c }}"


def test_ids_and_uuids_differ() -> None:
    assert re.fullmatch(r"[0-9a-f-]{36}", render("{{ uuid() }}", {}))
    assert re.fullmatch(r"[0-9A-Za-z]{22}", render("{{ id() }}", {}))
    assert render("{{ uuid() }}", {}) != render("{{ uuid() }}", {})
    assert 1024 <= int(render("{{ randomPort() }}", {})) <= 65535


def test_now_formats_like_date() -> None:
    assert re.fullmatch(r"\d{4}", render("{{ now() | date('yyyy') }}", {}))


def test_print_context_hides_internal_values() -> None:
    context = {"visible": 1, "__secret_lookup": lambda _key: "s3cr3t"}
    assert render("{{ printContext() }}", context) == '{"visible":1}'


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 1 | jq('repeat(1)') }}", "cost bound"),
        ("{{ 'x' | jq('. * 100000000') }}", "cost bound"),
        (
            "{{ ('x' * 100000) | jq('[., ., ., ., ., ., ., ., ., ., ., .]') }}",
            "text result too large",
        ),
        ("{{ 'aaaa' | replace({'a': 'b' * 400000}) }}", "text result too large"),
        ("{{ 'aaaa' | replace({'(a+)+$': 'b'}, regexp=true) }}", "could backtrack"),
        ("{{ 'aaaa' | split('(a*)*') }}", "could backtrack"),
        ("{{ ('x' * 900000) | base64encode }}", "text result too large"),
        ("{{ ['x' * 600000] | merge(['x' * 600000]) }}", "text result too large"),
    ],
)
def test_costly_filters_stay_inside_the_bounds(template: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render(template, {})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 'x' | jq('.[') }}", "jq '.\\[': .*syntax error"),
        ("{{ 'x' | escapeChar('foo') }}", "escapeChar type must be one of"),
        ("{{ 'abc' | slice(2, 9) }}", "outside 0..3"),
        ("{{ 'not base64!' | base64decode }}", "Error"),
        ("{{ 1 | merge('a') }}", "merge needs two lists or two maps"),
    ],
)
def test_filter_errors_say_what_went_wrong(template: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render(template, {})
