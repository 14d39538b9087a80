"""Kestra's calendar functions, Pebble's ``range`` and ``read`` outside the worker.

Expected values follow Kestra's function tests (``IsDayWeekInMonthFunctionTest``,
``HourOfDayFunctionTest``) and Pebble's ``range`` documentation.
"""

from __future__ import annotations

import datetime as dt

import pytest

from controlplane.domain.expressions import RenderError, render


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ dayOfWeek('2025-01-06') }}", "MONDAY"),
        ("{{ dayOfWeek('2025-01-12T23:30:00+02:00') }}", "SUNDAY"),  # the date as written
        ("{{ dayOfMonth('2025-03-31T10:00:00Z') }}", "31"),
        ("{{ monthOfYear('2025-03-31') }}", "3"),
        ("{{ hourOfDay('2025-01-06T14:30:00Z') }}", "14"),
        ("{{ hourOfDay('2025-01-06T14:30:00+02:00') }}", "14"),  # no UTC normalization
        ("{{ hourOfDay('2025-01-06T09:00:00') }}", "9"),
        ("{{ isWeekend('2025-01-11') }} {{ isWeekend('2025-01-13') }}", "true false"),
        ("{{ isDayWeekInMonth('2025-01-06', 'MONDAY', 'FIRST') }}", "true"),
        ("{{ isDayWeekInMonth('2025-01-13', 'MONDAY', 'FIRST') }}", "false"),
        ("{{ isDayWeekInMonth('2025-01-13', 'MONDAY', 'SECOND') }}", "true"),
        ("{{ isDayWeekInMonth('2025-01-27', 'monday', 'last') }}", "true"),
        ("{{ isDayWeekInMonth('2025-01-20', 'MONDAY', 'LAST') }}", "false"),
        ("{{ isDayWeekInMonth('2025-01-07', 'MONDAY', 'FIRST') }}", "false"),
        ("{{ isDayWeekInMonth(date='2025-01-20', dayOfWeek='MONDAY', position='THIRD') }}", "true"),
        ("{{ dayOfWeek(day) }} {{ hourOfDay(moment) }}", "FRIDAY 7"),
    ],
)
def test_calendar_function(template: str, expected: str) -> None:
    context = {
        "day": dt.date(2025, 1, 3),
        "moment": dt.datetime(2025, 1, 3, 7, 5, tzinfo=dt.UTC),
    }
    assert render(template, context) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ hourOfDay('2025-01-06') }}", "hourOfDay() needs a date-time"),
        ("{{ dayOfWeek('next monday') }}", "could not read 'next monday'"),
        ("{{ isDayWeekInMonth('2025-01-06', 'MONDAY', 'FIFTH') }}", "position 'FIFTH'"),
        ("{{ isDayWeekInMonth('2025-01-06', 'MON', 'FIRST') }}", "dayOfWeek 'MON'"),
    ],
)
def test_calendar_function_refuses_what_kestra_refuses(template: str, message: str) -> None:
    with pytest.raises(RenderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render(template, {})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ range(1, 4) }}", "[1,2,3,4]"),  # Pebble includes the end
        ("{{ range(0, 10, 5) }}", "[0,5,10]"),
        ("{{ range(5, 1, -2) }}", "[5,3,1]"),
        ("{{ range(5, 1) }}", "[]"),
        ("{{ range(3) }}", "[0,1,2]"),  # Jinja's one-argument form
        ("{% for i in range(1, 3) %}{{ i }};{% endfor %}", "1;2;3;"),
    ],
)
def test_range_follows_pebble(template: str, expected: str) -> None:
    assert render(template, {}) == expected


def test_range_refuses_a_zero_step() -> None:
    with pytest.raises(RenderError, match="step must not be 0"):
        render("{{ range(1, 5, 0) }}", {})


def test_read_needs_the_worker() -> None:
    with pytest.raises(RenderError, match=r"read\(\) is only available"):
        render("{{ read('scripts/a.txt') }}", {})
