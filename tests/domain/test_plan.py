"""The plan: active set + desired files → changes, diffs and every problem of the commit."""

from __future__ import annotations

import copy
import string
import textwrap

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.domain.normalize import normalize, spec_digest
from controlplane.domain.plan import (
    Action,
    ActiveFlow,
    DesiredFile,
    FieldChange,
    FieldChangeKind,
    Plan,
    SecretAction,
    SecretChange,
    compute_plan,
    render_plan_text,
)
from controlplane.domain.validate import validate_flow

NS = "platform.ops"


def flow_source(flow_id: str = "backup", namespace: str = NS, *messages: str) -> str:
    tasks = "".join(
        f"  - id: t{index}\n    type: io.kestra.plugin.core.log.Log\n    message: {message}\n"
        for index, message in enumerate(messages or ("hi",))
    )
    return f"id: {flow_id}\nnamespace: {namespace}\ntasks:\n{tasks}"


def dedent(source: str) -> str:
    return textwrap.dedent(source).lstrip("\n")


def active(source: str, revision: int = 1) -> ActiveFlow:
    validated = validate_flow(source)
    return ActiveFlow(
        validated.namespace,
        validated.id,
        revision,
        source,
        normalize(validated.spec),
        spec_digest(validated.spec),
    )


def desired(source: str, path: str | None = None) -> DesiredFile:
    if path is None:
        data = yaml.safe_load(source)
        path = f"flows/{data['namespace']}/{data['id']}.yaml"
    return DesiredFile(path, source)


def only(plan: Plan, namespace: str = NS, flow_id: str = "backup"):
    change = plan.find(namespace, flow_id)
    assert change is not None
    return change


def rendered_problems(plan: Plan) -> list[str]:
    return [problem.render() for problem in plan.problems]


# --- actions -----------------------------------------------------------------


def test_each_action_with_revisions_and_summary() -> None:
    same = flow_source("same")
    plan = compute_plan(
        active=[active(same, 4), active(flow_source("edited"), 2), active(flow_source("gone"), 7)],
        desired=[
            desired(same),
            desired(flow_source("edited", NS, "hello")),
            desired(flow_source("fresh")),
        ],
    )
    assert plan.valid
    assert plan.has_changes
    by_id = {change.flow_id: change for change in plan.changes}
    assert [change.flow_id for change in plan.changes] == ["edited", "fresh", "gone", "same"]
    assert (by_id["same"].action, by_id["same"].from_revision, by_id["same"].to_revision) == (
        Action.UNCHANGED,
        4,
        None,
    )
    assert (by_id["edited"].action, by_id["edited"].from_revision, by_id["edited"].to_revision) == (
        Action.CHANGE,
        2,
        3,
    )
    assert (by_id["fresh"].action, by_id["fresh"].from_revision, by_id["fresh"].to_revision) == (
        Action.ADD,
        None,
        1,
    )
    gone = by_id["gone"]
    assert (gone.action, gone.from_revision, gone.to_revision) == (Action.REMOVE, 7, None)
    assert (gone.path, gone.source, gone.spec, gone.spec_sha256) == (None, None, None, None)
    assert plan.summary == {"add": 1, "change": 1, "remove": 1, "unchanged": 1}
    assert by_id["same"].text_diff == ""


def test_desired_side_carries_what_apply_writes() -> None:
    source = flow_source("backup", NS, "hello")
    change = only(compute_plan([], [desired(source)]))
    validated = validate_flow(source)
    assert change.path == "flows/platform.ops/backup.yaml"
    assert change.source == source
    assert change.spec == normalize(validated.spec)
    assert change.spec_sha256 == spec_digest(validated.spec)


def test_text_diffs_are_labelled_unified_diffs() -> None:
    plan = compute_plan(
        [active(flow_source("backup"), 3), active(flow_source("gone"))],
        [desired(flow_source("backup", NS, "hello")), desired(flow_source("fresh"))],
    )
    changed = only(plan).text_diff.splitlines()
    assert changed[:2] == [
        "--- platform.ops/backup (revision 3)",
        "+++ flows/platform.ops/backup.yaml",
    ]
    assert "-    message: hi" in changed
    assert "+    message: hello" in changed
    added = only(plan, NS, "fresh").text_diff.splitlines()
    assert added[:2] == ["--- /dev/null", "+++ flows/platform.ops/fresh.yaml"]
    assert "+id: fresh" in added
    removed = only(plan, NS, "gone").text_diff.splitlines()
    assert removed[1] == "+++ /dev/null"
    assert "-id: gone" in removed


def test_missing_final_newline_is_marked_in_the_text_diff() -> None:
    source = flow_source()
    change = only(compute_plan([active(source)], [desired(source.rstrip("\n"))]))
    assert change.cosmetic
    assert "\\ No newline at end of file" in change.text_diff


def test_cosmetic_change_is_flagged_without_fields() -> None:
    before = flow_source()
    after = dedent(
        """
        # nightly backup
        namespace: "platform.ops"
        id: backup
        tasks:
        - {id: t0, type: Log, message: 'hi'}   # same task, other spelling
        """
    )
    change = only(compute_plan([active(before, 5)], [desired(after)]))
    assert change.action is Action.CHANGE
    assert change.cosmetic
    assert change.fields == ()
    assert (change.from_revision, change.to_revision) == (5, 6)
    assert "+# nightly backup" in change.text_diff


def test_source_identical_but_spec_digest_differs_is_a_real_change() -> None:
    # A live revision written by an older normalizer: same bytes, other digest.
    source = flow_source()
    stale = active(source)
    stale = ActiveFlow(NS, "backup", 1, source, {**stale.spec, "description": "old"}, "0" * 64)
    change = only(compute_plan([stale], [desired(source)]))
    assert change.action is Action.CHANGE
    assert not change.cosmetic
    assert change.fields == (FieldChange("description", FieldChangeKind.REMOVED, "old", None),)


# --- field diffs ---------------------------------------------------------------


def test_field_change_names_the_path_with_before_and_after() -> None:
    change = only(
        compute_plan(
            [active(flow_source("backup", NS, "hi", "two"))],
            [desired(flow_source("backup", NS, "hello", "two"))],
        )
    )
    assert not change.cosmetic
    assert change.fields == (
        FieldChange("tasks[0].message", FieldChangeKind.CHANGED, "hi", "hello"),
    )


def test_added_and_removed_properties() -> None:
    before = flow_source()
    after = before.replace("namespace:", "description: nightly\nnamespace:").replace(
        "    message: hi\n", "    message: hi\n    timeout: PT5M\n"
    )
    change = only(compute_plan([active(before)], [desired(after)]))
    assert set(change.fields) == {
        FieldChange("description", FieldChangeKind.ADDED, None, "nightly"),
        FieldChange("tasks[0].timeout", FieldChangeKind.ADDED, None, "PT5M"),
    }
    back = only(compute_plan([active(after)], [desired(before)]))
    assert FieldChange("description", FieldChangeKind.REMOVED, "nightly", None) in back.fields


def test_inserting_a_task_in_the_middle_is_one_addition_not_a_cascade() -> None:
    before = dedent(
        """
        id: backup
        namespace: platform.ops
        tasks:
          - {id: a, type: Log, message: one}
          - {id: c, type: Log, message: three}
          - {id: d, type: Log, message: four}
        """
    )
    after = before.replace("  - {id: c", "  - {id: b, type: Log, message: two}\n  - {id: c")
    change = only(compute_plan([active(before)], [desired(after)]))
    assert len(change.fields) == 1
    inserted = change.fields[0]
    assert (inserted.path, inserted.kind, inserted.before) == ("tasks[1]", "added", None)
    assert inserted.after["id"] == "b"


def test_removed_and_moved_tasks() -> None:
    before = dedent(
        """
        id: backup
        namespace: platform.ops
        tasks:
          - {id: a, type: Log, message: one}
          - {id: b, type: Log, message: two}
          - {id: c, type: Log, message: three}
        """
    )
    after = dedent(
        """
        id: backup
        namespace: platform.ops
        tasks:
          - {id: c, type: Log, message: three}
          - {id: a, type: Log, message: one}
        """
    )
    change = only(compute_plan([active(before)], [desired(after)]))
    kinds = [(item.path, item.kind) for item in change.fields]
    assert kinds == [("tasks[0]", "moved"), ("tasks[1]", "removed")]
    assert (change.fields[0].before, change.fields[0].after) == (2, 0)
    assert change.fields[1].before["id"] == "b"
    text = render_plan_text(compute_plan([active(before)], [desired(after)]))
    assert "    ~ tasks[0]: moved from tasks[2]" in text


def test_nested_tasks_are_matched_by_id_too() -> None:
    before = dedent(
        """
        id: backup
        namespace: platform.ops
        tasks:
          - id: seq
            type: Sequential
            tasks:
              - {id: a, type: Log, message: one}
              - {id: b, type: Log, message: two}
        """
    )
    after = before.replace(
        "      - {id: a", "      - {id: new, type: Log, message: zero}\n      - {id: a"
    ).replace("message: two", "message: deux")
    change = only(compute_plan([active(before)], [desired(after)]))
    assert [(item.path, item.kind) for item in change.fields] == [
        ("tasks[0].tasks[0]", "added"),
        ("tasks[0].tasks[2].message", "changed"),
    ]


# --- problems ----------------------------------------------------------------------


BROKEN = dedent(
    """
    id: backup
    namespace: platform.ops
    tasks:
      - id: a
        type: Lgo
        message: hi
    """
)


def test_invalid_file_makes_the_plan_invalid_with_located_problems() -> None:
    plan = compute_plan([], [desired(BROKEN)])
    assert not plan.valid
    assert rendered_problems(plan) == [
        "flows/platform.ops/backup.yaml:4:5: tasks[0]: unknown task type 'Lgo'; "
        "did you mean 'io.kestra.plugin.core.log.Log'?"
    ]
    assert plan.changes == ()


def test_broken_file_of_a_live_flow_is_not_planned_as_a_removal() -> None:
    plan = compute_plan([active(flow_source())], [desired(BROKEN)])
    assert not plan.valid
    assert plan.changes == ()


def test_every_broken_file_is_reported() -> None:
    plan = compute_plan(
        [],
        [
            desired(BROKEN),
            DesiredFile("flows/platform.ops/other.yaml", "id: other\nnamespace: [\n"),
            desired(flow_source("fine")),
        ],
    )
    files = [problem.file for problem in plan.problems]
    assert files == ["flows/platform.ops/backup.yaml", "flows/platform.ops/other.yaml"]
    assert all(problem.line is not None for problem in plan.problems)
    assert only(plan, NS, "fine").action is Action.ADD  # still listed, for review


def test_namespace_must_match_its_directory() -> None:
    plan = compute_plan([], [desired(flow_source(), path="flows/platform.data/backup.yaml")])
    assert rendered_problems(plan) == [
        "flows/platform.data/backup.yaml:2:12: namespace: namespace 'platform.ops' does not "
        "match the directory of flows/platform.data/backup.yaml; move the file to "
        "flows/platform.ops/ or set namespace: platform.data"
    ]


def test_file_name_must_match_the_flow_id() -> None:
    plan = compute_plan([], [desired(flow_source(), path="flows/platform.ops/nightly.yml")])
    assert rendered_problems(plan) == [
        "flows/platform.ops/nightly.yml:1:5: id: id 'backup' does not match the file name of "
        "flows/platform.ops/nightly.yml; rename the file to backup.yaml or set id: nightly"
    ]


def test_layout_outside_namespace_directories() -> None:
    plan = compute_plan(
        [],
        [
            desired(flow_source("loose"), path="flows/loose.yaml"),
            desired(flow_source("deep"), path="flows/platform/ops/deep.yaml"),
            desired(flow_source("elsewhere"), path="docs/elsewhere.yaml"),
            DesiredFile("flows/platform.ops/README.md", "# not a flow"),
            DesiredFile("secrets/platform.ops.age", "binary"),
        ],
    )
    assert rendered_problems(plan) == [
        "flows/loose.yaml: flow files belong at flows/<namespace>/<id>.yaml, not directly in "
        "flows/",
        "flows/platform/ops/deep.yaml: flow files belong at flows/<namespace>/<id>.yaml, "
        "not nested below flows/platform",
    ]
    assert [change.flow_id for change in plan.changes] == ["deep", "loose"]


def test_flows_path_is_configurable() -> None:
    plan = compute_plan(
        [],
        [desired(flow_source(), path="kestra/flows/platform.ops/backup.yaml")],
        flows_path="kestra/flows",
    )
    assert plan.valid
    assert only(plan).action is Action.ADD
    assert compute_plan([], [desired(flow_source())], flows_path="kestra/flows/").changes == ()


def test_one_flow_defined_by_two_files() -> None:
    plan = compute_plan(
        [],
        [
            desired(flow_source(), path="flows/platform.ops/backup.yaml"),
            desired(flow_source("backup", NS, "other"), path="flows/platform.ops/backup.yml"),
        ],
    )
    assert rendered_problems(plan) == [
        "flows/platform.ops/backup.yml:1:5: id: flow platform.ops/backup is defined twice: "
        "in flows/platform.ops/backup.yaml and flows/platform.ops/backup.yml"
    ]
    assert only(plan).path == "flows/platform.ops/backup.yaml"


def test_active_set_with_a_flow_twice_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        compute_plan([active(flow_source()), active(flow_source())], [])


# --- subflows ----------------------------------------------------------------------

PARENT = dedent(
    """
    id: parent
    namespace: platform.ops
    tasks:
      - id: call
        type: io.kestra.plugin.core.flow.Subflow
        namespace: io.x
        flowId: child
    """
)
CHILD = flow_source("child", "io.x")
MISSING_CHILD = (
    "flows/platform.ops/parent.yaml:7:13: tasks[0].flowId: subflow io.x/child does not exist "
    "in this commit or on the server"
)


def test_subflow_target_must_exist() -> None:
    assert rendered_problems(compute_plan([], [desired(PARENT)])) == [MISSING_CHILD]


def test_subflow_target_in_the_commit_or_owned_elsewhere() -> None:
    assert compute_plan([], [desired(PARENT), desired(CHILD)]).valid
    assert compute_plan([], [desired(PARENT)], known_flows=[("io.x", "child")]).valid


def test_removing_a_called_flow_is_refused() -> None:
    plan = compute_plan([active(PARENT), active(CHILD)], [desired(PARENT)])
    assert rendered_problems(plan) == [MISSING_CHILD]
    assert only(plan, "io.x", "child").action is Action.REMOVE


def test_broken_subflow_target_reports_only_its_own_problem() -> None:
    broken_child = CHILD.replace("type: io.kestra.plugin.core.log.Log", "type: Lgo")
    plan = compute_plan([], [desired(PARENT), desired(broken_child)])
    assert [problem.file for problem in plan.problems] == ["flows/io.x/child.yaml"]


def test_templated_subflow_targets_are_not_checked() -> None:
    source = PARENT.replace("flowId: child", 'flowId: "{{ inputs.child }}"')
    assert compute_plan([], [desired(source)]).valid


def test_subflows_are_found_anywhere_in_the_task_tree() -> None:
    source = dedent(
        """
        id: parent
        namespace: platform.ops
        tasks:
          - id: dag
            type: io.kestra.plugin.core.flow.Dag
            tasks:
              - task:
                  id: branch
                  type: If
                  condition: "{{ true }}"
                  then:
                    - {id: deep, type: Subflow, namespace: io.x, flowId: in-dag}
        errors:
          - {id: on-error, type: Subflow, namespace: io.x, flowId: in-errors}
        finally:
          - {id: at-end, type: Subflow, namespace: io.x, flowId: in-finally}
        """
    )
    problems = compute_plan([], [desired(source)]).problems
    assert [(problem.path, problem.line) for problem in problems] == [
        ("tasks[0].tasks[0].task.then[0].flowId", 12),
        ("errors[0].flowId", 14),
        ("finally[0].flowId", 16),
    ]


# --- secrets -----------------------------------------------------------------------

USES_SECRET = dedent(
    """
    id: backup
    namespace: platform.ops
    tasks:
      - id: dump
        type: Log
        message: "password is {{ secret('DB_PASSWORD') }} and {{ secret(\\"API\\") }}"
    """
)


def test_referenced_secret_must_be_defined_for_the_namespace() -> None:
    plan = compute_plan([], [desired(USES_SECRET)], desired_secrets={NS: {"API": "v1"}})
    assert rendered_problems(plan) == [
        "flows/platform.ops/backup.yaml:6:14: tasks[0].message: secret 'DB_PASSWORD' is "
        "referenced but not defined in secrets/platform.ops.age"
    ]
    no_secrets = compute_plan([], [desired(USES_SECRET)])
    assert len(no_secrets.problems) == 2
    other_namespace = compute_plan(
        [], [desired(USES_SECRET)], desired_secrets={"io.x": {"API": "v1", "DB_PASSWORD": "v1"}}
    )
    assert len(other_namespace.problems) == 2
    defined = compute_plan(
        [], [desired(USES_SECRET)], desired_secrets={NS: {"API": "v", "DB_PASSWORD": "v"}}
    )
    assert defined.valid


def test_secret_call_outside_a_template_is_plain_text() -> None:
    source = flow_source("backup", NS, "\"call secret('X') to read it\"")
    assert compute_plan([], [desired(source)]).valid


def test_secret_changes_carry_keys_only_and_render_as_sensitive() -> None:
    hashes = {"h-old-1111", "h-new-2222", "h-gone-3333", "h-added-4444", "h-same-5555"}
    plan = compute_plan(
        [],
        [],
        active_secrets={
            NS: {"DB_PASSWORD": "h-old-1111", "OLD": "h-gone-3333", "K": "h-same-5555"}
        },
        desired_secrets={
            NS: {"DB_PASSWORD": "h-new-2222", "K": "h-same-5555"},
            "io.x": {"TOKEN": "h-added-4444"},
        },
    )
    assert plan.secret_changes == (
        SecretChange("io.x", "TOKEN", SecretAction.ADD),
        SecretChange(NS, "DB_PASSWORD", SecretAction.CHANGE),
        SecretChange(NS, "OLD", SecretAction.REMOVE),
    )
    assert plan.has_changes
    text = render_plan_text(plan)
    assert "~ secret platform.ops/DB_PASSWORD: changed (sensitive)" in text
    assert "+ secret io.x/TOKEN: added (sensitive)" in text
    assert "- secret platform.ops/OLD: removed (sensitive)" in text
    assert "3 secrets changed" in text
    assert not any(value in text or value in repr(plan) for value in hashes)


# --- rendering -----------------------------------------------------------------------


def test_render_plan_text_like_terraform() -> None:
    plan = compute_plan(
        [
            active(flow_source("edited"), 2),
            active(flow_source("pretty"), 3),
            active(flow_source("gone"), 7),
            active(flow_source("same")),
        ],
        [
            desired(flow_source("edited", NS, "hello")),
            desired("# reviewed\n" + flow_source("pretty")),
            desired(flow_source("fresh")),
            desired(flow_source("same")),
        ],
        desired_secrets={NS: {"DB_PASSWORD": "h"}},
        active_secrets={NS: {"DB_PASSWORD": "g"}},
    )
    assert render_plan_text(plan) == (
        "~ change platform.ops/edited  revision 2 → 3\n"
        '    ~ tasks[0].message: "hi" → "hello"\n'
        "+ add platform.ops/fresh  flows/platform.ops/fresh.yaml\n"
        "- remove platform.ops/gone  revision 7\n"
        "~ change platform.ops/pretty  revision 3 → 4  (cosmetic only)\n"
        "~ secret platform.ops/DB_PASSWORD: changed (sensitive)\n"
        "Plan: 1 to add, 2 to change, 1 to remove, 1 unchanged; 1 secret changed\n"
    )
    with_diff = render_plan_text(plan, show_diff=True)
    assert "    +# reviewed" in with_diff


def test_render_invalid_and_empty_plans() -> None:
    invalid = render_plan_text(compute_plan([], [desired(BROKEN)]))
    assert invalid.splitlines()[:2] == [
        "Plan is invalid (1 problem); nothing will be applied.",
        "flows/platform.ops/backup.yaml:4:5: tasks[0]: unknown task type 'Lgo'; "
        "did you mean 'io.kestra.plugin.core.log.Log'?",
    ]
    source = flow_source()
    empty = compute_plan([active(source)], [desired(source)])
    assert not empty.has_changes
    assert render_plan_text(empty) == (
        "No changes.\nPlan: 0 to add, 0 to change, 0 to remove, 1 unchanged; 0 secrets changed\n"
    )


def test_long_values_are_shortened_in_text() -> None:
    long_message = "x" * 300
    plan = compute_plan([active(flow_source())], [desired(flow_source("backup", NS, long_message))])
    line = render_plan_text(plan).splitlines()[1]
    assert line.endswith("…")
    assert len(line) < 120


# --- determinism, purity, trust ----------------------------------------------------------


def scenario() -> dict:
    return {
        "active": [active(flow_source("a"), 2), active(PARENT), active(flow_source("gone"))],
        "desired": [
            desired(flow_source("a", NS, "changed")),
            desired(PARENT),
            desired(CHILD),
            desired(USES_SECRET),
            desired(BROKEN, path="flows/platform.ops/broken.yaml"),
        ],
        "active_secrets": {NS: {"DB_PASSWORD": "1"}},
        "desired_secrets": {NS: {"DB_PASSWORD": "2", "API": "3"}},
        "known_flows": [("io.y", "z")],
    }


def test_same_inputs_give_the_same_plan_whatever_their_order() -> None:
    first = compute_plan(**scenario())
    again = compute_plan(**scenario())
    shuffled = scenario()
    shuffled["active"].reverse()
    shuffled["desired"].reverse()
    assert first == again == compute_plan(**shuffled)
    assert render_plan_text(first) == render_plan_text(compute_plan(**shuffled))


def test_inputs_are_not_mutated() -> None:
    inputs = scenario()
    snapshot = copy.deepcopy(inputs)
    compute_plan(**inputs)
    assert inputs == snapshot


def test_trusting_unchanged_sources_gives_the_same_plan() -> None:
    inputs = scenario()
    inputs["active"].append(active(CHILD))
    assert compute_plan(**inputs, trust_unchanged=True) == compute_plan(**inputs)


def test_trusted_flow_still_has_its_references_checked() -> None:
    plan = compute_plan([active(PARENT), active(CHILD)], [desired(PARENT)], trust_unchanged=True)
    assert only(plan, NS, "parent").action is Action.UNCHANGED
    assert rendered_problems(plan) == [MISSING_CHILD]


_WORDS = st.text(alphabet=string.ascii_letters + string.digits + " .,:-'#", min_size=1, max_size=20)
_IDS = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)


@st.composite
def flow_sets(draw: st.DrawFn) -> list[str]:
    keys = draw(
        st.lists(st.tuples(st.sampled_from(["a", "b.c", "io.x"]), _IDS), unique=True, max_size=6)
    )
    sources = []
    for namespace, flow_id in keys:
        messages = draw(st.lists(_WORDS, min_size=1, max_size=3))
        document = {
            "id": flow_id,
            "namespace": namespace,
            "tasks": [
                {"id": f"t{index}", "type": "Log", "message": message}
                for index, message in enumerate(messages)
            ],
        }
        if draw(st.booleans()):
            document["labels"] = {"team": draw(_WORDS)}
        sources.append(yaml.safe_dump(document, sort_keys=draw(st.booleans())))
    return sources


@settings(max_examples=40, deadline=None)
@given(flow_sets(), st.booleans())
def test_planning_a_set_against_itself_changes_nothing(sources: list[str], trust: bool) -> None:
    plan = compute_plan(
        [active(source) for source in sources],
        [desired(source) for source in sources],
        trust_unchanged=trust,
    )
    assert plan.valid
    assert not plan.has_changes
    assert len(plan.changes) == len(sources)
    assert all(change.action is Action.UNCHANGED for change in plan.changes)
    assert all(change.fields == () and change.text_diff == "" for change in plan.changes)
