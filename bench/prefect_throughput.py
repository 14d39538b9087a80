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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    args = parser.parse_args()
    bench(-1)  # warm-up: starts the ephemeral API server once
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
