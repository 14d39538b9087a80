"""Throughput: a webhook-triggered 2-task flow (OutputValues, then Log), end to end.

Starts `flowplane server` as a subprocess (SQLite with 1 embedded worker, or
PostgreSQL with 2), fires N webhooks from a thread pool, waits for every run to
end, and prints executions per minute plus p50/p95 latency from trigger to end.

    .venv/bin/python bench/throughput.py --runs 200
    .venv/bin/python bench/throughput.py --runs 200 --workers 2 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/flowplane_bench
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="fp-bench-"))
    env = {**os.environ, "FLOWPLANE_LOG_LEVEL": "WARNING", "FLOWPLANE_SCHEDULER": "false"}
    if args.database_url:
        env["FLOWPLANE_DATABASE_URL"] = args.database_url
        if "postgresql" in args.database_url:
            reset_postgres(args.database_url.replace("+psycopg", ""))
    command = [
        str(Path(sys.executable).parent / "flowplane"),
        "server",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--workers",
        str(args.workers),
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(200):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            client.put("/api/v1/flows/bench/bench", json={"content": FLOW}).raise_for_status()

            def fire(n: int) -> str:
                response = client.post("/api/v1/executions/webhook/bench/bench/go", json={"n": n})
                response.raise_for_status()
                return str(response.json()["id"])

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=8) as pool:
                ids = list(pool.map(fire, range(args.runs)))
            pending = set(ids)
            ended: dict[str, dict[str, object]] = {}
            while pending:
                listed = client.get(
                    "/api/v1/executions", params={"namespace": "bench", "limit": 500}
                ).json()
                for item in listed:
                    if item["id"] in pending and item["state"] in {"SUCCESS", "FAILED"}:
                        pending.discard(item["id"])
                        ended[item["id"]] = item
                if time.monotonic() - started > 600:
                    sys.exit(f"timed out with {len(pending)} runs pending")
                time.sleep(0.2)
            elapsed = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(30)

    latencies = sorted(
        (
            datetime.fromisoformat(str(item["ended_at"]))
            - datetime.fromisoformat(str(item["created_at"]))
        ).total_seconds()
        for item in ended.values()
    )
    failed = sum(1 for item in ended.values() if item["state"] != "SUCCESS")
    database = "postgresql" if args.database_url and "postgres" in args.database_url else "sqlite"
    print(f"database={database} workers={args.workers} runs={args.runs} failed={failed}")
    print(f"wall={elapsed:.1f}s throughput={args.runs / elapsed * 60:.0f} executions/min")
    print(
        f"latency p50={statistics.median(latencies) * 1000:.0f}ms "
        f"p95={latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f}ms"
    )


if __name__ == "__main__":
    main()
