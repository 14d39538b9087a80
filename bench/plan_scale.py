"""plan_scale: sync + plan of a real Git repository of 10,000 flows, then of a 100-flow change.

Builds a repository with --flows flows (in --namespaces namespaces) in a temp
dir with `git`, registers it as a source with the ``approval`` policy on a
fresh SQLite database, and times ``sync_source`` (fetch, read the tree,
validate, plan, store the plan) for the initial import. It then applies that
plan, commits a change to --changed flows and times the second sync. For each
sync it prints the wall time, the tracemalloc peak of Python allocations and
the process's ru_maxrss.

A server validates a file's content once per process (``domain.plan`` memoizes
it), so a sync after the first validates only what changed: that is the
default "warm" figure. ``--cold`` clears the caches before the change sync,
as after a restart.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from controlplane.domain.plan import clear_validation_cache
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
        print(f"  {label:<32} {elapsed:8.2f} s   ru_maxrss {maxrss_mib():8.1f} MiB")
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
        f"ru_maxrss before {maxrss_mib():.1f} MiB"
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
        forget_caches()  # as after a server restart
    second = measure(
        f"{label}: sync + plan", lambda: sync_source(engine, "bench", cache), trace=trace
    )
    assert second.summary["change"] == len(changed), second.summary
    assert second.summary["unchanged"] == args.flows - len(changed)
    measure(f"{label}: apply", lambda: apply_plan(engine, second.id, actor="b"), trace=trace)
    engine.dispose()
    shutil.rmtree(root)


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
    args = parser.parse_args()
    # Wall times and ru_maxrss come from an untraced pass, since tracemalloc
    # slows allocation-heavy code several times; the peaks from a second pass.
    scenario(args, trace=False)
    scenario(args, trace=True)


if __name__ == "__main__":
    main()
