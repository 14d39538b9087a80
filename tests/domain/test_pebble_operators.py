"""Pebble's operators, with Pebble's precedence, as the renderer reads them."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.domain.expressions import RenderError, check_syntax, render

CONTEXT: dict[str, Any] = {
    "name": "Flowplane",
    "tags": ["prod", "eu"],
    "labels": {"team": "ops"},
    "nothing": None,
    "outputs": {"t1": {"value": "done"}},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # equals is an alias of ==
        ("{{ name equals 'Flowplane' }}", "true"),
        ("{{ name equals 'other' }}", "false"),
        # contains: substring, list item, all of a list's items, map key; null contains nothing
        ("{{ name contains 'plane' }}", "true"),
        ("{{ tags contains 'eu' }}", "true"),
        ("{{ tags contains 'us' }}", "false"),
        ("{{ tags contains ['prod', 'eu'] }}", "true"),
        ("{{ tags contains ['prod', 'us'] }}", "false"),
        ("{{ labels contains 'team' }}", "true"),
        ("{{ labels contains 'ops' }}", "false"),
        ("{{ nothing contains 'x' }}", "false"),
        # Jinja's in keeps working
        ("{{ 'eu' in tags }}", "true"),
        ("{{ 'us' not in tags }}", "true"),
        # logic
        ("{{ not false }}", "true"),
        ("{{ true and false or true }}", "true"),
        ("{{ false or true and false }}", "false"),
        # tests
        ("{{ missing is defined }}", "false"),
        ("{{ missing is not defined }}", "true"),
        ("{{ outputs.t2.value is defined }}", "false"),
        ("{{ outputs.t1.value is defined }}", "true"),
        ("{{ nothing is null }}", "true"),
        ("{{ name is not null }}", "true"),
        ("{{ '  ' is empty }}", "true"),
        ("{{ [] is empty }}", "true"),
        ("{{ labels is not empty }}", "true"),
        ("{{ 2 is even and 3 is odd }}", "true"),
        ("{{ labels is map }}", "true"),
        ("{{ '{\"a\": 1}' is json }}", "true"),
        # concatenation prints null as nothing and booleans as Kestra does
        ("{{ 'a' ~ nothing ~ 'b' }}", "ab"),
        ("{{ 'is ' ~ true }}", "is true"),
        # coalescing and the ternary
        ("{{ missing ?? nothing ?? 'fallback' }}", "fallback"),
        ("{{ nothing ??? 'kept' }}", ""),
        ("{{ tags contains 'eu' ? 'europe' : 'elsewhere' }}", "europe"),
        # string comparisons
        ("{{ 'b' > 'a' }}", "true"),
        ("{{ 'abc' <= 'abd' }}", "true"),
        # the inclusive range operator and integer division
        ("{{ 1..3 }}", "[1,2,3]"),
        ("{% for i in 3..1 %}{{ i }}{% endfor %}", "321"),
        ("{{ 7 / 2 }}", "3"),
        ("{{ -7 / 2 }}", "-3"),
        ("{{ 7.0 / 2 }}", "3.5"),
        # upper-case literals
        ("{{ NULL ?? TRUE }}", "true"),
    ],
)
def test_operator(template: str, expected: str) -> None:
    assert render(template, CONTEXT) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # ~ (110) binds tighter than | (100): the filter applies to the whole concatenation
        ("{{ 'a' ~ 'b' | upper }}", "AB"),
        # ?? (120) binds tighter than ~ and comparisons
        ("{{ missing ?? 'x' ~ 'y' }}", "xy"),
        ("{{ missing ?? 0 == 0 }}", "true"),
        # not (500) takes only its operand: (not false) == false
        ("{{ not false == false }}", "false"),
        ("{{ not (false == false) }}", "false"),
        # is (20) is looser than comparisons and arithmetic
        ("{{ 1 + 1 is even }}", "true"),
        ("{{ 1 == 1 is not null }}", "true"),
        # contains (20) is looser than ~ and looser than comparisons
        ("{{ name contains 'Flow' ~ 'plane' }}", "true"),
        ("{{ tags contains 'e' ~ 'u' and true }}", "true"),
        # and (15) binds tighter than or (10)
        ("{{ true or false and false }}", "true"),
        # * (60) tighter than + (40)
        ("{{ 1 + 2 * 3 }}", "7"),
        # the ternary is loosest and right-associative
        ("{{ false ? 1 : true ? 2 : 3 }}", "2"),
    ],
)
def test_pebble_precedence(template: str, expected: str) -> None:
    assert render(template, CONTEXT) == expected


def test_defined_on_a_missing_chain_does_not_raise_but_null_is_strict() -> None:
    assert render("{{ a.b.c is defined ? 'yes' : 'no' }}", {}) == "no"
    with pytest.raises(RenderError, match="'missing' is undefined"):
        render("{{ missing is null }}", {})


def test_contains_needs_a_container() -> None:
    with pytest.raises(RenderError, match="'contains' needs a string, a list or a map"):
        render("{{ 3 contains 1 }}", {})


@pytest.mark.parametrize(
    "template",
    [
        "{{ a equals b }}",
        "{{ a contains b }}",
        "{{ a is not empty }}",
        "{{ a is map }}",
        "{{ a is json }}",
        "{{ 1..3 }}",
        "{{ not a and b or c }}",
        "{{ a ?? b ? c : d }}",
    ],
)
def test_operators_pass_validation(template: str) -> None:
    assert check_syntax(template) is None


def test_elvis_is_refused_as_in_pebble() -> None:
    error = check_syntax("{{ a ?: b }}")
    assert error is not None
    assert "':'" in error.message or "unexpected" in error.message
