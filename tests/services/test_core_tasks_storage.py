"""Kestra's storage core tasks and http.Download, run as flows through the real worker.

A task's stored file is an absolute path under the execution's directory; the
tests read those files from disk to check the bytes, and check that a path
outside the execution (a server file, a link planted by a script, another
run's file) is refused.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.services.test_engine import logs, put_flow, run, task_runs

ORDERS = b"order_id,customer\n1,Kelly\n2,Miguel\n3,Jessica\n"


class _Files(BaseHTTPRequestHandler):
    """Answers a download as a file server would: a named CSV, an echo, empties, errors."""

    def do_GET(self) -> None:
        if self.path == "/orders.csv":
            self._answer(200, ORDERS, {"Content-Disposition": 'attachment; filename="orders.csv"'})
        elif self.path == "/big":
            self._answer(200, b"x" * (11 * 1024 * 1024))  # over Kestra's 10 MiB default
        elif self.path == "/empty":
            self._answer(200, b"")
        elif self.path == "/missing":
            self._answer(404, b"no such file")
        elif self.path == "/truncated":
            # The connection closes after 4 of the 10 announced bytes.
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"half")
            self.close_connection = True
        else:
            self._answer(200, b"plain", {})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        echoed = {
            "body": body.decode(),
            "token": self.headers.get("X-Token"),
            "type": self.headers["Content-Type"],
        }
        self._answer(201, json.dumps(echoed).encode(), {"X-Seen": "yes"})

    def _answer(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def files_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()
    server.server_close()


def flow(tasks: str, flow_id: str = "files") -> str:
    """A flow of namespace ``demo`` with ``tasks`` (YAML list items, two-space indented)."""
    return f"id: {flow_id}\nnamespace: demo\ntasks:\n{tasks}"


def run_flow(client: TestClient, tasks: str, flow_id: str = "files") -> dict[str, Any]:
    put_flow(client, flow(tasks, flow_id))
    return run(client, "demo", flow_id)


def outputs(execution: dict[str, Any], task_id: str) -> dict[str, Any]:
    return dict(task_runs(execution)[task_id]["outputs"])


def read(uri: str) -> bytes:
    return Path(uri).read_bytes()


def test_download_stores_the_body_with_its_name_code_headers_and_length(
    client: TestClient, files_url: str
) -> None:
    tasks = f"""\
  - id: get
    type: io.kestra.plugin.core.http.Download
    uri: {files_url}/orders.csv
  - id: post
    type: http.Download
    uri: {files_url}/echo
    method: POST
    headers: {{X-Token: t-1}}
    body: '{{"n": 1}}'
    contentType: application/json
    saveAs: echo.json
  - id: form
    type: http.Download
    uri: {files_url}/echo
    method: POST
    formData: {{a: 1, b: two}}
  - id: size
    type: storage.Size
    uri: "{{{{ outputs.get.uri }}}}"
"""
    execution = run_flow(client, tasks)
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    got = outputs(execution, "get")
    assert (got["code"], got["length"]) == (200, len(ORDERS))
    assert got["headers"]["content-disposition"] == ['attachment; filename="orders.csv"']
    assert Path(got["uri"]).name == "orders.csv"  # the name Content-Disposition offers
    assert read(got["uri"]) == ORDERS
    assert outputs(execution, "size") == {"size": len(ORDERS)}
    posted = outputs(execution, "post")
    assert posted["code"] == 201
    assert posted["headers"]["x-seen"] == ["yes"]
    assert Path(posted["uri"]).name == "echo.json"
    assert json.loads(read(posted["uri"])) == {
        "body": '{"n": 1}',
        "token": "t-1",
        "type": "application/json",
    }
    form = json.loads(read(outputs(execution, "form")["uri"]))
    assert form == {
        "body": "a=1&b=two",
        "token": None,
        "type": "application/x-www-form-urlencoded",
    }


def test_a_body_over_max_content_length_fails_the_task_not_the_worker(
    client: TestClient, files_url: str
) -> None:
    """http.Request reads at most 10 MiB unless told; either task honours the option."""
    tasks = f"""\
  - id: small
    type: http.Request
    uri: {files_url}/orders.csv
    options: {{maxContentLength: "{{{{ 10 * 10 }}}}"}}
  - id: default-limit
    type: http.Request
    uri: {files_url}/big
    allowFailure: true
  - id: request-limit
    type: http.Request
    uri: {files_url}/orders.csv
    options: {{maxContentLength: 20}}
    allowFailure: true
  - id: download-limit
    type: http.Download
    uri: {files_url}/orders.csv
    options: {{maxContentLength: 20}}
    allowFailure: true
  - id: download-unlimited
    type: http.Download
    uri: {files_url}/big
"""
    execution = run_flow(client, tasks, "limits")
    lines = logs(client, execution["id"])
    assert execution["state"] == "WARNING", lines
    runs = task_runs(execution)
    assert outputs(execution, "small")["body"] == ORDERS.decode()
    for task in ("default-limit", "request-limit", "download-limit"):
        assert runs[task]["state"] == "WARNING", task
    text = "\n".join(lines)
    assert f"/big is over {10 * 1024 * 1024} bytes (options.maxContentLength)" in text
    assert text.count("/orders.csv is over 20 bytes (options.maxContentLength)") == 2
    assert outputs(execution, "download-unlimited")["length"] == 11 * 1024 * 1024


def test_download_fails_on_an_empty_body_or_an_error_status_unless_allowed(
    client: TestClient, files_url: str
) -> None:
    tasks = f"""\
  - {{id: empty, type: http.Download, uri: {files_url}/empty, allowFailure: true}}
  - {{id: empty-ok, type: http.Download, uri: {files_url}/empty, failOnEmptyResponse: false}}
  - {{id: missing, type: http.Download, uri: {files_url}/missing, allowFailure: true}}
  - id: missing-ok
    type: http.Download
    uri: {files_url}/missing
    options: {{allowFailed: true}}
  - {{id: cut, type: http.Download, uri: {files_url}/truncated, allowFailure: true}}
  - {{id: missing-too, type: http.Download, uri: {files_url}/missing, allowFailed: true}}
"""
    execution = run_flow(client, tasks)
    runs = task_runs(execution)
    lines = "\n".join(logs(client, execution["id"]))
    assert runs["empty"]["state"] == "WARNING"
    assert "no response from server" in lines
    assert runs["empty-ok"]["state"] == "SUCCESS"
    assert runs["empty-ok"]["outputs"]["length"] == 0
    assert read(runs["empty-ok"]["outputs"]["uri"]) == b""
    assert "is empty" in lines  # the WARN Kestra logs for an allowed empty file
    assert runs["missing"]["state"] == "WARNING"
    assert "answered 404" in lines
    assert runs["missing-ok"]["state"] == "SUCCESS"
    assert runs["missing-ok"]["outputs"]["code"] == 404
    assert read(runs["missing-ok"]["outputs"]["uri"]) == b"no such file"
    assert runs["missing-too"]["state"] == "SUCCESS"  # the older top-level spelling
    assert runs["missing-too"]["outputs"]["code"] == 404
    assert runs["cut"]["state"] == "WARNING"  # 4 of 10 bytes: never stored as complete
    assert "uri" not in runs["cut"]["outputs"]


def test_split_then_concat_round_trips_the_bytes(client: TestClient) -> None:
    # Five lines, one with non-ASCII text; Kestra's split writes each line + "\n".
    content = "alpha\\nbeta\\ngamma é\\ndelta\\nepsilon\\n"
    tasks = f"""\
  - {{id: w, type: storage.Write, content: "{content}", extension: .csv}}
  - {{id: rows, type: storage.Split, from: "{{{{ outputs.w.uri }}}}", rows: 2}}
  - {{id: joined, type: storage.Concat, files: "{{{{ outputs.rows.uris }}}}", extension: .csv}}
  - {{id: sized, type: storage.Split, from: "{{{{ outputs.w.uri }}}}", bytes: "11"}}
  - {{id: dealt, type: storage.Split, from: "{{{{ outputs.w.uri }}}}", partitions: 2}}
  - id: keyed
    type: io.kestra.plugin.core.storage.Split
    from: "{{{{ outputs.w.uri }}}}"
    regexPattern: "^[^aeiou]*([aeiou])"
    separator: ";"
"""
    execution = run_flow(client, tasks)
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    original = "alpha\nbeta\ngamma é\ndelta\nepsilon\n".encode()
    assert read(outputs(execution, "w")["uri"]) == original
    rows = outputs(execution, "rows")["uris"]
    assert [read(u) for u in rows] == [b"alpha\nbeta\n", "gamma é\ndelta\n".encode(), b"epsilon\n"]
    assert all(u.endswith(".csv") for u in rows)  # the parts keep the source's extension
    joined = outputs(execution, "joined")["uri"]
    assert joined.endswith(".csv")
    assert read(joined) == original
    # bytes: a new part once the current one holds at least 11 bytes.
    sized = [read(u) for u in outputs(execution, "sized")["uris"]]
    assert sized == [b"alpha\nbeta\n", "gamma é\ndelta\n".encode(), b"epsilon\n"]
    dealt = [read(u) for u in outputs(execution, "dealt")["uris"]]
    assert dealt == ["alpha\ngamma é\nepsilon\n".encode(), b"beta\ndelta\n"]
    # Grouped by each line's first vowel, in the order the groups first appear.
    keyed = [read(u) for u in outputs(execution, "keyed")["uris"]]
    assert keyed == [b"alpha;gamma \xc3\xa9;", b"beta;delta;epsilon;"]


def test_concat_takes_a_list_with_a_separator_after_each_file(client: TestClient) -> None:
    tasks = """\
  - {id: a, type: storage.Write, content: first}
  - {id: b, type: storage.Write, content: second, extension: .txt}
  - id: both
    type: storage.Concat
    files: ["{{ outputs.a.uri }}", "{{ outputs.b.uri }}"]
    separator: "|"
"""
    execution = run_flow(client, tasks)
    assert execution["state"] == "SUCCESS", logs(client, execution["id"])
    assert Path(outputs(execution, "a")["uri"]).name == "a.tmp"  # Kestra's default extension
    assert Path(outputs(execution, "b")["uri"]).name == "b.txt"
    both = outputs(execution, "both")["uri"]
    assert both.endswith(".tmp")
    assert read(both) == b"first|second|"  # as Kestra: the separator follows every file


def test_size_delete_and_purge_act_on_this_executions_files(client: TestClient) -> None:
    tasks = """\
  - {id: a, type: storage.Write, content: twelve bytes}
  - {id: b, type: storage.Write, content: kept until the purge}
  - {id: size, type: storage.Size, uri: "{{ outputs.a.uri }}"}
  - {id: gone, type: storage.Delete, uri: "{{ outputs.a.uri }}"}
  - {id: again, type: storage.Delete, uri: "{{ outputs.a.uri }}"}
  - id: strict
    type: storage.Delete
    uri: "{{ outputs.a.uri }}"
    errorOnMissing: true
    allowFailure: true
  - {id: purge, type: storage.PurgeCurrentExecutionFiles}
"""
    execution = run_flow(client, tasks)
    runs = task_runs(execution)
    a, b = outputs(execution, "a")["uri"], outputs(execution, "b")["uri"]
    assert outputs(execution, "size") == {"size": 12}
    assert outputs(execution, "gone") == {"uri": a, "deleted": True}
    assert outputs(execution, "again") == {"uri": a, "deleted": False}
    assert runs["strict"]["state"] == "WARNING"
    assert f"unable to find file {a!r}" in "\n".join(logs(client, execution["id"]))
    assert outputs(execution, "purge")["uris"] == [b]
    assert not Path(a).exists()
    assert not Path(b).exists()


def test_storage_tasks_refuse_files_outside_the_execution(client: TestClient) -> None:
    first = run_flow(client, "  - {id: w, type: storage.Write, content: secret-ish}\n", "other")
    foreign = outputs(first, "w")["uri"]
    tasks = f"""\
  - id: plant
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - ln -s /etc/hostname link
      - echo '::{{"outputs":{{"dir":"'"$PWD"'"}}}}::'
  - {{id: server, type: storage.Size, uri: /etc/hostname, allowFailure: true}}
  - id: linked
    type: storage.Size
    uri: "{{{{ outputs.plant.vars.dir }}}}/link"
    allowFailure: true
  - {{id: theirs, type: storage.Concat, files: ["{foreign}"], allowFailure: true}}
  - {{id: scheme, type: storage.Size, uri: "kestra:///demo/files/x.csv", allowFailure: true}}
  - {{id: erase, type: storage.Delete, uri: "{foreign}", allowFailure: true}}
"""
    execution = run_flow(client, tasks)
    runs = task_runs(execution)
    assert runs["plant"]["state"] == "SUCCESS", logs(client, execution["id"])
    for task in ("server", "linked", "theirs", "scheme", "erase"):
        assert runs[task]["state"] == "WARNING", task
    lines = "\n".join(logs(client, execution["id"]))
    assert "'/etc/hostname' is not a file of this execution" in lines
    assert "/link' is not a file of this execution" in lines
    assert f"{foreign!r} is not a file of this execution" in lines
    assert "pass the uri a task output gave" in lines
    assert Path(foreign).read_text() == "secret-ish"  # the other run's file is untouched


def test_deduplicate_and_filter_items_read_json_and_ion_lines(client: TestClient) -> None:
    # The last record of each email stays (Kestra's keep-last); the Ion lines are
    # what CsvToIon writes: unquoted field names, decimals.
    tasks = """\
  - id: json
    type: storage.Write
    content: |
      {"id": 1, "email": "kelly@example.com", "price": 166.89}
      {"id": 2, "email": "miguel@example.net", "price": 20}
      {"id": 3, "email": "kelly@example.com", "price": 99.5}
  - id: ion
    type: storage.Write
    content: |
      {id:4,email:"jess@example.com",price:50.62}
      {id:5,email:"jess@example.com",price:500.}
  - id: dedup
    type: storage.DeduplicateItems
    from: "{{ outputs.json.uri }}"
    expr: "{{ email }}"
  - id: cheap
    type: storage.FilterItems
    from: "{{ outputs.json.uri }}"
    filterCondition: "{{ price < 100 }}"
  - id: not-cheap
    type: io.kestra.plugin.core.storage.FilterItems
    from: "{{ outputs.ion.uri }}"
    filterCondition: "{{ price < 100 }}"
    filterType: EXCLUDE
  - id: lenient
    type: storage.FilterItems
    from: "{{ outputs.json.uri }}"
    filterCondition: "{{ price.missing.field > 1 }}"
    errorOrNullBehavior: INCLUDE
  - id: strict
    type: storage.FilterItems
    from: "{{ outputs.json.uri }}"
    filterCondition: "{{ price.missing.field > 1 }}"
    allowFailure: true
"""
    execution = run_flow(client, tasks)
    runs = task_runs(execution)
    assert runs["dedup"]["state"] == "SUCCESS", logs(client, execution["id"])
    dedup = outputs(execution, "dedup")
    kept = [json.loads(line)["id"] for line in read(dedup["uri"]).decode().splitlines()]
    assert kept == [2, 3]
    assert (dedup["numKeys"], dedup["processedItemsTotal"], dedup["droppedItemsTotal"]) == (2, 3, 1)
    assert dedup["uri"].endswith(".ion")
    cheap = outputs(execution, "cheap")
    assert [json.loads(x)["id"] for x in read(cheap["uri"]).decode().splitlines()] == [2, 3]
    assert (cheap["processedItemsTotal"], cheap["droppedItemsTotal"]) == (3, 1)
    not_cheap = outputs(execution, "not-cheap")
    assert read(not_cheap["uri"]) == b'{id:5,email:"jess@example.com",price:500.}\n'
    assert outputs(execution, "lenient")["droppedItemsTotal"] == 0
    assert runs["strict"]["state"] == "WARNING"
    assert "filterCondition failed on item" in "\n".join(logs(client, execution["id"]))
