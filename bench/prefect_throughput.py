"""The throughput workload on Prefect 3, for a side-by-side figure.

Run with a Python that has Prefect installed, in its own venv (bench/side_by_side.py
creates it and runs this script in it):

    /tmp/prefect-venv/bin/python bench/prefect_throughput.py --runs 200

The flow mirrors bench/throughput.py: a task returning a value, a task logging it,
and a task returning a string made from it. Runs go against Prefect's default local
setup (an ephemeral API on SQLite). All runs are submitted at once to a pool of
--threads threads; latency runs from submission to the end of the flow run, so
queueing counts, as it does for Flowplane's webhooks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from prefect import flow, get_run_logger, task


@task
def output_values(n: int) -> dict[str, int]:
    return {"answer": n}


@task
def log_it(values: dict[str, int]) -> None:
    get_run_logger().info("got %s", values["answer"])


@task
def done(values: dict[str, int]) -> str:
    return f"{values['answer']} done"


@flow
def bench(n: int) -> str:
    values = output_values(n)
    log_it(values)
    return done(values)


def open_loop(rate: float, seconds: float, threads: int) -> dict[str, object]:
    """Runs arriving every ``1 / rate`` s (bench/open_loop.py); each run's (start, end)."""
    total = int(rate * seconds)
    spans: list[tuple[float, float]] = []
    failed = late = 0

    def one(n: int, due: float) -> None:
        nonlocal failed, late
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.05:
            late += 1  # no thread was free when the run was due: it queued here
        try:
            bench(n)
        except Exception:  # noqa: BLE001 - a failed run is counted, not fatal
            failed += 1
        # Latency counts from when the run was due, as Flowplane's counts from its creation.
        spans.append((time.time() - (time.monotonic() - due), time.time()))

    start = time.monotonic() + 0.5
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for n in range(total):
            pool.submit(one, n, start + n / rate)
    return {"runs": total, "failed": failed, "late": late, "threads": threads, "spans": spans}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rate", type=float, help="open loop: runs per second (with --seconds)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    args = parser.parse_args()
    bench(-1)  # warm-up: starts the ephemeral API server once
    if args.rate:
        print(json.dumps(open_loop(args.rate, args.seconds, max(args.threads, 16))))
        return
    latencies: list[float] = []
    failed = 0

    def one(n: int) -> None:
        nonlocal failed
        try:
            bench(n)
        except Exception:  # noqa: BLE001 - a failed run is counted, not fatal
            failed += 1
        latencies.append(time.monotonic() - started)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        list(pool.map(one, range(args.runs)))
    elapsed = time.monotonic() - started
    latencies.sort()
    result = {
        "runs": args.runs,
        "failed": failed,
        "wall": elapsed,
        "per_minute": args.runs / elapsed * 60,
        "p50": statistics.median(latencies),
        "p95": latencies[max(int(len(latencies) * 0.95) - 1, 0)],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"prefect runs={args.runs} threads={args.threads} failed={failed}")
    print(f"wall={elapsed:.1f}s throughput={result['per_minute']:.0f} executions/min")
    print(f"latency p50={result['p50'] * 1000:.0f}ms p95={result['p95'] * 1000:.0f}ms")


if __name__ == "__main__":
    main()
