"""push_to_plan: latency from a signed push webhook to a stored plan, through the real server.

Builds a Git repository of --flows flows, starts `flowplane server` on SQLite,
registers the repository as a source (``approval`` policy, a webhook secret)
and imports it. Then, --pushes times: commit a change to one flow, POST a
GitHub-signed push webhook and wait until the plan for that commit is ready
(the webhook answers once the plan is stored). Prints the median and worst.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from plan_scale import git, write_flows
from throughput import free_port

ADMIN = "fpt_bench-admin"
HOOK = "bench-hook-secret"


def head(repo: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def main() -> None:  # noqa: PLR0915 - a script reads top to bottom
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=1_000)
    parser.add_argument("--pushes", type=int, default=9)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fp-push-"))
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write_flows(repo, args.flows, 20, set())
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "import")

    port = free_port()
    env = {
        **os.environ,
        "FLOWPLANE_LOG_LEVEL": "WARNING",
        "FLOWPLANE_SCHEDULER": "false",
        "FLOWPLANE_POLL_SOURCES": "false",
        "FLOWPLANE_ADMIN_TOKEN": ADMIN,
    }
    flowplane = str(Path(sys.executable).parent / "flowplane")
    server = subprocess.Popen(
        [flowplane, "server", "--port", str(port), "--data-dir", str(root / "data")],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    latencies: list[float] = []
    try:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=600, headers=headers
        ) as client:
            for _ in range(300):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            source = {"url": f"file://{repo}", "webhook_secret": HOOK}
            client.put("/api/v1/sources/bench", json=source).raise_for_status()
            started = time.perf_counter()
            imported = client.post("/api/v1/sources/bench/sync").json()
            assert imported["status"] == "applied", imported["status"]
            print(f"import of {args.flows} flows applied in {time.perf_counter() - started:.2f} s")
            source["approval"] = "approval"
            client.put("/api/v1/sources/bench", json=source).raise_for_status()

            for push in range(args.pushes):
                write_flows(repo, args.flows, 20, {push * 7 % args.flows})
                git(repo, "commit", "-qam", f"push {push}")
                sha = head(repo)
                body = json.dumps({"ref": "refs/heads/main", "after": sha}).encode()
                signature = hmac.new(HOOK.encode(), body, hashlib.sha256).hexdigest()
                push_headers = {
                    "X-Hub-Signature-256": f"sha256={signature}",
                    "X-GitHub-Delivery": f"bench-{push}",
                    "Content-Type": "application/json",
                }
                started = time.perf_counter()
                response = client.post(
                    "/api/v1/sources/bench/webhook", content=body, headers=push_headers
                )
                outcome = response.json()
                latencies.append(time.perf_counter() - started)
                plan = outcome["plan"]
                assert outcome["status"] == "planned", outcome
                assert (plan["target_commit"], plan["status"]) == (sha, "pending"), plan
                assert plan["summary"]["change"] == 1, plan["summary"]
    finally:
        server.terminate()
        server.wait(30)
    print(
        f"push → plan ready, {args.flows} flows, {args.pushes} pushes: "
        f"median {statistics.median(latencies) * 1000:.0f} ms, "
        f"worst {max(latencies) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
