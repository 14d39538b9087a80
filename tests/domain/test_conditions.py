"""Condition models: Kestra's names, refusals per trigger kind, and the pure evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.domain import conditions as cond
from controlplane.domain.conditions import ConditionContext, Upstream, condition_holds
from controlplane.domain.fields import State
from controlplane.domain.triggers import FlowTrigger, Schedule
from controlplane.domain.validate import validate_flow
from controlplane.errors import EvaluationError, InvalidFlowError
from tests.domain.test_property_table import proof_exists

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"


def flow(kind: str, conditions: str) -> str:
    """A flow with one trigger of ``kind`` carrying ``conditions`` (YAML list items)."""
    extra = {"Schedule": "    cron: '0 11 * * *'\n", "Webhook": "    key: k\n", "Flow": ""}[kind]
    items = "".join(f"      {line}\n" for line in conditions.strip("\n").splitlines())
    return (
        "id: f\nnamespace: demo\ntasks:\n  - {id: a, type: Log, message: m}\n"
        f"triggers:\n  - id: t\n    type: {kind}\n{extra}    conditions:\n{items}"
    )


def problems(source: str) -> list[str]:
    with pytest.raises(InvalidFlowError) as info:
        validate_flow(source)
    return [problem.message for problem in info.value.problems]


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("io.kestra.plugin.core.condition.Not", cond.Not.NAME),
        ("io.kestra.plugin.core.condition.OrCondition", cond.Or.NAME),
        ("io.kestra.core.models.conditions.types.DayWeekCondition", cond.DayWeek.NAME),
        ("DayWeekInMonth", cond.DayWeekInMonth.NAME),
        ("io.kestra.core.models.conditions.types.TimeBetweenCondition", cond.TimeBetween.NAME),
        ("io.kestra.plugin.core.condition.DateTimeBetween", cond.DateTimeBetween.NAME),
        ("WeekendCondition", cond.Weekend.NAME),
        ("io.kestra.core.models.conditions.types.PublicHolidayCondition", cond.PublicHoliday.NAME),
        ("io.kestra.plugin.core.condition.Expression", cond.Expression.NAME),
        ("io.kestra.plugin.core.condition.ExpressionCondition", cond.Expression.NAME),
        ("io.kestra.core.models.conditions.types.VariableCondition", cond.Expression.NAME),
        ("io.kestra.core.models.conditions.types.ExecutionFlowCondition", cond.ExecutionFlow.NAME),
        ("io.kestra.plugin.core.condition.MultipleCondition", cond.Multiple.NAME),
    ],
)
def test_every_kestra_spelling_selects_the_model(spelling: str, name: str) -> None:
    assert cond.CONDITION_NAMES[spelling] == name


def test_date_conditions_validate_on_a_schedule() -> None:
    source = flow(
        "Schedule",
        "- {type: io.kestra.plugin.core.condition.DayWeek, dayOfWeek: MONDAY}\n"
        "- type: Not\n"
        "  conditions:\n"
        "    - {type: PublicHoliday, country: FR}\n"
        "    - {type: Weekend}\n"
        "- {type: TimeBetween, after: '09:00:00+02:00'}\n"
        "- {type: DateTimeBetween, before: 2030-01-01T00:00:00Z}\n"
        "- {type: DayWeekInMonth, dayOfWeek: FRIDAY, dayInMonth: LAST}\n",
    )
    trigger = (validate_flow(source).spec.triggers or [])[0]
    assert isinstance(trigger, Schedule)
    assert [c.NAME for c in trigger.conditions or []] == [
        "DayWeek",
        "Not",
        "TimeBetween",
        "DateTimeBetween",
        "DayWeekInMonth",
    ]


@pytest.mark.parametrize(
    ("kind", "conditions", "message"),
    [
        (
            "Schedule",
            "- {type: HasRetryAttempt, in: [FAILED]}",
            "HasRetryAttempt cannot be used on a Schedule trigger",
        ),
        (
            "Schedule",
            "- {type: Or, conditions: [{type: ExecutionStatus, in: [SUCCESS]}]}",
            "conditions[0].conditions[0]: ExecutionStatus cannot be used on a Schedule",
        ),
        ("Webhook", "- {type: Weekend}", "Weekend cannot be used on a Webhook trigger"),
        (
            "Flow",
            "- type: Not\n"
            "  conditions: [{type: MultipleCondition, conditions: {a: {type: Weekend}}}]",
            "a MultipleCondition may only appear at the top of conditions",
        ),
        ("Flow", "- {type: Or, conditions: []}", "must not be empty"),
        ("Schedule", "- {type: DayWeek, dayOfWeek: MONDAYS}", "'MONDAYS' is not a day of the week"),
        (
            "Schedule",
            "- {type: DayWeekInMonth, dayOfWeek: MONDAY, dayInMonth: FIFTH}",
            "'FIFTH' is not one of FIRST",
        ),
        ("Schedule", "- {type: TimeBetween}", "TimeBetween needs after, before or both"),
        ("Schedule", "- {type: TimeBetween, before: '25:00'}", "is not an ISO 8601 time"),
        ("Schedule", "- {type: DateTimeBetween, after: tomorrow}", "is not an ISO 8601 datetime"),
        ("Schedule", "- {type: PublicHoliday, country: XX}", "country 'XX' is not an ISO 3166-1"),
        (
            "Schedule",
            "- {type: PublicHoliday, country: US, subDivision: US-ZZ}",
            "subDivision 'US-ZZ' is not a subdivision of US",
        ),
        ("Schedule", "- {type: Sunny}", "unknown condition type"),
    ],
)
def test_conditions_that_cannot_apply_are_refused(kind: str, conditions: str, message: str) -> None:
    found = problems(flow(kind, conditions))
    assert any(message in line for line in found), found


def test_templated_values_are_checked_when_rendered() -> None:
    source = flow("Flow", "- {type: DayWeek, dayOfWeek: '{{ trigger.outputs.day }}'}")
    trigger = (validate_flow(source).spec.triggers or [])[0]
    assert isinstance(trigger, FlowTrigger)
    condition = (trigger.conditions or [])[0]
    context = ConditionContext({"trigger": {"outputs": {"day": "monday"}, "date": "2025-01-06"}})
    assert condition_holds(condition, context)
    wrong = ConditionContext({"trigger": {"outputs": {"day": "someday"}, "date": "2025-01-06"}})
    with pytest.raises(EvaluationError, match="'someday' is not a day of the week"):
        condition_holds(condition, wrong, "conditions[0]")


def test_expression_follows_kestra_truthiness() -> None:
    assert cond.expression_holds("true")
    assert cond.expression_holds("0")  # Kestra: only blank and "false" fail
    assert cond.expression_holds("anything")
    assert not cond.expression_holds("false")
    assert not cond.expression_holds("  \n")


def test_has_retry_attempt_needs_in_and_an_upstream() -> None:
    retried = Upstream("demo", "f", State.SUCCESS, retried=((State.FAILED, State.SUCCESS),))
    holds = cond.HasRetryAttempt.model_validate({"type": "HasRetryAttempt", "in": ["SUCCESS"]})
    bare = cond.HasRetryAttempt.model_validate({"type": "HasRetryAttempt"})
    assert condition_holds(holds, ConditionContext({}, retried))
    assert not condition_holds(bare, ConditionContext({}, retried))  # no `in`: never, as Kestra
    assert not condition_holds(holds, ConditionContext({}, Upstream("d", "f", State.SUCCESS)))
    with pytest.raises(EvaluationError, match="needs an upstream execution"):
        condition_holds(holds, ConditionContext({}))


def test_day_week_in_month_matches_java_adjusters() -> None:
    def holds(day: str, weekday: str, rank: str) -> bool:
        model = cond.DayWeekInMonth.model_validate(
            {"type": "DayWeekInMonth", "date": day, "dayOfWeek": weekday, "dayInMonth": rank}
        )
        return condition_holds(model, ConditionContext({}))

    assert holds("2025-03-03T10:00:00+01:00", "MONDAY", "FIRST")
    assert holds("2025-03-24", "MONDAY", "FOURTH")
    assert holds("2025-03-31", "MONDAY", "LAST")  # a fifth Monday is the last, not the fourth
    assert not holds("2025-03-31", "MONDAY", "FOURTH")
    assert not holds("2025-03-10", "MONDAY", "FIRST")


def conditions_table() -> dict[str, tuple[str, str]]:
    """The rows of ``## Conditions`` in docs/compatibility.md: name -> (status, proof)."""
    body = DOC.read_text(encoding="utf-8").split("\n## Conditions\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("|")][2:]
    table: dict[str, tuple[str, str]] = {}
    for line in rows:
        name, status, _kinds, proof = (c.strip() for c in line.strip().strip("|").split("|"))
        table[name] = (status, proof.strip("`"))
    return table


def test_the_conditions_table_lists_every_condition_with_a_test() -> None:
    table = conditions_table()
    assert set(table) == {model.NAME for model in cond.MODELS}
    for name, (status, proof) in table.items():
        assert status == "honoured", name
        assert proof_exists(proof), f"{name}: no test {proof}"
