"""The no-stub rule: every task type the registry holds runs a minimal flow to its end.

``MINIMAL`` has one flow per type, keyed by any of its names. A type that needs
a server to talk to (Argo CD, Slack, S3, PostgreSQL, ...) is run instead by its
family's tests in ``tests/plugins/``: each such module declares
``RUNS = {type name: test function}``, naming the test that runs a flow with
that type against the real thing or a local server speaking its protocol. A
type added to the registry with neither fails ``test_every_type_has_a_minimal_flow``;
a type whose implementation is a stub fails its own run.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

import tests.plugins
from controlplane.domain.polling import POLLING_TRIGGERS, canonical_trigger
from controlplane.domain.tasktypes import TASK_TYPES, canonical_type
from tests.services.test_engine import logs, put_flow, run, wait_for_end

_LOG = "{id: inner, type: Log, message: \"inside {{ taskrun.value ?? '' }}\"}"
# A stored file, and a file of records, for the storage tasks to work on.
_WRITE = '- {id: w, type: storage.Write, content: "a\\nb\\n"}'
_ITEMS = "- {id: w, type: storage.Write, content: '{\"k\": 1}'}"


@dataclass(frozen=True)
class Minimal:
    """The ``tasks:`` of a flow that runs one task of the type, and its expected end."""

    tasks: str
    state: str = "SUCCESS"
    inputs: tuple[str, ...] = ()


MINIMAL: dict[str, Minimal] = {
    "Log": Minimal('- {id: t, type: Log, message: "hello"}'),
    "Return": Minimal('- {id: t, type: Return, format: "{{ flow.id }}"}'),
    "Echo": Minimal('- {id: t, type: Echo, format: "hello"}'),
    "Fail": Minimal('- {id: t, type: Fail, condition: "{{ 1 == 2 }}"}'),
    "Sleep": Minimal("- {id: t, type: Sleep, duration: PT0.05S}"),
    "OutputValues": Minimal("- {id: t, type: OutputValues, values: {a: 1}}"),
    "Labels": Minimal("- {id: t, type: Labels, labels: {team: ops}}"),
    "Resume": Minimal(
        '- {id: t, type: Resume, executionId: "{{ inputs.target }}"}', inputs=("target",)
    ),
    "log.Fetch": Minimal("- {id: t, type: log.Fetch}"),
    "kv.Set": Minimal("- {id: t, type: kv.Set, key: k, value: v}"),
    "kv.Get": Minimal("- {id: t, type: kv.Get, key: missing}"),
    "kv.Delete": Minimal("- {id: t, type: kv.Delete, key: missing}"),
    "state.Get": Minimal("- {id: t, type: state.Get, name: s}"),
    "state.Set": Minimal("- {id: t, type: state.Set, name: s, data: {a: 1}}"),
    "state.Delete": Minimal("- {id: t, type: state.Delete, name: s}"),
    "LocalFiles": Minimal("- {id: t, type: LocalFiles, inputs: {a.txt: x}, outputs: [a.txt]}"),
    "Sequential": Minimal(f"- {{id: t, type: Sequential, tasks: [{_LOG}]}}"),
    "Parallel": Minimal(f"- {{id: t, type: Parallel, tasks: [{_LOG}]}}"),
    "If": Minimal(f'- {{id: t, type: If, condition: "{{{{ true }}}}", then: [{_LOG}]}}'),
    "Switch": Minimal(f"- {{id: t, type: Switch, value: a, cases: {{a: [{_LOG}]}}}}"),
    "ForEach": Minimal(f"- {{id: t, type: ForEach, values: [x, y], tasks: [{_LOG}]}}"),
    "EachSequential": Minimal(f"- {{id: t, type: EachSequential, value: [x], tasks: [{_LOG}]}}"),
    "EachParallel": Minimal(f"- {{id: t, type: EachParallel, value: [x], tasks: [{_LOG}]}}"),
    "Dag": Minimal(f"- {{id: t, type: Dag, tasks: [{{task: {_LOG}}}]}}"),
    "Subflow": Minimal("- {id: t, type: Subflow, namespace: every, flowId: child}"),
    "Pause": Minimal("- {id: t, type: Pause, pauseDuration: PT0.2S}"),
    "AllowFailure": Minimal(f"- {{id: t, type: AllowFailure, tasks: [{_LOG}]}}"),
    "WorkingDirectory": Minimal(f"- {{id: t, type: WorkingDirectory, tasks: [{_LOG}]}}"),
    "WaitFor": Minimal(f'- {{id: t, type: WaitFor, condition: "{{{{ true }}}}", tasks: [{_LOG}]}}'),
    "http.Request": Minimal(
        '- {id: t, type: http.Request, uri: "{{ inputs.url }}"}', inputs=("url",)
    ),
    "shell.Commands": Minimal("- {id: t, type: shell.Commands, commands: [echo hi]}"),
    "shell.Script": Minimal('- {id: t, type: shell.Script, script: "echo hi"}'),
    "python.Commands": Minimal(
        "- {id: t, type: python.Commands, commands: [\"python -c 'print(1)'\"]}"
    ),
    "python.Script": Minimal('- {id: t, type: python.Script, script: "print(1)"}'),
    "http.Download": Minimal(
        '- {id: t, type: http.Download, uri: "{{ inputs.url }}"}', inputs=("url",)
    ),
    "storage.Write": Minimal("- {id: t, type: storage.Write, content: hello, extension: .txt}"),
    "storage.Split": Minimal(
        f"{_WRITE}\n- {{id: t, type: storage.Split, from: '{{{{ outputs.w.uri }}}}', rows: 1}}"
    ),
    "storage.Concat": Minimal(
        f"{_WRITE}\n- {{id: t, type: storage.Concat, files: ['{{{{ outputs.w.uri }}}}']}}"
    ),
    "storage.Size": Minimal(
        f"{_WRITE}\n- {{id: t, type: storage.Size, uri: '{{{{ outputs.w.uri }}}}'}}"
    ),
    "storage.Delete": Minimal(
        f"{_WRITE}\n- {{id: t, type: storage.Delete, uri: '{{{{ outputs.w.uri }}}}'}}"
    ),
    "storage.PurgeCurrentExecutionFiles": Minimal(
        f"{_WRITE}\n- {{id: t, type: storage.PurgeCurrentExecutionFiles}}"
    ),
    "storage.DeduplicateItems": Minimal(
        f"{_ITEMS}\n- {{id: t, type: storage.DeduplicateItems, "
        "from: '{{ outputs.w.uri }}', expr: '{{ k }}'}"
    ),
    "storage.FilterItems": Minimal(
        f"{_ITEMS}\n- {{id: t, type: storage.FilterItems, "
        "from: '{{ outputs.w.uri }}', filterCondition: '{{ k == 1 }}'}"
    ),
    "Assert": Minimal("- {id: t, type: Assert, conditions: ['{{ 1 + 1 == 2 }}']}"),
    "execution.Count": Minimal(
        "- {id: t, type: execution.Count, flows: [{namespace: every, flowId: one}], "
        "startDate: '2020-01-01T00:00:00Z', expression: '{{ count >= 1 }}'}"
    ),
    "trigger.Toggle": Minimal("- {id: t, type: trigger.Toggle, flowId: toggled, trigger: yearly}"),
}


def _family_runs(attribute: str = "RUNS") -> dict[str, str]:
    """Type name -> ``module::test`` for the family tests of ``tests/plugins/``.

    ``RUNS`` names task types; ``TRIGGER_RUNS`` names polling trigger types.
    """
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(tests.plugins.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"tests.plugins.{info.name}")
        for name, test in getattr(module, attribute, {}).items():
            assert callable(getattr(module, test, None)), f"{info.name}.{attribute} names {test}"
            assert test.startswith("test_"), f"{info.name}.{attribute}: {test} is not a test"
            found[name] = f"{info.name}::{test}"
    return found


def test_every_polling_trigger_type_runs_in_a_family_test() -> None:
    covered = {canonical_trigger(name) for name in _family_runs("TRIGGER_RUNS")}
    assert None not in covered, "a TRIGGER_RUNS key names no registered trigger type"
    assert sorted(set(POLLING_TRIGGERS) - covered) == []


def test_every_type_has_a_minimal_flow() -> None:
    names = [*MINIMAL, *_family_runs()]
    covered = {canonical_type(name) for name in names}
    assert None not in covered, "a MINIMAL or RUNS key names no registered type"
    assert sorted(set(TASK_TYPES) - covered) == []


@pytest.fixture
def http_url() -> Iterator[str]:
    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join()
    server.server_close()


def _paused_run(client: TestClient) -> str:
    put_flow(client, "id: gate\nnamespace: every\ntasks:\n  - {id: wait, type: Pause}\n")
    paused = run(client, "every", "gate")
    assert paused["state"] == "PAUSED"
    return str(paused["id"])


def _flow_with_trigger(client: TestClient) -> dict[str, str]:
    put_flow(
        client,
        "id: toggled\nnamespace: every\ntasks:\n  - {id: l, type: Log, message: m}\n"
        "triggers:\n  - {id: yearly, type: Schedule, cron: '0 0 1 1 *'}\n",
    )
    return {}


_SETUP: dict[str, Callable[[TestClient, str], dict[str, str]]] = {
    "Resume": lambda client, _url: {"target": _paused_run(client)},
    "http.Request": lambda _client, url: {"url": url},
    "http.Download": lambda _client, url: {"url": url},
    "trigger.Toggle": lambda client, _url: _flow_with_trigger(client),
}


@pytest.mark.parametrize("name", sorted(MINIMAL), ids=str)
def test_type_runs(client: TestClient, http_url: str, name: str) -> None:
    minimal = MINIMAL[name]
    put_flow(client, "id: child\nnamespace: every\ntasks:\n  - {id: c, type: Log, message: c}\n")
    inputs = _SETUP[name](client, http_url) if name in _SETUP else {}
    declared = "".join(f"  - {{id: {i}, type: STRING}}\n" for i in minimal.inputs)
    source = (
        "id: one\nnamespace: every\n"
        + (f"inputs:\n{declared}" if declared else "")
        + "tasks:\n"
        + "".join(f"  {line}\n" for line in minimal.tasks.splitlines())
    )
    put_flow(client, source)
    execution = run(client, "every", "one", **inputs)
    if execution["state"] not in {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}:
        execution = wait_for_end(client, execution["id"])
    assert execution["state"] == minimal.state, logs(client, execution["id"])
    own = [r for r in execution["task_runs"] if r["task_id"] == "t"]
    assert own, "the task never ran"
    assert {r["type"] for r in own} == {canonical_type(name)}
    assert all(r["state"] == minimal.state for r in own), own
