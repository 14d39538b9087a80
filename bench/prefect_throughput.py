"""The throughput workload on Prefect 3, for a side-by-side figure.

Run with a Python that has Prefect installed (its own venv, see docs/performance.md):

    /tmp/prefect-venv/bin/python bench/prefect_throughput.py --runs 200

The flow mirrors bench/throughput.py: a task returning a value, then a task
logging it. Runs go against Prefect's default local setup (an ephemeral API on SQLite),
from --threads threads (default 1: with 8, that API answers 503 on this machine).
"""

from __future__ import annotations

import argparse
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


@flow
def bench(n: int) -> None:
    log_it(output_values(n))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    # Prefect's ephemeral SQLite API answers 503 under 8 concurrent flow runs here,
    # so the default submits them one at a time.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    bench(-1)  # warm-up: starts the ephemeral API server once
    latencies: list[float] = []

    def one(n: int) -> None:
        started = time.monotonic()
        bench(n)
        latencies.append(time.monotonic() - started)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        list(pool.map(one, range(args.runs)))
    elapsed = time.monotonic() - started
    latencies.sort()
    print(f"prefect runs={args.runs} threads={args.threads}")
    print(f"wall={elapsed:.1f}s throughput={args.runs / elapsed * 60:.0f} executions/min")
    print(
        f"latency p50={statistics.median(latencies) * 1000:.0f}ms "
        f"p95={latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f}ms"
    )


if __name__ == "__main__":
    main()
