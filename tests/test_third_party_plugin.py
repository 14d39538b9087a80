"""A third-party package adds a task type with no change to Flowplane.

The package is written during the test, built and installed by pip, and
found through its ``flowplane.plugins`` entry point. It is installed with
``pip --target`` into a temporary directory put on ``PYTHONPATH`` of a fresh
interpreter, rather than into the shared virtualenv: entry points are read
when the registry is built, and a package visible to every other test process
of this machine for the test's duration would change their registry too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

PACKAGE = "flowplane-example-hello"
TYPE = "io.example.hello.Hello"

PLUGIN_MODULE = '''\
"""An example plugin: a task type that greets, and a flowable that runs its tasks twice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controlplane.plugins.api import (
    Flowable,
    FlowableBase,
    RunContext,
    State,
    TaskBase,
    TaskFailedError,
    Walk,
    worst,
)

if TYPE_CHECKING:
    Task = TaskBase


class Hello(TaskBase):
    """Greet someone, and expose the greeting."""

    TYPE = "io.example.hello.Hello"
    ALIASES = ("hello.Hello",)
    OUTPUTS = {"greeting": "the rendered greeting"}

    name: str

    def run(self, context: RunContext) -> dict[str, Any]:
        name = str(context.render(self.name))
        if not name:
            raise TaskFailedError("nobody to greet")
        found, count = context.kv_get(context.execution.namespace, "greeted", action="kv.Get")
        context.kv_put(context.execution.namespace, "greeted", (count or 0) + 1, action="kv.Set")
        greeting = f"hello {name}"
        context.log("INFO", greeting)
        return {"greeting": greeting}


class Twice(FlowableBase, Flowable):
    """Run the tasks twice, each time as its own iteration."""

    TYPE = "io.example.hello.Twice"

    tasks: list[Task]

    def child_lists(self) -> dict[str, list[TaskBase]]:
        return {"tasks": list(self.tasks), **super().child_lists()}

    def resolve(self, walk: Walk) -> State:
        return worst([walk.run_iteration(self.tasks, n) for n in (1, 2)])


PLUGINS = (Hello, Twice)
'''

PYPROJECT = f"""\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{PACKAGE}"
version = "0.1.0"

[project.entry-points."flowplane.plugins"]
hello = "flowplane_example_hello:PLUGINS"

[tool.setuptools]
py-modules = ["flowplane_example_hello"]
"""

# Runs in a fresh interpreter: validate, serve the API, run a flow, list plugins.
PROBE = textwrap.dedent(
    """\
    import json, sys
    from pathlib import Path

    from fastapi.testclient import TestClient

    from controlplane.api import create_app
    from controlplane.domain.validate import validate_flow
    from controlplane.errors import InvalidFlowError
    from controlplane.settings import Settings
    from controlplane.store.db import create_engine, migrate

    data = Path(sys.argv[1])
    data.mkdir(parents=True, exist_ok=True)
    source, broken = json.loads(sys.stdin.read())
    result = {}
    try:
        validate_flow(broken, file="flows/demo/broken.yaml")
    except InvalidFlowError as exc:
        result["problems"] = [p.render() for p in exc.problems]
    engine = create_engine(f"sqlite:///{data / 'flowplane.db'}")
    migrate(engine)
    token = "fpt_test-admin-token"
    settings = Settings(
        database_url=str(engine.url), data_dir=data, poll_sources=False, admin_token=token
    )
    app = create_app(settings, engine=engine)
    try:
        flow = validate_flow(source)
    except InvalidFlowError as exc:
        flow = None
        result["problems"] += [p.render() for p in exc.problems]
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        result["plugins"] = client.get("/api/v1/plugins").json()["items"]
        schema = client.get("/api/v1/plugins/hello.Hello/schema")
        result["schema_status"] = schema.status_code
        if flow is None:
            print(json.dumps(result))
            sys.exit(0)
        put = client.put(f"/api/v1/flows/{flow.namespace}/{flow.id}", json={"content": source})
        result["put"] = put.status_code
        runs = []
        for _ in range(2):
            runs.append(client.post(
                f"/api/v1/executions/{flow.namespace}/{flow.id}",
                params={"wait": True, "timeout": 30},
                json={"inputs": {}},
            ).json())
        result["runs"] = runs
        result["logs"] = [
            line["message"]
            for line in client.get(f"/api/v1/executions/{runs[0]['id']}/logs").json()
        ]
    print(json.dumps(result))
    """
)

FLOW = """\
id: greet
namespace: demo
tasks:
  - id: hi
    type: hello.Hello
    name: "{{ flow.id }}"
  - id: show
    type: Log
    message: "said {{ outputs.hi.greeting }}"
  - id: count
    type: kv.Get
    key: greeted
  - id: twice
    type: io.example.hello.Twice
    tasks:
      - {id: again, type: Log, message: "again {{ outputs.hi.greeting }}"}
"""

BROKEN = """\
id: broken
namespace: demo
tasks:
  - id: hi
    type: io.example.hello.Hello
    nmae: typo
"""


def _probe(site: Path | None, data: Path) -> dict[str, Any]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(data)],
        input=json.dumps([FLOW, BROKEN]),
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_installed_plugin_validates_runs_and_is_listed(tmp_path: Path) -> None:
    package = tmp_path / "hello-plugin"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (package / "flowplane_example_hello.py").write_text(PLUGIN_MODULE, encoding="utf-8")
    site = tmp_path / "site"
    installed = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--target", str(site), str(package),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert list(site.glob("flowplane_example_hello-*.dist-info"))

    with_plugin = _probe(site, tmp_path / "with")
    types = {item["type"]: item for item in with_plugin["plugins"]}
    assert types[TYPE]["aliases"] == ["hello.Hello"]
    assert types[TYPE]["package"] == PACKAGE
    assert types[TYPE]["family"] == "hello"
    assert types[TYPE]["outputs"] == {"greeting": "the rendered greeting"}
    assert with_plugin["schema_status"] == 200
    # Validation names the file, the line and the property of the plugin's own spec.
    assert any(
        p.startswith("flows/demo/broken.yaml:6:") and "nmae" in p for p in with_plugin["problems"]
    ), with_plugin["problems"]
    assert with_plugin["put"] in {200, 201}
    first, second = with_plugin["runs"]
    assert first["state"] == "SUCCESS", with_plugin["logs"]
    assert "hello greet" in with_plugin["logs"]
    assert "said hello greet" in with_plugin["logs"]
    # The plugin's flowable decided its children: they ran twice, as two task runs.
    assert with_plugin["logs"].count("again hello greet") == 2
    assert len([r for r in first["task_runs"] if r["task_id"] == "again"]) == 2
    # The plugin reached the key-value store through its run context.
    counts = [
        next(r for r in run["task_runs"] if r["task_id"] == "count") for run in (first, second)
    ]
    assert [c["outputs"]["value"] for c in counts] == [1, 2]

    # The same interpreter without the package knows no such type.
    without = _probe(None, tmp_path / "without")
    assert TYPE not in {item["type"] for item in without["plugins"]}
    assert without["schema_status"] == 404
    assert any("unknown task type 'hello.Hello'" in p for p in without["problems"])
