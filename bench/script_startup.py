"""script_startup: what starting a script task costs, measured Windmill's way.

Two flows run on a temporary SQLite database with a real in-process Worker and
the worker's sandbox (``--sandbox``, default ``auto``, so bwrap where installed):

- ``fibo10``: 10 sequential ``python.Script`` tasks, each computing fibo(33).
  The same 10 computations also run in one plain ``python3`` process in the
  same invocation; overhead per task = (engine time - pure compute) / 10.
- ``pass10``: 10 sequential ``python.Script`` tasks that run ``pass``: the
  start-up cost alone, without the compute that makes ``fibo10`` noisy on a
  shared machine. Printed beside 10 plain ``python3 -c pass`` starts. Run
  twice: as a running worker runs it (a sandbox started ahead of each task,
  ``runners.prestart``), and with each task starting its own sandbox.
- ``light40``: 40 lightweight in-process tasks (``debug.Return``) in one run.

``--python`` runs the script tasks (and the plain runs) with another
interpreter: the base install a venv was made from starts without the venv's
``.pth`` files (an editable install's finder costs ~25 ms per start).

Engine time is the execution's ``created_at`` → ``ended_at`` as stored. Each
flow runs ``--runs`` times; the median is printed, with every run's figure.

    .venv/bin/python bench/script_startup.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from controlplane.logging import configure_logging
from controlplane.runners.sandbox import Sandbox
from controlplane.services.executions import create_execution, get_execution
from controlplane.services.flows import Provenance, put_flow
from controlplane.services.worker.worker import Worker
from controlplane.store.db import create_engine, migrate

FIBO = "def fibo(n):\n    return n if n < 2 else fibo(n - 1) + fibo(n - 2)\n\nprint(fibo(33))\n"
FIBO_TASKS = 10
LIGHT_TASKS = 40


def fibo_flow() -> str:
    """10 sequential python.Script tasks, each computing fibo(33)."""
    script = "".join(f"      {line}\n" for line in FIBO.splitlines())
    task = f"    type: io.kestra.plugin.scripts.python.Script\n    script: |\n{script}"
    body = "".join(f"  - id: fibo{i}\n{task}" for i in range(FIBO_TASKS))
    return f"id: fibo10\nnamespace: bench\ntasks:\n{body}"


def pass_flow() -> str:
    """10 sequential python.Script tasks that do nothing."""
    task = "    type: io.kestra.plugin.scripts.python.Script\n    script: pass\n"
    body = "".join(f"  - id: p{i}\n{task}" for i in range(FIBO_TASKS))
    return f"id: pass10\nnamespace: bench\ntasks:\n{body}"


def light_flow() -> str:
    """40 in-process Return tasks."""
    task = "    type: io.kestra.plugin.core.debug.Return\n    format: 'step {{ task.id }}'\n"
    body = "".join(f"  - id: r{i}\n{task}" for i in range(LIGHT_TASKS))
    return f"id: light40\nnamespace: bench\ntasks:\n{body}"


def pure_compute(python: str) -> float:
    """Seconds for FIBO_TASKS fibo(33) calls in one plain interpreter (start-up excluded)."""
    code = (
        "import time\n"
        + FIBO.replace("print(fibo(33))\n", "")
        + f"t = time.perf_counter()\nfor _ in range({FIBO_TASKS}): fibo(33)\n"
        "print(time.perf_counter() - t)\n"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def bare_starts(python: str) -> float:
    """Seconds for FIBO_TASKS plain ``python3 -c pass`` processes, one after another."""
    started = time.perf_counter()
    for _ in range(FIBO_TASKS):
        subprocess.run([python, "-c", "pass"], check=True)
    return time.perf_counter() - started


def run_once(engine, worker: Worker, flow_id: str) -> tuple[float, float]:
    """(engine seconds created → ended, wall seconds) of one execution, which must succeed."""
    execution = create_execution(engine, "bench", flow_id, inputs={})
    started = time.perf_counter()
    while True:
        worker.run_once()
        row = get_execution(engine, execution.id).execution
        if row.state in {"SUCCESS", "FAILED", "KILLED"}:
            break
    wall = time.perf_counter() - started
    assert row.state == "SUCCESS", f"{flow_id} ended {row.state}"
    assert row.ended_at is not None
    return (row.ended_at - row.created_at).total_seconds(), wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="executions per flow; median kept")
    parser.add_argument("--sandbox", default="auto", help="FLOWPLANE_SANDBOX mode")
    parser.add_argument(
        "--python",
        type=Path,
        default=Path(sys.executable),
        help="the interpreter script tasks run (default: this one, the worker's)",
    )
    args = parser.parse_args()
    configure_logging("WARNING")
    data = Path(tempfile.mkdtemp(prefix="fp-startup-bench-"))
    engine = create_engine(f"sqlite:///{data / 'flowplane.db'}")
    migrate(engine)
    put_flow(engine, "bench", "fibo10", fibo_flow(), Provenance())
    put_flow(engine, "bench", "pass10", pass_flow(), Provenance())
    put_flow(engine, "bench", "light40", light_flow(), Provenance())
    sandbox = Sandbox(mode=args.sandbox, data_dir=data, python=args.python)
    mode = sandbox.effective_mode()
    worker = Worker(engine=engine, data_dir=data, sandbox=sandbox)

    print(f"script_startup: median of {args.runs} executions per flow, sandbox {mode}")
    print(f"script interpreter: {args.python}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, ", end="")
    print(f"{platform.system()} {platform.release()}, Python {platform.python_version()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load: {os.getloadavg()[0]:.2f}")

    run_once(engine, worker, "light40")  # warm the worker (imports, first plan)
    python = str(sandbox.python)
    computes, fibos, passes, colds, bares, lights = [], [], [], [], [], []
    for _ in range(args.runs):
        # The worker as a running one is: a sandbox started ahead (runners.prestart).
        with worker.prestarting():
            # Compute is timed on both sides of the flow: the machine's load drifts.
            before = pure_compute(python)
            fibos.append(run_once(engine, worker, "fibo10")[0])
            computes.append((before + pure_compute(python)) / 2)
            passes.append(run_once(engine, worker, "pass10")[0])
        # Each task starting its own sandbox (FLOWPLANE_SANDBOX_PRESTART=false).
        colds.append(run_once(engine, worker, "pass10")[0])
        bares.append(bare_starts(python))
        lights.append(run_once(engine, worker, "light40")[0])
    overheads = [(f - c) / FIBO_TASKS * 1000 for f, c in zip(fibos, computes, strict=True)]

    def figures(values: list[float], unit: str = "s", digits: int = 2) -> str:
        shown = ", ".join(f"{v:.{digits}f}" for v in values)
        return f"{statistics.median(values):.{digits}f} {unit}  (runs: {shown})"

    print(f"pure compute, {FIBO_TASKS}x fibo(33) in one python3: {figures(computes)}")
    print(f"fibo10 engine time: {figures(fibos)}")
    print(f"overhead per python.Script task, (fibo10 - compute)/10: {figures(overheads, 'ms', 0)}")
    pass_ms = [p / FIBO_TASKS * 1000 for p in passes]
    bare_ms = [b / FIBO_TASKS * 1000 for b in bares]
    cold_ms = [c / FIBO_TASKS * 1000 for c in colds]
    print(f"pass10 engine time per python.Script task: {figures(pass_ms, 'ms', 0)}")
    print(f"pass10 per task, no sandbox started ahead: {figures(cold_ms, 'ms', 0)}")
    print(f"plain `python3 -c pass` start, for comparison: {figures(bare_ms, 'ms', 0)}")
    print(f"light40 ({LIGHT_TASKS} Return tasks) engine time: {figures(lights, 's', 3)}")
    engine.dispose()
    shutil.rmtree(worker.sandbox.work_root_dir(), ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
