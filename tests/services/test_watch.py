"""`flowplane server --watch DIR`: a real watcher on a temp directory applies each change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from controlplane.services.flows import get_flow
from controlplane.services.gitops.secret_files import encrypt_secret_map
from controlplane.services.secrets import load_keyring, reveal
from controlplane.services.watch import DirectoryWatcher
from controlplane.store.tables import PlanRow
from tests.services.test_gitops import BACKUP


def plans(engine: Engine) -> list[PlanRow]:
    with Session(engine) as session:
        return list(session.exec(select(PlanRow).order_by(col(PlanRow.created_at))).all())


def next_plan(engine: Engine, seen: int) -> PlanRow:
    """Wait for plan number ``seen + 1`` to be decided; fail after a generous deadline.

    An ``auto`` plan is stored pending, then applied in its own transaction,
    so a reader can see it between the two.
    """
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = plans(engine)
        if len(found) > seen and found[seen].status != "pending":
            return found[seen]
        time.sleep(0.05)
    pytest.fail(f"the watcher made no plan after plan {seen}")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    (path / "flows" / "platform.ops").mkdir(parents=True)
    (path / "flows" / "platform.ops" / "backup.yaml").write_text(BACKUP)
    return path


@pytest.fixture
def watcher(engine: Engine, workdir: Path, tmp_path: Path) -> Iterator[DirectoryWatcher]:
    running = DirectoryWatcher(engine, workdir, tmp_path / "data" / "git", debounce_ms=200)
    yield running
    running.stop()


def test_each_settled_change_is_planned_and_applied(
    engine: Engine, watcher: DirectoryWatcher, workdir: Path, tmp_path: Path
) -> None:
    first = watcher.start()
    assert (first.kind, first.status) == ("local", "applied")
    live = get_flow(engine, "platform.ops", "backup")
    assert live.flow.origin == f"local:{workdir.resolve()}"
    assert live.revision.git_commit_sha is None
    assert live.revision.plan_id == first.id

    flow_file = workdir / "flows" / "platform.ops" / "backup.yaml"
    flow_file.write_text(BACKUP.replace("backing up", "edited"))
    edited = next_plan(engine, 1)
    assert edited.status == "applied"
    assert get_flow(engine, "platform.ops", "backup").revision.revision == 2

    broken = workdir / "flows" / "platform.ops" / "restore.yaml"
    broken.write_text(BACKUP.replace("id: backup", "id: restore").replace("type: Log", "type: Lgo"))
    failed = next_plan(engine, 2)
    assert failed.status == "failed"
    problem = failed.problems[0]
    assert (problem["file"], problem["line"]) == ("flows/platform.ops/restore.yaml", 4)
    assert "unknown task type 'Lgo'" in problem["message"]
    assert get_flow(engine, "platform.ops", "backup").revision.revision == 2

    broken.unlink()
    secrets = workdir / "secrets"
    secrets.mkdir()
    keyring = load_keyring(tmp_path / "data")
    (secrets / "platform.ops.age").write_bytes(
        encrypt_secret_map({"TOKEN": "t-123"}, keyring.recipient)
    )
    with_secret = next_plan(engine, 3)
    while with_secret.secret_changes == []:  # the unlink and the new file may settle apart
        with_secret = next_plan(engine, len(plans(engine)))
    assert with_secret.status == "applied"
    assert with_secret.secret_changes == [
        {"namespace": "platform.ops", "key": "TOKEN", "action": "add"}
    ]
    assert reveal(engine, keyring, "platform.ops", "TOKEN") == "t-123"

    seen = len(plans(engine))
    flow_file.unlink()
    removed = next_plan(engine, seen)
    assert removed.status == "applied"
    assert [c["action"] for c in removed.changes] == ["remove"]
    with Session(engine) as session:
        assert session.exec(select(PlanRow).where(col(PlanRow.kind) != "local")).all() == []
