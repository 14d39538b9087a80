"""sequential10: one flow of 10 sequential shell tasks, end to end, on SQLite with 1 worker.

Runs the flow --runs times one after another through the API (with ?wait=true)
and prints the median and worst wall time per execution, and the median
engine time (created → ended) recorded by the server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from throughput import free_port

FLOW = "id: seq10\nnamespace: bench\ntasks:\n" + "".join(
    f"  - id: step{i}\n    type: shell.Commands\n    commands: ['echo step {i}']\n"
    for i in range(10)
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    port = free_port()
    data = tempfile.mkdtemp(prefix="fp-seq10-")
    env = {**os.environ, "FLOWPLANE_LOG_LEVEL": "WARNING", "FLOWPLANE_SCHEDULER": "false"}
    flowplane = str(Path(sys.executable).parent / "flowplane")
    server = subprocess.Popen(
        [flowplane, "server", "--port", str(port), "--data-dir", data],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    walls: list[float] = []
    engine: list[float] = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(200):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            client.put("/api/v1/flows/bench/seq10", json={"content": FLOW}).raise_for_status()
            for _ in range(args.runs):
                started = time.monotonic()
                body = client.post(
                    "/api/v1/executions/bench/seq10", params={"wait": True}, json={}
                ).json()
                walls.append(time.monotonic() - started)
                assert body["state"] == "SUCCESS", body["state"]
                engine.append(
                    (
                        datetime.fromisoformat(body["ended_at"])
                        - datetime.fromisoformat(body["created_at"])
                    ).total_seconds()
                )
    finally:
        server.terminate()
        server.wait(30)
    print(f"sequential10 runs={args.runs} (SQLite, 1 worker)")
    print(f"wall per execution: median={statistics.median(walls):.2f}s max={max(walls):.2f}s")
    print(f"engine time (created→ended): median={statistics.median(engine):.2f}s")


if __name__ == "__main__":
    main()
