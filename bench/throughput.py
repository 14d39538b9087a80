"""Throughput: a webhook-triggered 3-task flow (OutputValues, Log, Return), end to end.

Starts `flowplane server` as a subprocess (SQLite with 1 embedded worker, or
PostgreSQL with 2), fires N webhooks from a thread pool, waits for every run to
end, and prints executions per minute plus p50/p95 latency from trigger to end.
bench/prefect_throughput.py runs the same three tasks on Prefect, and
bench/side_by_side.py runs both and prints the ratio.

    .venv/bin/python bench/throughput.py --runs 200
    .venv/bin/python bench/throughput.py --runs 200 --workers 2 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/flowplane_bench
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

FLOW = """\
id: bench
namespace: bench
tasks:
  - id: values
    type: OutputValues
    values:
      answer: "{{ trigger.body.n }}"
  - id: log
    type: Log
    message: "got {{ outputs.values['values'].answer }}"
  - id: done
    type: Return
    format: "{{ outputs.values['values'].answer }} done"
triggers:
  - id: hook
    type: Webhook
    key: go
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reset_postgres(url: str) -> None:
    """Create the bench database if needed and empty it, so runs do not pile up."""
    server, _, name = url.rpartition("/")
    exists = subprocess.run(
        [
            "psql",
            f"{server}/postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(
            ["psql", f"{server}/postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True
        )
    subprocess.run(
        ["psql", url, "-qc", "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"], check=True
    )


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of the sorted ``values`` lie (nearest rank)."""
    return values[max(int(len(values) * fraction) - 1, 0)]


@contextmanager
def serve(
    workers: int = 1, database_url: str | None = None, worker_processes: int = 0
) -> Iterator[httpx.Client]:
    """A fresh `flowplane server` with the bench flow stored; an admin client to it.

    ``workers`` run embedded in the server's process; ``worker_processes`` are
    processes of their own the server starts (``--worker-processes``: their own
    interpreter, so they do not share the server's GIL).
    """
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="fp-bench-"))
    token = secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "FLOWPLANE_LOG_LEVEL": "WARNING",
        "FLOWPLANE_SCHEDULER": "false",
        "FLOWPLANE_ADMIN_TOKEN": token,
    }
    if database_url:
        env["FLOWPLANE_DATABASE_URL"] = database_url
        if "postgresql" in database_url:
            reset_postgres(database_url.replace("+psycopg", ""))
    command = [
        str(Path(sys.executable).parent / "flowplane"),
        "server",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--workers",
        str(workers),
        "--worker-processes",
        str(worker_processes),
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, timeout=30, headers=headers, limits=limits) as client:
            deadline = time.monotonic() + 120  # a loaded machine starts slowly
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            client.put("/api/v1/flows/bench/bench", json={"content": FLOW}).raise_for_status()
            # One run to its end before the clock starts: a worker process takes
            # seconds to start on a busy machine, and that is not throughput.
            wait_all(client, [fire(client, -1)], limit=120)
            yield client
    finally:
        server.terminate()  # it stops its worker processes
        server.wait(60)


def fire(client: httpx.Client, n: int) -> str:
    """Trigger one run through the webhook; its execution id."""
    response = client.post("/api/v1/executions/webhook/bench/bench/go", json={"n": n})
    response.raise_for_status()
    return str(response.json()["id"])


def wait_all(client: httpx.Client, ids: list[str], limit: float = 600) -> dict[str, dict[str, Any]]:
    """Poll the executions list until every run in ``ids`` ended; the ended items by id."""
    started = time.monotonic()
    pending = set(ids)
    ended: dict[str, dict[str, Any]] = {}
    while pending:
        listed = client.get(
            "/api/v1/executions", params={"namespace": "bench", "limit": 500}
        ).json()
        for item in listed:
            if item["id"] in pending and item["state"] in {"SUCCESS", "FAILED"}:
                pending.discard(item["id"])
                ended[item["id"]] = item
        if time.monotonic() - started > limit:
            sys.exit(f"timed out with {len(pending)} runs pending")
        if pending:
            time.sleep(0.2)
    return ended


def engine_seconds(item: dict[str, Any]) -> float:
    """From the run's creation (the webhook's arrival) to its end, queueing included."""
    ended = datetime.fromisoformat(str(item["ended_at"]))
    return (ended - datetime.fromisoformat(str(item["created_at"]))).total_seconds()


def measure(
    runs: int, workers: int = 1, database_url: str | None = None, threads: int = 8
) -> dict[str, float]:
    """Run the workload on a fresh server; wall time, throughput and latencies in seconds."""
    with serve(workers, database_url) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            ids = list(pool.map(lambda n: fire(client, n), range(runs)))
        ended = wait_all(client, ids)
        elapsed = time.monotonic() - started

    latencies = sorted(engine_seconds(item) for item in ended.values())
    return {
        "runs": runs,
        "failed": sum(1 for item in ended.values() if item["state"] != "SUCCESS"),
        "wall": elapsed,
        "per_minute": runs / elapsed * 60,
        "p50": statistics.median(latencies),
        "p95": percentile(latencies, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    result = measure(args.runs, args.workers, args.database_url)
    database = "postgresql" if args.database_url and "postgres" in args.database_url else "sqlite"
    print(f"database={database} workers={args.workers} runs={args.runs} failed={result['failed']}")
    print(f"wall={result['wall']:.1f}s throughput={result['per_minute']:.0f} executions/min")
    print(f"latency p50={result['p50'] * 1000:.0f}ms p95={result['p95'] * 1000:.0f}ms")


if __name__ == "__main__":
    main()
