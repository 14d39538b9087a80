"""Flowplane and Prefect on the same workload, in one run, with the ratio.

The workload is N short runs of a 3-task flow (a value, a log line, a returned
string), all submitted at once from 8 threads: webhooks for Flowplane
(bench/throughput.py: `flowplane server` on SQLite, 1 embedded worker), flow calls
for Prefect (bench/prefect_throughput.py: Prefect's ephemeral API on SQLite).
Latency runs from submission to the end of the run, queueing included.

Prefect's dependencies clash with ours, so it runs in its own venv, created on
first use in /tmp/prefect-venv (Prefect 3.8.8, with FastAPI 0.139.x: newer FastAPI
breaks that Prefect's server).

    .venv/bin/python bench/side_by_side.py            # 100 runs each, about 3 minutes
    .venv/bin/python bench/side_by_side.py --runs 200
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PREFECT_VENV = Path("/tmp/prefect-venv")  # noqa: S108 - a throwaway venv, by design
PREFECT_REQUIREMENTS = ["prefect==3.8.8", "fastapi>=0.139,<0.140"]


def load_throughput():
    """bench/throughput.py as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("throughput", BENCH / "throughput.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prefect_python() -> Path:
    """The venv's Python, with Prefect installed in it first if it is not yet."""
    python = PREFECT_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {PREFECT_VENV} ...", flush=True)
        subprocess.run(["python3", "-m", "venv", str(PREFECT_VENV)], check=True)
    installed = subprocess.run(
        [str(python), "-c", "import prefect, fastapi; print(prefect.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.stdout.strip() != "3.8.8":
        print(f"installing {' '.join(PREFECT_REQUIREMENTS)} into {PREFECT_VENV} ...", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *PREFECT_REQUIREMENTS],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return python


def run_prefect(runs: int, threads: int) -> dict[str, float]:
    """The Prefect workload in its venv, on a fresh Prefect home (so runs do not pile up)."""
    python = prefect_python()
    with tempfile.TemporaryDirectory(prefix="prefect-home-") as home:
        env = {
            **os.environ,
            "PREFECT_HOME": home,
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # The first start migrates a new SQLite database; on 2 cores that takes a while.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        }
        done = subprocess.run(
            [
                str(python),
                str(BENCH / "prefect_throughput.py"),
                "--runs",
                str(runs),
                "--threads",
                str(threads),
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"the Prefect workload failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8, help="concurrent submitters, both")
    args = parser.parse_args()

    throughput = load_throughput()
    print(f"flowplane: {args.runs} runs ...", flush=True)
    flowplane = throughput.measure(args.runs, workers=1, threads=args.threads)
    print(f"prefect: {args.runs} runs ...", flush=True)
    prefect = run_prefect(args.runs, args.threads)

    print()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, nproc={os.cpu_count()}, runs={args.runs}, "
        f"{args.threads} concurrent submitters, 3-task flow, SQLite on both sides"
    )
    rows = [
        ("Flowplane (1 embedded worker)", flowplane),
        ("Prefect 3.8.8 (ephemeral API)", prefect),
    ]
    print(f"{'system':<31}{'runs/min':>10}{'p50':>10}{'p95':>10}{'failed':>8}")
    for name, figures in rows:
        print(
            f"{name:<31}{figures['per_minute']:>10.0f}{figures['p50']:>9.2f}s"
            f"{figures['p95']:>9.2f}s{int(figures['failed']):>8}"
        )
    print(
        f"{'ratio Flowplane / Prefect':<31}{flowplane['per_minute'] / prefect['per_minute']:>9.1f}x"
        f"{prefect['p50'] / flowplane['p50']:>9.1f}x{prefect['p95'] / flowplane['p95']:>9.1f}x"
        "   (latency: Prefect / Flowplane)"
    )


if __name__ == "__main__":
    main()
