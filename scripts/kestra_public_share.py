#!/usr/bin/env python3
"""What share of public Kestra flows Flowplane validates, and what share it runs.

Reads every flow of ``corpus/kestra-public/`` (blueprints, Kestra documentation
and plugin examples, see that folder's README), then:

1. validates each with Flowplane's own validator (``controlplane.domain.validate``)
   and sorts the first problem of each refused flow into a cause;
2. unless ``--only-validate``, runs each valid flow on an embedded Flowplane
   (SQLite in a temporary folder, the API through FastAPI's TestClient, the
   embedded worker, the scheduler and the Git poller off), filling required
   inputs from their ``prefill`` or a plain value of their type, and sorts the
   end state: SUCCESS/WARNING, FAILED for want of an external service or
   credentials that are absent here (read from the run's log), or FAILED otherwise.

Usage::

    .venv/bin/python scripts/kestra_public_share.py                 # table
    .venv/bin/python scripts/kestra_public_share.py --only-validate # seconds
    .venv/bin/python scripts/kestra_public_share.py --json          # machine output

The figures change as task types are added; nothing here picks flows by outcome.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self

import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus" / "kestra-public"
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

ADMIN_TOKEN = "fpt_kestra-public-share"  # noqa: S105 - a throwaway token of a throwaway server
ENDED = frozenset({"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"})

# io.kestra.plugin.<family>.…: the position of the family in a type name.
_FAMILY = 3

# Source kind from the file name's prefix (``<source-slug>__<flow-id>.yaml``).
SOURCE_KINDS = (
    ("blueprints", "blueprint"),
    ("docs-", "docs"),
    ("kestra-core", "plugin example"),
    ("plugin-", "plugin example"),
)

# What a failed run's log says about why, checked in this order; the first match
# names the reason. "external": something this machine lacks (a service, a secret,
# credentials, a tool). "other": the example's own design, how this harness starts
# it (by hand, alone), or where Flowplane runs scripts. Network failures come last:
# a missing service of any other kind often shows as one too.
_FAILURE_MARKERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("external", "secret missing", (r"secret '?[\w.-]+'? (is not available|does not exist)",)),
    (
        "external",
        "Docker daemon absent",
        (
            r"docker daemon",
            r"docker\.sock",
            r"docker engine",
            r"needs the 'docker' extra",
            r"no container runtime",
        ),
    ),
    ("external", "Kubernetes cluster absent", (r"no kubernetes cluster configured",)),
    (
        "external",
        "tool or extra not installed here",
        (
            r"needs the '[\w-]+' extra",
            r"command not found",
            r"executable file not found",
        ),
    ),
    (
        "other",
        "needs its trigger's data (started by hand here)",
        (r"'trigger' is undefined", r"\{\{ ?trigger\."),
    ),
    (
        "other",
        "needs another flow (subflow) that the example does not include",
        (r"flow [\w.-]+/[\w-]+ does not exist",),
    ),
    (
        "other",
        "needs namespace files that the example does not include",
        (r"can't open file", r"no such file or directory"),
    ),
    (
        "other",
        "pip install into the worker's own read-only Python (Process runner in the sandbox)",
        (r"could not install packages due to an oserror: \[errno 30\] read-only file system",),
    ),
    ("other", "sandbox: /dev/shm is not available", (r"/dev/shm",)),  # noqa: S108 - a log text
    (
        "external",
        "network unreachable",
        (
            r"name or service not known",
            r"temporary failure in name resolution",
            r"getaddrinfo",
            r"could not resolve",
            r"network is unreachable",
            r"no route to host",
            r"connection refused",
            r"max retries exceeded",
            r"failed to establish a new connection",
            r"could not connect",
            r"connection (reset|aborted)",
            r"timed out",
        ),
    ),
    (
        "external",
        "credentials refused",
        (r"\b(401|403)\b", r"unauthori[sz]ed", r"forbidden", r"invalid api key", r"access denied"),
    ),
)
FAILURE_MARKERS: tuple[tuple[str, str, re.Pattern[str]], ...] = tuple(
    (outcome, reason, re.compile("|".join(patterns), re.IGNORECASE))
    for outcome, reason, patterns in _FAILURE_MARKERS
)
FAIL_TASK = "io.kestra.plugin.core.execution.Fail"


@dataclass
class Refusal:
    """Why the validator refused a flow: its first problem and the cause it falls under."""

    where: str  # file:line:col
    message: str
    kind: str  # coarse family, e.g. "unknown task type"
    cause: str  # fine cause, e.g. "unknown task type io.kestra.plugin.dbt.cli.DbtCLI"
    all_causes: list[str] = field(default_factory=list)  # every problem's cause, once each


@dataclass
class RunResult:
    """How a valid flow's run ended here."""

    state: str  # SUCCESS, WARNING, FAILED, KILLED, ..., TIMEOUT, NOT_STARTED
    outcome: str  # "success", "external", "other"
    reason: str = ""
    first_error: str = ""
    seconds: float = 0.0


@dataclass
class FlowReport:
    """Everything measured about one corpus file."""

    file: str
    source: str
    namespace: str
    flow_id: str
    families: list[str]
    validates: bool
    refusal: Refusal | None = None
    run: RunResult | None = None


@dataclass
class Corpus:
    """The corpus files with their text and parsed document."""

    files: list[Path] = field(default_factory=list)

    @classmethod
    def load(cls, folder: Path, only: str | None = None) -> Corpus:
        """Every ``*.yaml`` of ``folder`` (optionally only names containing ``only``), sorted."""
        files = sorted(p for p in folder.glob("*.yaml") if only is None or only in p.name)
        return cls(files)


# ----------------------------------------------------------------------------- categories


def source_kind(name: str) -> str:
    """Blueprint, docs or plugin example, from the file name's source slug."""
    for prefix, kind in SOURCE_KINDS:
        if name.startswith(prefix):
            return kind
    return "other"


def family(type_name: str) -> str:
    """The plugin family a type belongs to: ``core``, ``scripts``, ``jdbc.duckdb``, ``aws``."""
    parts = type_name.split(".")
    if type_name.startswith(("io.kestra.core.", "io.kestra.plugin.core.")) or len(parts) <= _FAMILY:
        return "core"
    name = parts[_FAMILY]
    if name == "jdbc" and len(parts) > _FAMILY + 1:
        return f"jdbc.{parts[_FAMILY + 1]}"
    if name in {"slack", "notifications"}:
        return "notifications"
    return name


def types_in(node: Any) -> list[str]:
    """Every ``type:`` string naming a plugin (task, trigger, condition, runner) in a document."""
    found: list[str] = []
    if isinstance(node, dict):
        value = node.get("type")
        if isinstance(value, str) and value.startswith("io."):
            found.append(value)
        for child in node.values():
            found.extend(types_in(child))
    elif isinstance(node, list):
        for child in node:
            found.extend(types_in(child))
    return found


# ----------------------------------------------------------------------------- validation

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _walk(data: Any, path: str) -> list[Any]:
    """The nodes from the root down to ``path`` (``tasks[0].options.user``), while they exist."""
    nodes = [data]
    node = data
    for name, index in _TOKEN.findall(path):
        try:
            node = node[int(index)] if index else node[name]
        except (KeyError, IndexError, TypeError, ValueError):
            break
        nodes.append(node)
    return nodes


def _owner(data: Any, path: str) -> tuple[str, str]:
    """The typed object a path points into, and the rest of the path below it."""
    tokens = [t[0] or f"[{t[1]}]" for t in _TOKEN.findall(path)]
    nodes = _walk(data, path)
    # nodes[i] is reached after tokens[:i]; look for the deepest typed ancestor.
    for depth in range(min(len(nodes), len(tokens)) - 1, -1, -1):
        node = nodes[depth]
        if isinstance(node, dict) and isinstance(node.get("type"), str) and depth < len(tokens):
            rest = ".".join(tokens[depth:]).replace(".[", "[")
            return node["type"], rest
    return "flow", ".".join(tokens).replace(".[", "[")


def classify_refusal(message: str, path: str, data: Any) -> tuple[str, str]:  # noqa: PLR0911
    """The coarse kind and the fine cause of a validation problem."""
    match = re.search(r"unknown task type '([^']+)'", message)
    if match:
        return "unknown task type", f"unknown task type {match.group(1)}"
    if "unknown trigger type" in message or "unknown condition type" in message:
        kind = "unknown trigger type" if "trigger" in message else "unknown condition type"
        node = _walk(data, path)[-1]
        name = node.get("type") if isinstance(node, dict) else None
        return kind, f"{kind} {name or '?'}"
    if "task runner" in message and ("Docker" in message or "Process" in message):
        prop = message.split(" ", 1)[0]
        if "needs the Docker or Kubernetes task runner" in message:
            return "Docker runner", (
                f"Docker runner: {prop} without a taskRunner (Kestra's default is Docker, "
                "Flowplane's is Process)"
            )
        return "Docker runner", f"Docker runner: {prop} refused with the Docker task runner"
    target = _walk(data, path)[-1] if path else None
    if "not supported" in message and isinstance(target, dict) and "type" in target:
        return "task type refused", f"task type refused: {target['type']}"
    match = re.search(r"unknown property '([^']+)'", message)
    if match or "is not supported" in message:
        owner, rest = _owner(data, path)
        return "property refused", f"property refused: {owner} {rest}"
    if re.search(r"expression|pebble|filter|function|template|render", message, re.IGNORECASE):
        return "expression not supported", f"expression not supported: {message[:90]}"
    if path.startswith("inputs"):
        return "input refused", f"input refused: {message[:90]}"
    return "other", f"other: {message[:90]}"


def validate(path: Path) -> FlowReport:
    """Validate one corpus file and describe it."""
    from controlplane.domain.validate import validate_flow  # noqa: PLC0415 - keep --help fast
    from controlplane.errors import InvalidFlowError  # noqa: PLC0415

    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    report = FlowReport(
        file=path.name,
        source=source_kind(path.name),
        namespace=str(data.get("namespace", "")),
        flow_id=str(data.get("id", "")),
        families=sorted({family(t) for t in types_in(data)}),
        validates=False,
    )
    try:
        validate_flow(text, file=f"{CORPUS.relative_to(ROOT)}/{path.name}")
    except InvalidFlowError as exc:
        first = exc.problems[0]
        kind, cause = classify_refusal(first.message, first.path, data)
        where = ":".join(str(part) for part in (first.file, first.line, first.column) if part)
        every = [classify_refusal(p.message, p.path, data)[1] for p in exc.problems]
        report.refusal = Refusal(where, first.message, kind, cause, sorted(set(every)))
        return report
    report.validates = True
    return report


# ----------------------------------------------------------------------------- runs

_PLAIN_VALUES: dict[str, Any] = {
    "STRING": "kestra",
    "SECRET": "kestra",
    "EMAIL": "kestra@example.com",
    "URI": "https://example.com",
    "INT": 1,
    "FLOAT": 1.0,
    "BOOLEAN": True,
    "BOOL": True,
    "JSON": {},
    "YAML": {},
    "DATE": "2026-11-27",
    "DATETIME": "2026-11-27T09:00:00Z",
    "TIME": "09:00:00",
    "DURATION": "PT1M",
    "ARRAY": [],
}


def fill_inputs(data: dict[str, Any]) -> dict[str, Any]:
    """Values for the required inputs without defaults: their prefill, else a plain value."""
    values: dict[str, Any] = {}
    for spec in data.get("inputs") or []:
        if not isinstance(spec, dict) or spec.get("defaults") is not None:
            continue
        if spec.get("required") is False and "prefill" not in spec:
            continue
        kind = str(spec.get("type", "STRING")).upper()
        if "prefill" in spec:
            prefill = spec["prefill"]
            # YAML reads an unquoted timestamp as a date; the API takes ISO-8601 text.
            values[spec["id"]] = prefill.isoformat() if isinstance(prefill, date) else prefill
        elif kind in {"SELECT", "ENUM"} and spec.get("values"):
            values[spec["id"]] = spec["values"][0]
        elif kind == "MULTISELECT" and spec.get("values"):
            values[spec["id"]] = spec["values"][:1]
        elif kind in _PLAIN_VALUES:
            values[spec["id"]] = _PLAIN_VALUES[kind]
        # FILE and unknown kinds get nothing: the start then says why it cannot run.
    return values


def classify_failure(lines: list[str], flow_types: list[str]) -> tuple[str, str]:
    """``external`` or ``other``, and why, from a failed run's log lines and the flow's types."""
    if FAIL_TASK in flow_types:
        return "other", "ends FAILED by design (the example has a Fail task)"
    text = "\n".join(lines)
    for outcome, reason, pattern in FAILURE_MARKERS:
        if pattern.search(text):
            return outcome, reason
    return "other", "failed (see first error)"


def _first_error(lines: list[dict[str, Any]]) -> str:
    """The first ERROR line; when it only says a command failed, the warning before it too."""
    for index, line in enumerate(lines):
        if line["level"] not in {"ERROR", "CRITICAL"}:
            continue
        message = str(line["message"]).strip()
        if message.startswith("command exited with code"):
            warnings = [
                str(w["message"]).strip()
                for w in lines[:index]
                if w["level"] == "WARN" and str(w["message"]).strip()
            ]
            if warnings:
                message = f"{message} ({warnings[-1]})"
        return message.splitlines()[0][:300] if message else "(empty ERROR line)"
    return "(no ERROR log line)"


class EmbeddedFlowplane:
    """A throwaway Flowplane server: SQLite in a temporary folder, embedded workers."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._tmp = tempfile.TemporaryDirectory(prefix="kestra-public-")
        self._client: Any = None

    def __enter__(self) -> Self:
        from fastapi.testclient import TestClient  # noqa: PLC0415 - only for runs

        from controlplane.api import create_app  # noqa: PLC0415
        from controlplane.logging import configure_logging  # noqa: PLC0415
        from controlplane.settings import Settings  # noqa: PLC0415
        from controlplane.store.db import create_engine, migrate  # noqa: PLC0415

        # The server's own log goes to stderr and only from WARNING: stdout is the report.
        configure_logging("WARNING", json=False)
        base = Path(self._tmp.name)
        engine = create_engine(f"sqlite:///{base / 'flowplane.db'}")
        migrate(engine)
        settings = Settings(
            database_url=str(engine.url),
            data_dir=base / "data",
            work_dir=base / "work",
            poll_sources=False,
            scheduler=False,
            workers=self.workers,
            lease_seconds=5,
            admin_token=ADMIN_TOKEN,
            log_json=False,
            log_level="WARNING",
        )
        app = create_app(settings, engine=engine)
        self._client = TestClient(app, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        self._client.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.__exit__(*exc)
        self._tmp.cleanup()

    def put(self, report: FlowReport, source: str) -> str | None:
        """Store a flow; an error text when the server refuses it."""
        url = f"/api/v1/flows/{report.namespace}/{report.flow_id}"
        response = self._client.put(url, json={"content": source})
        return (
            None
            if response.status_code in {HTTPStatus.OK, HTTPStatus.CREATED}
            else f"HTTP {response.status_code}: {response.text[:200]}"
        )

    def delete(self, report: FlowReport) -> None:
        """Remove a flow so its triggers stop listening."""
        self._client.delete(f"/api/v1/flows/{report.namespace}/{report.flow_id}")

    def start(self, report: FlowReport, inputs: dict[str, Any]) -> tuple[str | None, str]:
        """Queue a run; its id, or None and why it was refused."""
        url = f"/api/v1/executions/{report.namespace}/{report.flow_id}"
        response = self._client.post(url, json={"inputs": inputs})
        if response.status_code == HTTPStatus.CREATED:
            return response.json()["id"], ""
        return None, f"HTTP {response.status_code}: {response.text[:300]}"

    def state(self, execution_id: str) -> str:
        """The run's current state."""
        return str(self._client.get(f"/api/v1/executions/{execution_id}").json()["state"])

    def kill(self, execution_id: str) -> None:
        """Stop a run that outlived its time limit."""
        self._client.post(f"/api/v1/executions/{execution_id}/kill")

    def logs(self, execution_id: str) -> list[dict[str, Any]]:
        """The run's log lines (first page)."""
        response = self._client.get(f"/api/v1/executions/{execution_id}/logs?limit=2000")
        return list(response.json()) if response.status_code == HTTPStatus.OK else []


@dataclass
class _InFlight:
    report: FlowReport
    execution_id: str
    started: float


def run_all(reports: list[FlowReport], timeout: float, workers: int, progress: bool) -> None:
    """Run every valid flow, ``workers`` at a time, each within ``timeout`` seconds."""
    queue = [r for r in reports if r.validates]
    with EmbeddedFlowplane(workers) as server:
        in_flight: list[_InFlight] = []
        while queue or in_flight:
            in_flight = [f for f in in_flight if not _settle(server, f, timeout, progress)]
            busy = {(f.report.namespace, f.report.flow_id) for f in in_flight}
            while queue and len(in_flight) < workers:
                report = queue[0]
                alone = "io.kestra.plugin.core.trigger.Flow" in _trigger_types(report)
                # A flow id shared by two examples, or a Flow-trigger listener, runs alone.
                if (report.namespace, report.flow_id) in busy or (alone and in_flight):
                    break
                queue.pop(0)
                started = _launch(server, report)
                if started is not None:
                    in_flight.append(started)
                    busy.add((report.namespace, report.flow_id))
                    if alone:
                        break
            time.sleep(0.2)


def _trigger_types(report: FlowReport) -> list[str]:
    data = yaml.safe_load((CORPUS / report.file).read_text(encoding="utf-8"))
    return [t.get("type", "") for t in data.get("triggers") or [] if isinstance(t, dict)]


def _launch(server: EmbeddedFlowplane, report: FlowReport) -> _InFlight | None:
    source = (CORPUS / report.file).read_text(encoding="utf-8")
    refused = server.put(report, source)
    if refused is None:
        execution_id, refused = server.start(report, fill_inputs(yaml.safe_load(source)))
        if execution_id is not None:
            return _InFlight(report, execution_id, time.monotonic())
    why = "could not start"
    if refused and "FILE input" in refused:
        why = "needs a FILE input, which Flowplane refuses when a run starts"
    report.run = RunResult("NOT_STARTED", "other", why, refused or "")
    server.delete(report)
    return None


def _settle(server: EmbeddedFlowplane, flight: _InFlight, timeout: float, progress: bool) -> bool:
    """Record the run if it ended or ran out of time; whether it is done."""
    state = server.state(flight.execution_id)
    elapsed = time.monotonic() - flight.started
    if state not in ENDED and elapsed < timeout:
        return False
    lines = server.logs(flight.execution_id)
    first_error = _first_error(lines)
    messages = [str(line["message"]) for line in lines]
    flow_types = types_in(yaml.safe_load((CORPUS / flight.report.file).read_text(encoding="utf-8")))
    if state in {"SUCCESS", "WARNING"}:
        result = RunResult(state, "success", "", "", round(elapsed, 1))
    elif state not in ENDED:
        server.kill(flight.execution_id)
        outcome, reason = classify_failure(messages, flow_types)
        if reason.startswith(("failed", "ends FAILED")):
            outcome, reason = "other", f"did not end within {timeout:g} s"
        else:
            reason = f"{reason} (still {state} at the {timeout:g} s limit)"
        result = RunResult("TIMEOUT", outcome, reason, first_error, round(elapsed, 1))
    else:
        outcome, reason = classify_failure(messages, flow_types)
        result = RunResult(state, outcome, reason, first_error, round(elapsed, 1))
    flight.report.run = result
    server.delete(flight.report)
    if progress:
        print(f"  {result.state:<9} {flight.report.file}  {result.reason}", file=sys.stderr)  # noqa: T201
    return True


# ----------------------------------------------------------------------------- summary


def commit() -> str:
    """The Flowplane commit measured (short hash), ``+dirty`` when the tree has changes."""
    try:
        head = subprocess.run(  # noqa: S603 - fixed command
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head


def summarize(reports: list[FlowReport], ran: bool) -> dict[str, Any]:
    """The counts, causes and per-file details, as one JSON-ready mapping."""
    total = len(reports)
    valid = [r for r in reports if r.validates]
    refusals = [r.refusal for r in reports if r.refusal is not None]
    summary: dict[str, Any] = {
        "commit": commit(),
        "total": total,
        "validated": len(valid),
        "refused": len(refusals),
        "by_source": {
            kind: {
                "total": sum(r.source == kind for r in reports),
                "validated": sum(r.source == kind and r.validates for r in reports),
            }
            for kind in sorted({r.source for r in reports})
        },
        "by_family": {
            name: {
                "total": sum(name in r.families for r in reports),
                "validated": sum(name in r.families and r.validates for r in reports),
            }
            for name in sorted({f for r in reports for f in r.families})
        },
        "refusal_kinds": Counter(r.kind for r in refusals).most_common(),
        "refusal_causes": Counter(r.cause for r in refusals).most_common(),
        "blocking_causes": Counter(c for r in refusals for c in r.all_causes).most_common(),
        "ran": ran,
    }
    if ran:
        runs = [r.run for r in valid if r.run is not None]
        summary.update(
            succeeded=sum(r.outcome == "success" for r in runs),
            failed_external=sum(r.outcome == "external" for r in runs),
            failed_other=sum(r.outcome == "other" for r in runs),
            external_reasons=Counter(
                r.reason for r in runs if r.outcome == "external"
            ).most_common(),
            other_reasons=Counter(r.reason for r in runs if r.outcome == "other").most_common(),
        )
        summary["by_source"] = {
            kind: counts
            | {
                "succeeded": sum(
                    r.source == kind and r.run is not None and r.run.outcome == "success"
                    for r in reports
                )
            }
            for kind, counts in summary["by_source"].items()
        }
    summary["files"] = [asdict(r) for r in reports]
    return summary


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:5.1f}%" if total else "    -"


def render_table(summary: dict[str, Any], top: int) -> str:
    """The human-readable report."""
    total = summary["total"]
    out = [
        f"Kestra public flows on Flowplane {summary['commit']}",
        "",
        f"{'':<44}{'n':>5}  {'share':>6}",
        f"{'total':<44}{total:>5}  {_pct(total, total)}",
        f"{'validates':<44}{summary['validated']:>5}  {_pct(summary['validated'], total)}",
    ]
    if summary["ran"]:
        succeeded = summary["succeeded"]
        of_valid = _pct(succeeded, summary["validated"]).strip()
        runs = f"{'runs to SUCCESS/WARNING':<44}{succeeded:>5}  {_pct(succeeded, total)}"
        out += [
            f"{runs}   ({of_valid} of the valid)",
            f"{'FAILED: external service/credentials absent':<44}{summary['failed_external']:>5}",
            f"{'FAILED or not ended: other':<44}{summary['failed_other']:>5}",
        ]
    out += ["", "By source"]
    for kind, counts in summary["by_source"].items():
        line = f"  {kind:<16}{counts['total']:>4} flows, {counts['validated']:>4} validate"
        if "succeeded" in counts:
            line += f", {counts['succeeded']:>4} run"
        out.append(line)
    out += ["", "By plugin family (flows naming a type of it: validate/total)"]
    families = sorted(summary["by_family"].items(), key=lambda item: -item[1]["total"])
    out += [f"  {name:<16}{c['validated']:>4}/{c['total']}" for name, c in families]
    out += ["", "Refusals by kind"]
    out += [f"  {n:>4}  {kind}" for kind, n in summary["refusal_kinds"]]
    out += ["", f"Top refusal causes (first problem of each refused flow; {top} shown)"]
    out += [f"  {n:>4}  {cause}" for cause, n in summary["refusal_causes"][:top]]
    out += ["", f"Every cause that blocks a refused flow (flows it blocks; {top} shown)"]
    out += [f"  {n:>4}  {cause}" for cause, n in summary["blocking_causes"][:top]]
    if summary["ran"]:
        out += ["", "Why valid flows failed"]
        out += [f"  {n:>4}  external: {why}" for why, n in summary["external_reasons"]]
        out += [f"  {n:>4}  other: {why}" for why, n in summary["other_reasons"]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Measure and print; exit 0 whatever the share is."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--only-validate", action="store_true", help="skip the runs (seconds)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per run (20)")
    parser.add_argument("--workers", type=int, default=2, help="runs at once (2)")
    parser.add_argument("--top", type=int, default=15, help="refusal causes listed (15)")
    parser.add_argument("--only", help="only files whose name contains this text")
    parser.add_argument("--progress", action="store_true", help="print each run's end")
    args = parser.parse_args(argv)

    corpus = Corpus.load(CORPUS, args.only)
    reports = [validate(path) for path in corpus.files]
    ran = not args.only_validate
    if ran:
        run_all(reports, args.timeout, args.workers, args.progress)
    summary = summarize(reports, ran)
    if args.json:
        print(json.dumps(summary, indent=2))  # noqa: T201
    else:
        print(render_table(summary, args.top))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
