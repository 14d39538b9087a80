"""Sustained open-loop load: runs arrive at a fixed rate, whatever the engine does.

A closed loop (bench/throughput.py) submits a burst and waits; here arrivals are
scheduled at ``t0 + i / rate`` from a pool of senders, so a slow engine builds a
backlog instead of slowing the arrivals down. It prints latency percentiles from
each run's creation to its end, and the backlog (runs created, not yet ended)
every few seconds: a backlog that keeps growing means the engine does not keep up.

Flowplane runs `flowplane server` as bench/throughput.py does (SQLite with 1
embedded worker, or PostgreSQL with --workers N). With --prefect, the same
3-task workload runs on Prefect 3 in its own venv (bench/prefect_throughput.py
--rate), at the same rate, in the same invocation.

    .venv/bin/python bench/open_loop.py --rate 50 --seconds 60
    .venv/bin/python bench/open_loop.py --rate 50 --seconds 60 --workers 2 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/flowplane_bench
    .venv/bin/python bench/open_loop.py --rate 50 --seconds 60 --prefect --prefect-seconds 10
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def load(name: str) -> Any:
    """A sibling bench script as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


throughput = load("throughput")


def backlog_series(spans: list[tuple[float, float]], step: float) -> list[tuple[float, int]]:
    """(second, runs created and not yet ended) every ``step`` seconds from the first arrival."""
    start = min(created for created, _ in spans)
    last = max(ended for _, ended in spans)
    series = []
    moment = start
    while moment <= last:
        series.append((moment - start, sum(1 for c, e in spans if c <= moment < e)))
        moment += step
    return series


def summarize(name: str, latencies: list[float], arrivals: int, late: int, failed: int) -> None:
    latencies = sorted(latencies)
    pct = throughput.percentile
    print(
        f"{name}: runs={arrivals} failed={failed} late_sends={late} "
        f"p50={statistics.median(latencies) * 1000:.0f}ms p95={pct(latencies, 0.95) * 1000:.0f}ms "
        f"p99={pct(latencies, 0.99) * 1000:.0f}ms max={latencies[-1] * 1000:.0f}ms"
    )


def print_backlog(spans: list[tuple[float, float]], step: float) -> None:
    series = backlog_series(spans, step)
    print("  backlog: " + "  ".join(f"{int(t)}s:{n}" for t, n in series))


def flowplane(
    rate: float, seconds: float, workers: int, database_url: str | None, worker_processes: int
) -> None:
    total = int(rate * seconds)
    ids: list[str | None] = [None] * total
    late = 0
    with throughput.serve(workers, database_url, worker_processes) as client:

        def send(n: int, due: float) -> None:
            nonlocal late
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.05:
                late += 1  # the sender pool fell behind: the rate was not met
            ids[n] = throughput.fire(client, n)

        start = time.monotonic() + 0.5
        with ThreadPoolExecutor(max_workers=32) as pool:
            for n in range(total):
                pool.submit(send, n, start + n / rate)
        ended: dict[str, dict[str, Any]] = {}
        for execution_id in ids:
            assert execution_id is not None
            while True:
                item = client.get(f"/api/v1/executions/{execution_id}").json()
                if item["state"] in {"SUCCESS", "FAILED", "WARNING", "KILLED"}:
                    ended[execution_id] = item
                    break
                time.sleep(0.1)
    spans = [
        (
            datetime.fromisoformat(str(item["created_at"])).timestamp(),
            datetime.fromisoformat(str(item["ended_at"])).timestamp(),
        )
        for item in ended.values()
    ]
    database = "postgresql" if database_url and "postgres" in database_url else "sqlite"
    failed = sum(1 for item in ended.values() if item["state"] != "SUCCESS")
    summarize(
        f"flowplane {database} workers={workers} worker_processes={worker_processes} "
        f"rate={rate}/s for {seconds:.0f}s",
        [e - c for c, e in spans],
        total,
        late,
        failed,
    )
    print_backlog(spans, 5.0)


def prefect(rate: float, seconds: float) -> None:
    side_by_side = load("side_by_side")
    python = side_by_side.prefect_python()
    done = subprocess.run(
        [
            str(python),
            str(BENCH / "prefect_throughput.py"),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        # A peer that falls over under the load is a result too: say so, with its reason.
        tail = "\n    ".join(done.stderr.strip().splitlines()[-6:])
        print(f"prefect 3.8.8 rate={rate}/s for {seconds:.0f}s: FAILED (exit {done.returncode})")
        print(f"    {tail}")
        return
    result = json.loads(done.stdout.strip().splitlines()[-1])
    spans = [tuple(span) for span in result["spans"]]
    summarize(
        f"prefect 3.8.8 threads={result['threads']} rate={rate}/s for {seconds:.0f}s",
        [e - c for c, e in spans],
        result["runs"],
        result["late"],
        result["failed"],
    )
    print_backlog(spans, 5.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50.0, help="runs per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=0,
        help="workers as processes of their own (`flowplane server --worker-processes`)",
    )
    parser.add_argument("--prefect", action="store_true", help="also run Prefect, same rate")
    parser.add_argument(
        "--prefect-seconds",
        type=float,
        default=10.0,
        help="how long Prefect's arrivals last (it drains about 100 runs/min here, so 60 s "
        "of arrivals at 50/s would take half an hour to finish)",
    )
    args = parser.parse_args()
    print(f"open loop, {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {os.cpu_count()} cores")
    flowplane(args.rate, args.seconds, args.workers, args.database_url, args.worker_processes)
    if args.prefect:
        prefect(args.rate, args.prefect_seconds)


if __name__ == "__main__":
    main()
