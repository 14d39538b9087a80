"""PushFlows and SyncFlows run real flows against real Git repositories (made with ``git``).

The remote is a bare repository reached over ``file://``, or over a local
smart-HTTP server (``git http-backend`` behind basic auth) when the password
must go through git's real prompt. PushFlows commits what the server holds,
byte for byte; SyncFlows syncs a registered Git source, so what it brings
goes through a plan: applied at once under ``auto``, pending under
``approval``, refused (nothing stored) outside the flow's namespace rights.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controlplane.domain.validate import validate_flow
from controlplane.errors import InvalidFlowError
from controlplane.plugins.api import TaskFailedError
from controlplane.plugins.git.flow_files import IdGlobs, retarget
from controlplane.plugins.git.options import commit_url
from tests.conftest import token_headers
from tests.plugins import git_repos
from tests.plugins.git_repos import GitHttpServer, commit, git, make_repo
from tests.services.test_engine import logs, put_flow, run, task_runs

RUNS: dict[str, str] = {
    "io.kestra.plugin.git.PushFlows": "test_push_flows_commits_exactly_the_namespace_flows",
    "io.kestra.plugin.git.SyncFlows": "test_sync_flows_applies_a_pushed_commit_via_an_auto_source",
}
PASSWORD = "git-flows-h30-secret-7731"  # noqa: S105 - a test value, not a secret

# Sources with comments, a schema line, quoting and blank lines: pushed as they are.
ALPHA = """\
# yaml-language-server: $schema=../../flowplane.schema.json
id: alpha
namespace: dev.team

# a comment the commit must keep
tasks:
  - id: hello
    type: Log
    message: 'hello   from   alpha'
"""
BETA = """\
id: beta
namespace: "dev.team"
description: second flow
tasks:
  - {id: one, type: Log, message: one}
"""
CHILD = "id: gamma\nnamespace: dev.team.child\ntasks:\n  - {id: g, type: Log, message: g}\n"
OTHER = "id: delta\nnamespace: other\ntasks:\n  - {id: d, type: Log, message: d}\n"


@pytest.fixture
def repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for this test's repositories, outside the server's data directory."""
    return tmp_path_factory.mktemp("repos")


def bare_remote(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    """A bare repository on ``main``: empty, or holding one commit of ``files``."""
    remote = tmp_path / "remote.git"
    if not files:
        remote.mkdir()
        git(remote, "init", "--quiet", "--bare", "--initial-branch=main")
        return remote
    work = make_repo(tmp_path / "seed")
    commit(work, files, "seed")
    git(tmp_path, "clone", "--quiet", "--bare", str(work), str(remote))
    return remote


def tree_at(remote: Path, ref: str = "main") -> dict[str, bytes]:
    """Every file of ``ref``'s tree, with its exact bytes."""
    names = git(remote, "ls-tree", "-r", "--name-only", ref).splitlines()
    return {
        name: subprocess.run(
            ["git", "--git-dir", str(remote), "show", f"{ref}:{name}"],
            capture_output=True,
            check=True,
        ).stdout
        for name in names
    }


def head(remote: Path, ref: str = "main") -> str:
    return git(remote, "rev-parse", ref)


def records(uri: str) -> list[dict[str, Any]]:
    """The Ion records (one JSON object per line) of a stored ``flows`` output."""
    return [json.loads(line) for line in Path(uri).read_text(encoding="utf-8").splitlines()]


def allow(client: TestClient, namespace: str, allowed: list[str]) -> None:
    response = client.put(f"/api/v1/namespaces/{namespace}", json={"allowed_namespaces": allowed})
    assert response.status_code in {200, 201}, response.text


def add_source(client: TestClient, source_id: str, remote: Path, **policy: object) -> None:
    body = {"url": f"file://{remote}", "branch": "main", **policy}  # policy may set the url
    response = client.put(f"/api/v1/sources/{source_id}", json=body)
    assert response.status_code == 201, response.text


def failure(client: TestClient, execution: dict[str, Any]) -> str:
    assert execution["state"] == "FAILED", logs(client, execution["id"])
    return "\n".join(logs(client, execution["id"]))


# --- PushFlows ----------------------------------------------------------------------


def test_push_flows_commits_exactly_the_namespace_flows(client: TestClient, repos: Path) -> None:
    remote = bare_remote(
        repos,
        {
            "README.md": "flows of the team\n",
            "flows/dev.team/stale.yaml": "id: stale\nnamespace: dev.team\ntasks: []\n",
            "flows/dev.team/notes.txt": "not a flow\n",
            "flows/other/keep.yaml": "id: keep\nnamespace: other\ntasks: []\n",
        },
    )
    seeded = head(remote)
    for source in (ALPHA, BETA, CHILD, OTHER):
        put_flow(client, source)
    pusher = f"""\
id: pusher
namespace: dev.team
tasks:
  - id: push
    type: io.kestra.plugin.git.PushFlows
    url: file://{remote}
    branch: main
    authorName: Rita Pusher
    authorEmail: rita@example.com
    commitMessage: "release from {{{{ flow.id }}}}"
    gitConfig:
      i18n.commitEncoding: ISO-8859-1
"""
    put_flow(client, pusher)
    execution = run(client, "dev.team", "pusher")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = task_runs(execution)["push"]["outputs"]
    assert outputs["commitId"] == head(remote) != seeded
    assert outputs["commitURL"] is None  # a local remote has no web page

    tree = tree_at(remote)
    # Exactly the namespace's live flows (the pushing flow is one), byte for byte;
    # the stale flow file is gone; other namespaces and non-flow files stay.
    assert tree == {
        "README.md": b"flows of the team\n",
        "flows/dev.team/alpha.yaml": ALPHA.encode(),
        "flows/dev.team/beta.yaml": BETA.encode(),
        "flows/dev.team/pusher.yaml": pusher.encode(),
        "flows/dev.team/notes.txt": b"not a flow\n",
        "flows/other/keep.yaml": b"id: keep\nnamespace: other\ntasks: []\n",
    }
    shown = git(remote, "log", "-1", "--format=%an <%ae>|%cn|%s|%P", "main")
    assert (
        shown == f"Rita Pusher <rita@example.com>|flow:dev.team/pusher|release from pusher|{seeded}"
    )
    # gitConfig was written into the clone before the commit: git records the encoding.
    assert "encoding ISO-8859-1" in git(remote, "cat-file", "commit", "main")
    diff = {r["file"]: r for r in records(outputs["flows"])}
    assert diff["flows/dev.team/alpha.yaml"] == {
        "file": "flows/dev.team/alpha.yaml",
        "additions": f"+{ALPHA.count(chr(10))}",
        "deletions": "-0",
        "changes": "0",
    }
    assert diff["flows/dev.team/stale.yaml"]["deletions"] == "-3"
    assert sorted(diff) == [
        "flows/dev.team/alpha.yaml",
        "flows/dev.team/beta.yaml",
        "flows/dev.team/pusher.yaml",
        "flows/dev.team/stale.yaml",
    ]

    # Nothing changed since: a second push makes no commit.
    again = run(client, "dev.team", "pusher")
    assert again["state"] == "SUCCESS", logs(client, again["id"])
    assert task_runs(again)["push"]["outputs"]["commitId"] is None
    assert records(task_runs(again)["push"]["outputs"]["flows"]) == []
    assert head(remote) == outputs["commitId"]
    assert "No changes to commit. Skipping push." in logs(client, again["id"])


def test_push_flows_dry_run_reports_the_diff_and_pushes_nothing(
    client: TestClient, repos: Path
) -> None:
    remote = bare_remote(repos, {"flows/dev.team/beta.yaml": BETA})
    before = head(remote)
    changed = BETA.replace("description: second flow", "description: changed\nlabels: {a: b}")
    put_flow(client, changed)
    put_flow(client, ALPHA)
    put_flow(
        client,
        f"""\
id: preview
namespace: dev.team
tasks:
  - id: push
    type: io.kestra.plugin.git.PushFlows
    url: file://{remote}
    flows: [alpha, beta]
    dryRun: true
""",
    )
    execution = run(client, "dev.team", "preview")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = task_runs(execution)["push"]["outputs"]
    assert outputs["commitId"] is None
    assert outputs["commitURL"] is None
    assert head(remote) == before
    assert git(remote, "branch", "--list") == "* main"
    assert tree_at(remote) == {"flows/dev.team/beta.yaml": BETA.encode()}
    # One line replaced by two: Kestra counts a longer replacement as one added line.
    assert sorted(records(outputs["flows"]), key=lambda r: r["file"]) == [
        {
            "file": "flows/dev.team/alpha.yaml",
            "additions": f"+{ALPHA.count(chr(10))}",
            "deletions": "-0",
            "changes": "0",
        },
        {"file": "flows/dev.team/beta.yaml", "additions": "+1", "deletions": "-0", "changes": "0"},
    ]
    assert any("Dry run" in line for line in logs(client, execution["id"]))

    # gitConfig may not change what the task itself sets: refused, not ignored.
    put_flow(
        client,
        f"""\
id: identity
namespace: dev.team
tasks:
  - id: push
    type: io.kestra.plugin.git.PushFlows
    url: file://{remote}
    gitConfig: {{User.Name: someone}}
""",
    )
    text = failure(client, run(client, "dev.team", "identity"))
    assert "gitConfig: User.Name is set by PushFlows itself" in text
    assert head(remote) == before


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GitHttpServer, Path]]:
    """A smart-HTTP server asking for ada's password, serving the repositories of a folder."""
    root = tmp_path_factory.mktemp("served")
    server = GitHttpServer(root, "ada", PASSWORD)
    yield server, root
    server.close()


def served_remote(root: Path, name: str, files: dict[str, str]) -> Path:
    """A bare repository ``name`` under the served folder, holding one commit of ``files``."""
    work = make_repo(root / f"{name}-work")
    commit(work, files, "seed")
    remote = root / name
    git(root, "clone", "--quiet", "--bare", str(work), str(remote))
    git(remote, "config", "http.receivepack", "true")
    return remote


def put_token(client: TestClient, namespace: str) -> None:
    response = client.put(
        f"/api/v1/namespaces/{namespace}/secrets/GIT_TOKEN", json={"value": PASSWORD}
    )
    assert response.status_code in {200, 201}, response.text


def no_password(client: TestClient, execution: dict[str, Any]) -> None:
    body = json.dumps(client.get(f"/api/v1/executions/{execution['id']}").json())
    assert PASSWORD not in body
    assert PASSWORD not in "\n".join(logs(client, execution["id"]))


def test_push_flows_over_http_moves_a_namespace_tree_to_a_new_branch(
    client: TestClient, served: tuple[GitHttpServer, Path]
) -> None:
    server, root = served
    remote = served_remote(
        root, "flows.git", {"flows/prod/old.yaml": "id: old\nnamespace: prod\ntasks: []\n"}
    )
    put_token(client, "dev.team")
    allow(client, "dev.team.child", ["dev.team"])
    for source in (ALPHA, BETA, CHILD):
        put_flow(client, source)
    put_flow(
        client,
        f"""\
id: promote
namespace: dev.team
tasks:
  - id: push
    type: io.kestra.plugin.git.PushFlows
    url: {server.url}/flows.git
    username: ada
    password: "{{{{ secret('GIT_TOKEN') }}}}"
    branch: release-1
    sourceNamespace: dev.team
    targetNamespace: prod
    includeChildNamespaces: true
    flows: ["{{alpha,gamma}}"]
    gitDirectory: flows
""",
    )
    execution = run(client, "dev.team", "promote")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    sha = task_runs(execution)["push"]["outputs"]["commitId"]
    # The branch did not exist: it starts from the default branch's head.
    assert head(remote, "release-1") == sha
    assert git(remote, "rev-parse", f"{sha}^") == head(remote, "main")
    tree = tree_at(remote, "release-1")
    assert (
        tree["flows/prod/alpha.yaml"]
        == ALPHA.replace("namespace: dev.team", "namespace: prod").encode()
    )
    assert (
        tree["flows/prod.child/gamma.yaml"]
        == CHILD.replace("namespace: dev.team.child", "namespace: prod.child").encode()
    )
    # beta is not selected by the globs; old.yaml is not either, so it stays (only
    # files the globs select are removed when no live flow writes them, as in Kestra).
    assert sorted(tree) == [
        "flows/prod.child/gamma.yaml",
        "flows/prod/alpha.yaml",
        "flows/prod/old.yaml",
    ]
    assert validate_flow(tree["flows/prod/alpha.yaml"].decode()).namespace == "prod"
    no_password(client, execution)


def test_push_flows_reads_only_namespaces_that_let_the_flow_in(
    client: TestClient, repos: Path
) -> None:
    remote = bare_remote(repos)
    put_flow(client, OTHER)
    source = f"""\
id: grab
namespace: dev.team
tasks:
  - id: push
    type: io.kestra.plugin.git.PushFlows
    url: file://{remote}
    sourceNamespace: other
    gitDirectory: exported/
"""
    put_flow(client, source)
    text = failure(client, run(client, "dev.team", "grab"))
    assert "namespace other does not allow flows from dev.team" in text
    assert git(remote, "for-each-ref") == ""  # nothing was pushed

    allow(client, "other", ["dev.*"])
    execution = run(client, "dev.team", "grab")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert tree_at(remote) == {"exported/other/delta.yaml": OTHER.encode()}
    assert git(remote, "symbolic-ref", "HEAD") == "refs/heads/main"


def test_push_flows_never_writes_through_a_link_in_the_repository(
    client: TestClient, repos: Path
) -> None:
    outside = repos / "outside"
    (outside / "dev.team").mkdir(parents=True)
    (outside / "dev.team" / "old.yaml").write_text("kept\n", encoding="utf-8")
    work = make_repo(repos / "seed")
    (work / "flows").symlink_to(outside)
    git(work, "add", "flows")
    git(work, "commit", "--quiet", "-m", "a link where the flows folder goes")
    remote = repos / "remote.git"
    git(repos, "clone", "--quiet", "--bare", str(work), str(remote))
    put_flow(client, ALPHA)
    put_flow(
        client,
        f"id: linked\nnamespace: dev.team\ntasks:\n  - id: push\n"
        f"    type: io.kestra.plugin.git.PushFlows\n    url: file://{remote}\n",
    )
    text = failure(client, run(client, "dev.team", "linked"))
    assert "flows in the repository is not a plain folder" in text
    assert sorted(p.name for p in (outside / "dev.team").iterdir()) == ["old.yaml"]


# --- SyncFlows ----------------------------------------------------------------------

HELLO = "id: hello\nnamespace: prod.app\ntasks:\n  - {id: hi, type: Log, message: hi}\n"


def syncer(remote: Path, **extra: str) -> str:
    options = "".join(f"\n    {key}: {value}" for key, value in extra.items())
    return f"""\
id: syncer
namespace: ops.gitops
tasks:
  - id: sync
    type: io.kestra.plugin.git.SyncFlows
    url: file://{remote}
    branch: main
    targetNamespace: prod.app{options}
"""


def test_sync_flows_applies_a_pushed_commit_via_an_auto_source(
    client: TestClient, repos: Path
) -> None:
    remote = bare_remote(repos)
    add_source(client, "prodflows", remote, approval="auto")
    allow(client, "dev.app", ["ops.*"])
    allow(client, "prod.app", ["ops.*"])
    put_flow(client, HELLO.replace("prod.app", "dev.app"))
    put_flow(
        client,
        f"""\
id: release
namespace: ops.gitops
tasks:
  - id: push
    type: io.kestra.plugin.git.PushFlows
    url: file://{remote}
    sourceNamespace: dev.app
    targetNamespace: prod.app
    authorName: Dana Dev
    authorEmail: dana@example.com
  - id: sync
    type: io.kestra.plugin.git.SyncFlows
    url: file://{remote}
    targetNamespace: prod.app
    gitDirectory: flows
""",
    )
    execution = run(client, "ops.gitops", "release")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    pushed = task_runs(execution)["push"]["outputs"]["commitId"]
    synced = task_runs(execution)["sync"]["outputs"]
    assert synced["sourceId"] == "prodflows"
    assert synced["commitId"] == pushed
    assert synced["planStatus"] == "applied"
    assert records(synced["flows"]) == [
        {
            "gitPath": "flows/prod.app/hello.yaml",
            "syncState": "ADDED",
            "flowId": "hello",
            "namespace": "prod.app",
            "revision": 1,
        }
    ]
    # Live, with lineage to the pushed commit and the plan the task made.
    flow = client.get("/api/v1/flows/prod.app/hello").json()
    assert flow["origin"] == "git:prodflows"
    assert flow["git_commit"]["sha"] == pushed
    assert flow["git_commit"]["author"] == "Dana Dev"
    assert flow["plan_id"] == synced["planId"]
    plan = client.get(f"/api/v1/plans/{synced['planId']}").json()
    assert plan["created_by"] == "flow:ops.gitops/release"
    assert plan["approvals"] == []  # applied by the auto policy, approved by nobody
    hello = run(client, "prod.app", "hello")
    assert hello["state"] == "SUCCESS"
    assert hello["git_commit_sha"] == pushed


def test_sync_flows_on_an_approval_source_leaves_a_pending_plan(
    client: TestClient, repos: Path
) -> None:
    remote = bare_remote(repos, {"flows/prod.app/hello.yaml": HELLO})
    add_source(client, "reviewed", remote, approval="approval")
    allow(client, "prod.app", ["ops.gitops"])
    put_flow(client, syncer(remote))
    execution = run(client, "ops.gitops", "syncer")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = task_runs(execution)["sync"]["outputs"]
    assert outputs["planStatus"] == "pending"
    assert outputs["commitId"] == head(remote)
    assert client.get("/api/v1/flows/prod.app/hello").status_code == 404
    plan = client.get(f"/api/v1/plans/{outputs['planId']}").json()
    assert plan["progress"]["approvals"] == 0
    assert plan["created_by"] == "flow:ops.gitops/syncer"

    # Review as for any commit: its author cannot approve, someone else can.
    own = client.post(
        f"/api/v1/plans/{plan['id']}/approve", json={}, headers=token_headers(client, "Ada")
    )
    assert own.status_code == 403
    approved = client.post(
        f"/api/v1/plans/{plan['id']}/approve", json={}, headers=token_headers(client, "rita")
    ).json()
    assert approved["status"] == "applied"
    assert client.get("/api/v1/flows/prod.app/hello").json()["plan_id"] == plan["id"]

    # The same commit again: the task reports the plan it already made.
    again = run(client, "ops.gitops", "syncer")
    assert task_runs(again)["sync"]["outputs"]["planId"] == plan["id"]
    assert task_runs(again)["sync"]["outputs"]["planStatus"] == "applied"


def test_sync_flows_is_refused_outside_its_rights_and_scope_storing_nothing(
    client: TestClient, repos: Path
) -> None:
    remote = bare_remote(
        repos,
        {
            "flows/prod.app/hello.yaml": HELLO,
            "flows/prod.app.jobs/nightly.yaml": HELLO.replace("hello", "nightly").replace(
                "prod.app", "prod.app.jobs"
            ),
        },
    )
    add_source(client, "prodflows", remote)
    put_flow(client, syncer(remote, includeChildNamespaces="true"))
    text = failure(client, run(client, "ops.gitops", "syncer"))
    assert "namespace prod.app does not allow flows from ops.gitops" in text

    # Rights on prod.app alone: the plan also touches prod.app.jobs.
    allow(client, "prod.app", ["ops.*"])
    text = failure(client, run(client, "ops.gitops", "syncer"))
    assert "namespace prod.app.jobs does not allow flows from ops.gitops" in text

    # Rights everywhere, but the task's scope is prod.app without its children.
    allow(client, "prod.app.jobs", ["ops.*"])
    put_flow(client, syncer(remote))
    text = failure(client, run(client, "ops.gitops", "syncer"))
    assert "also syncs namespace prod.app.jobs, outside targetNamespace (prod.app)" in text

    assert client.get("/api/v1/plans").json() == []
    assert client.get("/api/v1/flows/prod.app/hello").status_code == 404


def test_sync_flows_dry_run_plans_and_stores_nothing(client: TestClient, repos: Path) -> None:
    remote = bare_remote(repos, {"flows/prod.app/hello.yaml": HELLO})
    add_source(client, "prodflows", remote)
    allow(client, "prod.app", ["ops.gitops"])
    put_flow(client, syncer(remote, dryRun="true"))
    execution = run(client, "ops.gitops", "syncer")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = task_runs(execution)["sync"]["outputs"]
    assert outputs["planId"] is None
    assert outputs["planStatus"] == "pending"
    assert outputs["commitId"] == head(remote)
    assert [r["syncState"] for r in records(outputs["flows"])] == ["ADDED"]
    assert any("+ add prod.app/hello" in line for line in logs(client, execution["id"]))
    assert client.get("/api/v1/plans").json() == []
    assert client.get("/api/v1/flows/prod.app/hello").status_code == 404


def test_sync_flows_needs_a_registered_source_whose_policy_it_states(
    client: TestClient, repos: Path
) -> None:
    remote = bare_remote(repos, {"flows/prod.app/hello.yaml": HELLO})
    allow(client, "prod.app", ["ops.gitops"])
    put_flow(client, syncer(remote))
    text = failure(client, run(client, "ops.gitops", "syncer"))
    assert f"no Git source syncs file://{remote} branch 'main'" in text
    assert "PUT /api/v1/sources/{id}" in text
    put_flow(client, syncer(remote).replace("branch: main", "branch: nope"))
    text = failure(client, run(client, "ops.gitops", "syncer"))
    assert "the remote has no branch 'nope'" in text

    add_source(client, "prodflows", remote, prune=True)
    put_flow(client, syncer(remote))
    text = failure(client, run(client, "ops.gitops", "syncer"))
    assert "delete is false but Git source prodflows prunes" in text
    put_flow(client, syncer(remote, delete="true", gitDirectory="other"))
    text = failure(client, run(client, "ops.gitops", "syncer"))
    assert "directory 'other'" in text

    put_flow(client, syncer(remote, delete="true", gitDirectory="flows/"))
    execution = run(client, "ops.gitops", "syncer")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert task_runs(execution)["sync"]["outputs"]["planStatus"] == "applied"
    assert client.get("/api/v1/plans").json()[0]["created_by"] == "flow:ops.gitops/syncer"


def test_sync_flows_over_http_reads_the_branch_with_its_own_password(
    client: TestClient, served: tuple[GitHttpServer, Path]
) -> None:
    server, root = served
    served_remote(root, "sync.git", {"flows/prod.app/hello.yaml": HELLO})
    url = f"{server.url}/sync.git"
    # The source keeps its own credentials (sealed); the task matches it without them.
    response = client.put(
        "/api/v1/sources/overhttp",
        json={"url": url.replace("http://", f"http://ada:{PASSWORD}@"), "branch": "main"},
    )
    assert response.status_code == 201, response.text
    allow(client, "prod.app", ["ops.gitops"])
    put_token(client, "ops.gitops")
    task = syncer(Path("/unused")).replace("file:///unused", url)
    put_flow(client, task)
    text = failure(client, run(client, "ops.gitops", "syncer"))
    assert "git ls-remote failed" in text  # no credentials: the flow cannot read the branch

    put_flow(
        client,
        task.replace(
            "branch: main",
            "branch: main\n    username: ada\n    password: \"{{ secret('GIT_TOKEN') }}\"",
        ),
    )
    execution = run(client, "ops.gitops", "syncer")
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    outputs = task_runs(execution)["sync"]["outputs"]
    assert (outputs["sourceId"], outputs["planStatus"]) == ("overhttp", "applied")
    assert client.get("/api/v1/flows/prod.app/hello").json()["origin"] == "git:overhttp"
    no_password(client, execution)


def test_sync_flows_fails_with_the_problems_of_an_invalid_commit(
    client: TestClient, repos: Path
) -> None:
    broken = HELLO.replace("type: Log", "type: NoSuchTask")
    remote = bare_remote(repos, {"flows/prod.app/hello.yaml": broken})
    add_source(client, "prodflows", remote)
    allow(client, "prod.app", ["ops.gitops"])
    put_flow(client, syncer(remote))
    text = failure(client, run(client, "ops.gitops", "syncer"))
    assert "of Git source prodflows failed: flows/prod.app/hello.yaml:" in text
    assert client.get("/api/v1/flows/prod.app/hello").status_code == 404


@pytest.mark.parametrize(
    ("task", "extra", "message"),
    [
        ("PushFlows", "auth: {username: a, password: b}", "auth is not supported"),
        ("PushFlows", "privateKey: k", "privateKey is not supported"),
        ("SyncFlows", "ignoreInvalidFlows: true", "ignoreInvalidFlows: true is not supported"),
        ("SyncFlows", "gitConfig: {core.x: y}", "gitConfig is not supported"),
        ("SyncFlows", "kestraUrl: http://k", "kestraUrl is not supported"),
    ],
)
def test_unsupported_properties_are_refused_at_validation(
    task: str, extra: str, message: str
) -> None:
    source = (
        f"id: f\nnamespace: ops\ntasks:\n  - id: t\n    type: io.kestra.plugin.git.{task}\n"
        f"    url: file:///nowhere.git\n    targetNamespace: ops\n    {extra}\n"
    )
    if task == "PushFlows":
        source = source.replace("    targetNamespace: ops\n", "")
    with pytest.raises(InvalidFlowError, match=message):
        validate_flow(source)


@pytest.fixture
def https_git(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[GitHttpServer, Path, Path]]:
    """The smart-HTTP server over HTTPS, with a self-signed certificate git does not trust."""
    root = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(root / "cert.pem", root / "key.pem")

    class TLSServer(ThreadingHTTPServer):
        def get_request(self) -> tuple[Any, Any]:
            sock, address = super().get_request()
            return tls.wrap_socket(sock, server_side=True), address

    monkeypatch.setattr(git_repos, "ThreadingHTTPServer", TLSServer)
    server = GitHttpServer(root, "ada", PASSWORD)
    monkeypatch.undo()
    yield server, root, root / "cert.pem"
    server.close()


def test_trusted_ca_and_no_proxy_reach_both_tasks_git(
    client: TestClient,
    https_git: tuple[GitHttpServer, Path, Path],
    served: tuple[GitHttpServer, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tls, tls_root, ca = https_git
    plain, plain_root = served
    served_remote(tls_root, "tls.git", {"flows/prod.app/hello.yaml": HELLO})
    served_remote(plain_root, "proxied.git", {"flows/prod.app/hello.yaml": HELLO})
    urls = {"tls": f"{tls.url.replace('http://', 'https://')}/tls.git"}
    urls["proxied"] = f"{plain.url}/proxied.git"
    for name, url in urls.items():
        add_source(client, name, Path("/unused"), url=url)
    allow(client, "prod.app", ["ops.gitops"])
    put_token(client, "ops.gitops")
    auth = "\n    username: ada\n    password: \"{{ secret('GIT_TOKEN') }}\""

    def outcome(task: str, url: str, extra: str) -> str:
        body = f"type: io.kestra.plugin.git.{task}\n    url: {url}{auth}{extra}"
        if task == "SyncFlows":
            body += "\n    targetNamespace: prod.app"
        put_flow(client, f"id: conn\nnamespace: ops.gitops\ntasks:\n  - id: t\n    {body}\n")
        execution = run(client, "ops.gitops", "conn")
        no_password(client, execution)
        return "\n".join([execution["state"], *logs(client, execution["id"])])

    def untrusted(text: str) -> bool:
        # git built with GnuTLS or with OpenSSL says it its own way.
        return text.startswith("FAILED") and any(
            words in text
            for words in ("certificate verification failed", "SSL certificate problem")
        )

    trusted = f"\n    trustedCaPemPath: {ca}"
    assert untrusted(outcome("PushFlows", urls["tls"], ""))
    assert outcome("PushFlows", urls["tls"], trusted).startswith("SUCCESS")
    assert untrusted(outcome("SyncFlows", urls["tls"], ""))
    # The task's own read now passes; the source is fetched with the server's settings,
    # which do not trust this certificate.
    text = outcome("SyncFlows", urls["tls"], trusted)
    assert "is at " in text
    assert "cannot read branch 'main'" in text

    # A proxy nobody listens on: only git that bypasses it reaches the server.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    bypass = "\n    noProxy: true"
    assert outcome("PushFlows", urls["proxied"], "").startswith("FAILED")
    assert outcome("PushFlows", urls["proxied"], bypass).startswith("SUCCESS")
    assert "git ls-remote failed" in outcome("SyncFlows", urls["proxied"], "")
    text = outcome("SyncFlows", urls["proxied"], bypass)
    assert "is at " in text
    assert "cannot read branch 'main'" in text


def test_flow_files_move_namespaces_select_ids_and_link_commits() -> None:
    # The quoted top-level line moves; a Subflow's indented namespace does not.
    moved = retarget(
        BETA + "  - {id: s, type: Subflow, namespace: dev.team, flowId: x}\n", "dev.team", "prod"
    )
    assert moved.startswith('id: beta\nnamespace: "prod"\n')
    assert moved.endswith("namespace: dev.team, flowId: x}\n")
    with pytest.raises(TaskFailedError, match=r"no top-level 'namespace: dev\.team' line"):
        retarget("{id: x, namespace: dev.team, tasks: []}\n", "dev.team", "prod")
    globs = IdGlobs(["etl-*", "{load,report}_daily"])
    assert [i for i in ("etl-a", "load_daily", "report_daily", "x") if globs(i)] == [
        "etl-a",
        "load_daily",
        "report_daily",
    ]
    assert IdGlobs(["**"])("any")
    assert IdGlobs([])("any")
    assert commit_url("https://user:tok@github.com/acme/flows.git", "main", "abc") == (
        "https://github.com/acme/flows/commit/abc"
    )
    assert commit_url("git@bitbucket.org:acme/flows.git", "main", "abc") == (
        "https://bitbucket.org/acme/flows/commits/abc"
    )
    assert commit_url("file:///srv/flows.git", "main", "abc") is None
