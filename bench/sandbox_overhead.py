"""sandbox_overhead: what isolating a script task costs, per task, through the real executor.

One flow of N shell tasks (`true`) and one of N Python tasks (`pass`) run on a
temporary SQLite database with a real Worker, once per sandbox mode (off,
bwrap, setuid). The figure is the execution's wall time divided by N; the
difference from `off` is the sandbox's own cost per task. Modes the machine
cannot run (bwrap missing, setuid without root, an interpreter nobody cannot
reach) are reported, not timed.

    .venv/bin/python bench/sandbox_overhead.py --tasks 20
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from controlplane.runners.sandbox import Sandbox, SandboxError
from controlplane.services.executions import create_execution, get_execution
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.worker.worker import Worker
from controlplane.store.db import create_engine, migrate

KINDS = {
    "shell": "    type: io.kestra.plugin.scripts.shell.Commands\n    commands: ['true']\n",
    "python": "    type: io.kestra.plugin.scripts.python.Script\n    script: pass\n",
}


def flow(kind: str, tasks: int) -> str:
    body = "".join(f"  - id: t{i}\n{KINDS[kind]}" for i in range(tasks))
    return f"id: {kind}\nnamespace: bench\ntasks:\n{body}"


def run_once(engine, worker: Worker, kind: str) -> tuple[float, str]:
    execution = create_execution(engine, "bench", kind, inputs={})
    started = time.perf_counter()
    while True:
        worker.run_once()
        state = get_execution(engine, execution.id).execution.state
        if state in {"SUCCESS", "FAILED", "KILLED"}:
            return time.perf_counter() - started, state


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20, help="tasks per flow (N)")
    parser.add_argument("--runs", type=int, default=3, help="executions per mode; median kept")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="fp-sandbox-bench-"))
    engine = create_engine(f"sqlite:///{data / 'flowplane.db'}")
    migrate(engine)
    for kind in KINDS:
        put_flow(engine, "bench", kind, flow(kind, args.tasks), Provenance())

    print(f"sandbox_overhead: {args.tasks} tasks per flow, median of {args.runs} executions")
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, ", end="")
    print(f"{platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; bwrap: {shutil.which('bwrap')}")
    print(f"{'mode':8} {'kind':7} {'ms/task':>8} {'+ms vs off':>11}")
    baseline: dict[str, float] = {}
    for mode in ("off", "bwrap", "setuid"):
        sandbox = Sandbox(mode=mode, data_dir=data)
        for kind in KINDS:
            try:
                sandbox.effective_mode()
                if kind == "python":
                    sandbox.check_python(mode)
            except SandboxError as exc:
                print(f"{mode:8} {kind:7} {'n/a':>8}  {exc}")
                continue
            worker = Worker(engine=engine, data_dir=data, sandbox=sandbox)
            timings = []
            for _ in range(args.runs):
                seconds, state = run_once(engine, worker, kind)
                assert state == "SUCCESS", f"{mode}/{kind} ended {state}"
                timings.append(seconds / args.tasks * 1000)
            per_task = statistics.median(timings)
            baseline.setdefault(kind, per_task)
            extra = per_task - baseline[kind]
            print(f"{mode:8} {kind:7} {per_task:8.1f} {extra:+11.1f}")
    engine.dispose()
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
