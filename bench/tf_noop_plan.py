"""No-op ``terraform plan`` time for 100 and 300 flows against a live server.

    .venv/bin/python bench/tf_noop_plan.py [--flows 100 300] [--repeat 5]

For each size: a live server on SQLite (the test harness,
``tests/terraform_provider/tf_harness.py``), one apply that creates a
namespace and the flows, then ``terraform plan -detailed-exitcode`` with
nothing to change, repeated; the median and the range are printed with the
machine and the date. Terraform starts the provider itself on every command
(dev_overrides), as it does for users: no reattach.

To measure another commit, run this file from this checkout with
``PYTHONPATH`` pointing at a worktree of that commit: the server's package
and the provider Terraform starts are then that commit's (the harness stays
this checkout's).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import controlplane
from controlplane.terraform_provider.overrides import write_cli_config

# The package measured is the one imported (PYTHONPATH decides); the harness is
# this checkout's, which drives older packages too (same create_app and Settings).
CHECKOUT = Path(controlplane.__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "terraform_provider"))
from tf_harness import Workspace, running_server  # noqa: E402

HCL = """
resource "flowplane_namespace" "bench" {
  name = "bench.noop"
}

resource "flowplane_flow" "flow" {
  for_each  = fileset(path.module, "flows/*.yaml")
  namespace = flowplane_namespace.bench.name
  content   = file("${path.module}/${each.value}")
}
"""
FLOW = """id: flow-{n:03d}
namespace: bench.noop
description: Benchmark flow {n}
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "flow {n} says hello"
"""


def measure(flows: int, repeat: int, base: Path) -> list[float]:
    """Seconds of each no-op plan of ``flows`` flows after one apply that created them."""
    home = base / "home"
    home.mkdir(parents=True)
    env: dict[str, str | None] = {
        "TF_CLI_CONFIG_FILE": str(write_cli_config(base / "plugins")),
        "HOME": str(home),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_REATTACH_PROVIDERS": None,
    }
    (base / "server").mkdir()
    with running_server(base / "server") as server:
        workspace = Workspace(base / "ws", env, server.url)
        (workspace.workdir / "flows").mkdir()
        for n in range(flows):
            (workspace.workdir / "flows" / f"flow-{n:03d}.yaml").write_text(FLOW.format(n=n))
        workspace.write(HCL)
        workspace.apply()
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            result = workspace.plan()
            times.append(time.perf_counter() - started)
            if result.code != 0:
                msg = f"the plan was not a no-op (exit {result.code}):\n{result.output}"
                raise RuntimeError(msg)
        return times


def machine() -> str:
    """Cores, CPU model, Python and the load average: what the figures depend on."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average {load}"
    )


def main() -> None:
    """Measure and print one line per size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--flows", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    print(f"code: {CHECKOUT}")
    for flows in args.flows:
        with tempfile.TemporaryDirectory(prefix="fp-noop-") as tmp:
            times = measure(flows, args.repeat, Path(tmp))
        print(
            f"{flows} flows + 1 namespace: no-op plan median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} runs)"
        )


if __name__ == "__main__":
    main()
