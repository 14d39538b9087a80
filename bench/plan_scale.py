"""plan_scale: sync + plan of a real Git repository of 10,000 flows, then of a 100-flow change.

Builds a repository with --flows flows (in --namespaces namespaces) in a temp
dir with `git`, registers it as a source with the ``approval`` policy on a
fresh SQLite database, and times ``sync_source`` (fetch, read the tree,
validate, plan, store the plan) for the initial import. It then applies that
plan, commits a change to --changed flows and times the second sync. For each
sync it prints the wall time, the tracemalloc peak of Python allocations and
the process's peak RSS (VmHWM from /proc, else ru_maxrss).

A server validates a file's content once per process (``domain.plan`` memoizes
it), so a sync after the first validates only what changed: that is the
default "warm" figure. ``--cold`` runs the change sync in a new process, as
after a restart: nothing is memoized, and its peak RSS is that process's
alone (the Python imports of the server included, printed first). Either way
the change sync prints how many files it validated.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from controlplane.domain.plan import clear_validation_cache, validation_count
from controlplane.heap import freeze_startup_objects
from controlplane.services.gitops.plans import apply_plan, sync_source
from controlplane.services.gitops.sources import SourceInput, put_source
from controlplane.services.revisions import stored_spec
from controlplane.services.secrets import load_keyring
from controlplane.store.db import create_engine, migrate

FLOW = """\
id: {id}
namespace: {ns}
description: generated flow {n}
inputs:
  - id: who
    type: STRING
    defaults: world
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: "hello {{{{ inputs.who }}}} from {n}{suffix}"
  - id: sh
    type: io.kestra.plugin.scripts.shell.Commands
    commands:
      - echo {n}
triggers:
  - id: nightly
    type: io.kestra.plugin.core.trigger.Schedule
    cron: "{minute} 2 * * *"
"""


def git(repo: Path, *args: str) -> None:
    env = {
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def write_flows(repo: Path, count: int, namespaces: int, changed: set[int]) -> None:
    for n in range(count):
        ns = f"bench.team{n % namespaces}"
        path = repo / "flows" / ns / f"flow{n}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = " (changed)" if n in changed else ""
        path.write_text(FLOW.format(id=f"flow{n}", ns=ns, n=n, suffix=suffix, minute=n % 60))


def maxrss_mib() -> float:
    """This process's peak RSS in MiB.

    Linux carries ``ru_maxrss`` over fork and exec, so a child started by a
    large parent would report the parent's peak: VmHWM is this image's own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(label: str, run: Any, *, trace: bool) -> Any:
    """Time ``run`` (untraced pass) or take its tracemalloc peak (traced pass, slower)."""
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    if trace:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"  {label:<32} tracemalloc peak {peak / 2**20:8.1f} MiB")
    else:
        print(f"  {label:<32} {elapsed:8.2f} s   peak RSS {maxrss_mib():8.1f} MiB")
    return result


def forget_caches() -> None:
    """Start from a cold process: no memoized validations or parsed revisions."""
    clear_validation_cache()
    stored_spec.cache_clear()


def scenario(args: argparse.Namespace, *, trace: bool) -> None:
    forget_caches()
    root = Path(tempfile.mkdtemp(prefix="fp-plan-scale-"))
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    started = time.perf_counter()
    write_flows(repo, args.flows, args.namespaces, set())
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "import")
    built = time.perf_counter() - started
    print(
        f"{'traced' if trace else 'timed'} pass: repository of {args.flows} flows in "
        f"{args.namespaces} namespaces built in {built:.1f} s; "
        f"peak RSS before {maxrss_mib():.1f} MiB"
    )

    engine = create_engine(f"sqlite:///{root / 'flowplane.db'}")
    migrate(engine)
    data_dir = root / "data"
    put_source(
        engine,
        "bench",
        SourceInput(url=f"file://{repo}", approval="approval"),
        actor="bench",
        keyring=load_keyring(data_dir),
    )
    cache = data_dir / "git"

    first = measure(
        "initial import: sync + plan", lambda: sync_source(engine, "bench", cache), trace=trace
    )
    assert first.status == "pending", first.status
    assert first.summary["add"] == args.flows
    measure("initial import: apply", lambda: apply_plan(engine, first.id, actor="b"), trace=trace)

    step = max(1, args.flows // args.changed)
    changed = set(range(0, step * args.changed, step))
    write_flows(repo, args.flows, args.namespaces, changed)
    git(repo, "commit", "-qam", f"change {len(changed)} flows")
    label = f"{len(changed)}-flow change ({'cold' if args.cold else 'warm'})"
    if args.cold:
        # A new process, as after a server restart.
        command = [sys.executable, __file__, "--restart-sync", str(root), "--label", label]
        done = subprocess.run(
            [*command, *(["--trace"] if trace else [])],
            check=True,
            capture_output=True,
            text=True,
        )
        print(done.stdout, end="")
        plan_id = done.stdout.strip().rsplit("plan ", 1)[1]
    else:
        plan_id = change_sync(engine, cache, label, trace=trace).id
    measure(f"{label}: apply", lambda: apply_plan(engine, plan_id, actor="b"), trace=trace)
    engine.dispose()
    shutil.rmtree(root)


def change_sync(engine: Any, cache: Path, label: str, *, trace: bool) -> Any:
    """Sync the changed commit, check its summary and print how many files it validated."""
    validated = validation_count()
    plan = measure(
        f"{label}: sync + plan", lambda: sync_source(engine, "bench", cache), trace=trace
    )
    assert plan.status == "pending", plan.problems
    assert plan.summary["change"] > 0, plan.summary
    assert plan.summary["add"] == plan.summary["remove"] == 0, plan.summary
    print(f"  {label}: {validation_count() - validated} files validated; {plan.summary}")
    return plan


def restart_sync(root: Path, label: str, *, trace: bool) -> None:
    """The change sync in this new process; its last line names the plan."""
    freeze_startup_objects()  # as `flowplane server` does once it has started
    print(f"  (new process: peak RSS after imports {maxrss_mib():.1f} MiB)")
    engine = create_engine(f"sqlite:///{root / 'flowplane.db'}")
    plan = change_sync(engine, root / "data" / "git", label, trace=trace)
    engine.dispose()
    print(f"plan {plan.id}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument(
        "--cold",
        action="store_true",
        help="clear in-process caches before the change sync, as after a restart",
    )
    parser.add_argument("--restart-sync", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--label", default="", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.restart_sync is not None:
        restart_sync(args.restart_sync, args.label, trace=args.trace)
        return
    # Wall times and peak RSS come from an untraced pass, since tracemalloc
    # slows allocation-heavy code several times; the peaks from a second pass.
    scenario(args, trace=False)
    scenario(args, trace=True)


if __name__ == "__main__":
    main()
