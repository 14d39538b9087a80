"""API read path: `flowplane server` against a bare FastAPI app, under wrk, in one run.

Starts the real server (uvicorn, SQLite in a temporary directory, an admin
token, no embedded workers) and a bare FastAPI app that answers the same JSON
as constants, served by uvicorn with the same settings. Each is loaded with
wrk (1 thread, 64 connections, 60 s by default) on

    GET /api/v1/flows/{ns}/{id}   (bare: /flow, the same body as a constant)
    GET /healthz                  (bare: /healthz, {"status": "ok"})

and the script prints req/s, p50 and p99 for each, and the ratio to bare.

Why 60 s: wrk opens its 64 connections at the start of each run, and under
full load the server accepts about one new connection per turn of its event
loop, so the first request of the last connections waits up to a second
(seen in a packet capture: every request over 300 ms was the first of its
connection, docs/performance.md). In a 10 s run those 64 first requests are
0.4 % of the total and set the p99; over 60 s the p99 is the steady state's.

    .venv/bin/python bench/api_read.py
    .venv/bin/python bench/api_read.py --api-workers 2 --seconds 10
    .venv/bin/python bench/api_read.py --connections 16

Needs wrk (`apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

FLOW = """\
id: hello
namespace: bench.read
description: A flow served by the read-path benchmark
inputs:
  - id: who
    type: STRING
    defaults: world
tasks:
  - id: greet
    type: io.kestra.plugin.core.log.Log
    message: "hello {{ inputs.who }}"
  - id: done
    type: io.kestra.plugin.core.output.OutputValues
    values:
      answer: 42
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    """Return once ``url`` answers 200; exit when the process died."""
    for _ in range(600):
        if process.poll() is not None:
            sys.exit(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} did not answer")


def wrk(url: str, seconds: int, headers: dict[str, str], connections: int) -> dict[str, float]:
    """Run wrk (1 thread, ``connections`` connections) and parse req/s, p50 and p99 (ms)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], check=True, capture_output=True, text=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\b", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\b", output, re.MULTILINE)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if not (rate and p50 and p99):
        sys.exit(f"could not parse wrk output:\n{output}")
    return {
        "rps": float(rate.group(1)),
        "p50": float(p50.group(1)) * _UNITS[p50.group(2)],
        "p99": float(p99.group(1)) * _UNITS[p99.group(2)],
        "non2xx": float(errors.group(1)) if errors else 0.0,
    }


def serve_bare(port: int, flow_body: str) -> None:
    """The bare app: FastAPI answering constants, served by uvicorn like the server."""
    import uvicorn  # noqa: PLC0415 - only this child process needs it
    from fastapi import FastAPI  # noqa: PLC0415

    app = FastAPI()
    flow = json.loads(flow_body)
    health = {"status": "ok"}

    @app.get("/flow")
    def bare_flow() -> dict[str, object]:
        return flow

    @app.get("/healthz")
    def bare_health() -> dict[str, object]:
        return health

    # uvicorn's defaults, access log included, as `flowplane server` runs with its own.
    uvicorn.run(app, host="127.0.0.1", port=port)


def start_server(data: Path, token: str, api_workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """`flowplane server` on a free port, SQLite in ``data``, no embedded workers."""
    port = free_port()
    env = {
        **os.environ,
        "FLOWPLANE_SCHEDULER": "false",
        "FLOWPLANE_POLL_SOURCES": "false",
        "FLOWPLANE_ADMIN_TOKEN": token,
    }
    command = [
        str(Path(sys.executable).parent / "flowplane"),
        "server",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        "--workers",
        "0",
    ]
    if api_workers > 1:
        command += ["--api-workers", str(api_workers)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    wait_up(f"{base}/healthz", process)
    return process, base


def machine() -> str:
    """nproc, CPU model, Python and the date, for the record."""
    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = found.group(1).strip() if found else model
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{now}; nproc={os.cpu_count()}; cpu={model}; python={platform.python_version()}"


def main() -> None:
    """Measure both apps and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--serve-bare", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--body", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare, args.body)
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    token = "fpt_" + secrets.token_urlsafe(24)
    auth = {"Authorization": f"Bearer {token}"}
    data = Path(tempfile.mkdtemp(prefix="fp-api-read-"))
    server, base = start_server(data, token, args.api_workers)
    bare = None
    try:
        flow_url = f"{base}/api/v1/flows/bench.read/hello"
        httpx.put(flow_url, json={"content": FLOW}, headers=auth, timeout=30).raise_for_status()
        body = httpx.get(flow_url, headers=auth, timeout=30).text
        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, __file__, "--serve-bare", str(bare_port), "--body", body],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bare_base = f"http://127.0.0.1:{bare_port}"
        wait_up(f"{bare_base}/healthz", bare)

        def load(url: str, headers: dict[str, str]) -> dict[str, float]:
            return wrk(url, args.seconds, headers, args.connections)

        rows = [
            ("bare FastAPI /flow (constant)", load(f"{bare_base}/flow", {})),
            ("flowplane GET /api/v1/flows/{ns}/{id}", load(flow_url, auth)),
            ("bare FastAPI /healthz", load(f"{bare_base}/healthz", {})),
            ("flowplane GET /healthz", load(f"{base}/healthz", {})),
        ]
    finally:
        for process in (server, bare):
            if process is not None:
                process.terminate()
                process.wait(30)
        shutil.rmtree(data, ignore_errors=True)

    print(machine())
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds}s; flowplane api-workers={args.api_workers}"
    )
    print(f"{'target':42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8}")
    baselines = {"flows": rows[0][1]["rps"], "healthz": rows[2][1]["rps"]}
    for name, result in rows:
        base_rps = baselines["healthz" if "healthz" in name else "flows"]
        ratio = f"{result['rps'] / base_rps:.0%}"
        note = f"  ({result['non2xx']:.0f} non-2xx)" if result["non2xx"] else ""
        print(
            f"{name:42} {result['rps']:9.0f} {result['p50']:8.1f} {result['p99']:8.1f} "
            f"{ratio:>8}{note}"
        )


if __name__ == "__main__":
    main()
