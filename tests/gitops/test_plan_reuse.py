"""Plans after a restart read and validate only what changed, and stay exact.

A flow file byte-identical to its live revision reuses that revision's
normalized spec when the same validator computed it, and its Git blob is not
read; everything else is read and validated. Each test "restarts" by clearing
the process's memoized validations, then counts validations through
``domain.plan.validation_count`` and compares the plan with one computed
without reuse.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from controlplane.domain.plan import clear_validation_cache, validation_count
from controlplane.domain.tasktypes.base import TASK_TYPES
from controlplane.services.gitops.plans import (
    active_sets,
    apply_plan,
    rollback_source,
    sync_source,
)
from controlplane.services.gitops.repository import read_snapshot
from controlplane.services.gitops.sources import SourceInput, put_source
from controlplane.services.revisions import stored_spec
from controlplane.services.secrets import load_keyring
from controlplane.store.tables import FlowRevisionRow, PlanRow
from tests.argo.test_git_source import ARGO
from tests.helpers import commit, git, init_repo

FLOW = """\
id: flow{n}
namespace: team.reuse
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello from {n}{suffix}"
"""
CALLER = """\
id: caller
namespace: team.reuse
tasks:
  - id: call
    type: io.kestra.plugin.core.flow.Subflow
    namespace: team.reuse
    flowId: flow0
"""
COUNT = 8


def _files(changed: frozenset[int] = frozenset(), suffix: str = " (v2)") -> dict[str, str]:
    files = {
        f"flows/team.reuse/flow{n}.yaml": FLOW.format(n=n, suffix=suffix if n in changed else "")
        for n in range(COUNT)
    }
    files["flows/team.reuse/caller.yaml"] = CALLER
    return files


def _restart() -> None:
    """Forget what this process memoized, as a server just started has."""
    clear_validation_cache()
    stored_spec.cache_clear()


class _Source:
    """A Git source on a real repository, planned with the ``approval`` policy."""

    def __init__(self, engine: Engine, tmp_path: Path, *, prune: bool = True) -> None:
        self.engine = engine
        self.repo = init_repo(tmp_path)
        self.cache = tmp_path / "data" / "git"
        put_source(
            engine,
            "reuse",
            SourceInput(url=f"file://{self.repo}", approval="approval", prune=prune),
            actor="admin",
            keyring=load_keyring(tmp_path / "data"),
        )

    def sync(self) -> tuple[PlanRow, int]:
        """The plan of the branch head after a restart, and how many files it validated."""
        _restart()
        before = validation_count()
        plan = sync_source(self.engine, "reuse", self.cache)
        return plan, validation_count() - before

    def apply(self, plan: PlanRow) -> None:
        applied = apply_plan(self.engine, plan.id, actor="rita")
        assert applied.status == "applied", applied.status_reason

    def unreused(self, sha: str) -> tuple[PlanRow, int]:
        """The plan of ``sha`` against the same live flows with no stored spec reusable."""
        with Session(self.engine) as session:
            session.connection().execute(update(FlowRevisionRow).values(spec_fingerprint=None))
            session.commit()
        _restart()
        before = validation_count()
        plan = rollback_source(self.engine, "reuse", sha, self.cache, actor="admin")
        return plan, validation_count() - before


def _same_plan(reused: PlanRow, full: PlanRow) -> None:
    assert reused.changes == full.changes
    assert reused.summary == full.summary
    assert reused.problems == full.problems
    assert reused.basis == full.basis
    # The rollback plan says what it is on its first line; the rest is the same text.
    assert full.text.split("\n", 1)[1] == reused.text


def _actions(plan: PlanRow) -> dict[str, str]:
    return {
        change["flow_id"]: change["action"]
        for change in plan.changes
        if change["action"] != "unchanged"
    }


@pytest.fixture
def source(engine: Engine, tmp_path: Path) -> _Source:
    return _Source(engine, tmp_path)


def _imported(source: _Source) -> None:
    commit(source.repo, _files(), "import")
    plan, validated = source.sync()
    assert plan.status == "pending", plan.problems
    assert validated == COUNT + 1
    source.apply(plan)


def test_a_restarted_server_validates_only_the_changed_files(source: _Source) -> None:
    _imported(source)
    sha = commit(source.repo, _files(frozenset({1, 4, 6})), "change three flows")

    plan, validated = source.sync()

    assert validated == 3
    assert plan.status == "pending", plan.problems
    assert _actions(plan) == {"flow1": "change", "flow4": "change", "flow6": "change"}
    assert plan.summary["unchanged"] == COUNT + 1 - 3
    full, revalidated = source.unreused(sha)
    assert revalidated == COUNT + 1
    _same_plan(plan, full)


def test_a_plan_stores_the_source_and_spec_of_written_flows_only(source: _Source) -> None:
    """Apply leaves unchanged flows alone, so their entries carry no copy of them."""
    _imported(source)
    commit(source.repo, _files(frozenset({5})), "change one flow")

    plan, _ = source.sync()

    by_id = {change["flow_id"]: change for change in plan.changes}
    assert by_id["flow5"]["action"] == "change"
    assert by_id["flow5"]["source"] == FLOW.format(n=5, suffix=" (v2)")
    assert by_id["flow5"]["spec"] is not None
    unchanged = [change for change in plan.changes if change["action"] == "unchanged"]
    assert len(unchanged) == COUNT
    assert all(c["source"] is None and c["spec"] is None for c in unchanged)
    source.apply(plan)
    with Session(source.engine) as session:
        live = {flow.flow_id: flow.source for flow in active_sets(session, "git:reuse")[0]}
    assert live == {
        **{f"flow{n}": FLOW.format(n=n, suffix=" (v2)" if n == 5 else "") for n in range(COUNT)},
        "caller": CALLER,
    }


def test_only_changed_blobs_are_read(source: _Source, engine: Engine) -> None:
    _imported(source)
    commit(source.repo, _files(frozenset({2})), "change one flow")
    with Session(engine) as session:
        live = [flow.source for flow in active_sets(session, "git:reuse")[0]]

    snapshot = read_snapshot(
        f"file://{source.repo}", "main", source.cache / "reuse", "flows/", known_sources=live
    )

    assert snapshot.reused == COUNT  # all but flow2's new blob
    by_path = {file.path: file.source for file in snapshot.files}
    assert by_path["flows/team.reuse/flow2.yaml"] == FLOW.format(n=2, suffix=" (v2)")
    assert by_path["flows/team.reuse/flow3.yaml"] == FLOW.format(n=3, suffix="")


def test_a_changed_validator_fingerprint_validates_everything(
    source: _Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    _imported(source)
    commit(source.repo, _files(frozenset({1})), "change one flow")
    # A plugin installed since the last apply: the validator is not the same one.
    log_type = TASK_TYPES["io.kestra.plugin.core.log.Log"]
    monkeypatch.setitem(TASK_TYPES, "io.example.reuse.Extra", log_type)

    plan, validated = source.sync()

    assert validated == COUNT + 1
    assert _actions(plan) == {"flow1": "change"}


def test_a_force_pushed_branch_is_planned_from_its_new_tree(source: _Source) -> None:
    _imported(source)
    commit(source.repo, _files(frozenset({1})), "change flow1")
    applied, _ = source.sync()
    source.apply(applied)
    # Rewrite history: drop that commit and push another in its place.
    git(source.repo, "reset", "-q", "--hard", "HEAD~1")
    rewritten = _files(frozenset({5}), suffix=" (rewritten)")
    del rewritten["flows/team.reuse/flow7.yaml"]
    (source.repo / "flows/team.reuse/flow7.yaml").unlink()
    sha = commit(source.repo, rewritten, "rewritten history")

    plan, validated = source.sync()

    # flow1 goes back to the import's content (not live) and flow5 changes: two files.
    assert validated == 2
    assert _actions(plan) == {"flow1": "change", "flow5": "change", "flow7": "remove"}
    full, _ = source.unreused(sha)
    _same_plan(plan, full)


def test_a_deleted_flow_file_is_planned_as_a_remove(source: _Source) -> None:
    _imported(source)
    sha = commit(source.repo, {"flows/team.reuse/flow3.yaml": None}, "delete flow3")

    plan, validated = source.sync()

    assert validated == 0
    assert _actions(plan) == {"flow3": "remove"}
    full, _ = source.unreused(sha)
    _same_plan(plan, full)


def test_argo_files_are_reused_unchanged_and_converted_again_when_changed(
    source: _Source,
) -> None:
    argo_path = "flows/team.reuse/greet.yaml"
    commit(source.repo, {**_files(), argo_path: ARGO}, "import with an Argo workflow")
    plan, _ = source.sync()
    assert plan.status == "pending", plan.problems
    source.apply(plan)

    commit(source.repo, _files(frozenset({0})), "change flow0")
    plan, validated = source.sync()
    # The converted flow is byte-identical to its live revision: reused, not validated.
    assert validated == 1
    assert _actions(plan) == {"flow0": "change"}
    source.apply(plan)

    sha = commit(source.repo, {argo_path: ARGO.replace("hello {{", "hi {{")}, "edit Argo")
    plan, validated = source.sync()
    assert validated == 1
    assert _actions(plan) == {"greet": "change"}
    (greet,) = [c for c in plan.changes if c["flow_id"] == "greet"]
    assert greet["argo_path"] == argo_path
    assert '"hi {{workflow.parameters.who}}"' in greet["argo_source"]
    assert "hi {{" in greet["source"]
    assert "-" in greet["argo_diff"]
    full, _ = source.unreused(sha)
    _same_plan(plan, full)
