"""The provider process: it outlives no Terraform, and StopProvider does not end it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PARENT = (
    "import subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-m', 'controlplane.terraform_provider.main'],"
    " stdout=subprocess.PIPE)\n"
    "print(child.pid, flush=True)\n"
    "child.stdout.readline()\n"  # the go-plugin handshake: the provider serves
    "print('serving', flush=True)\n"
    "import time; time.sleep(600)\n"
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_the_provider_exits_when_terraform_is_killed(tf_env):
    env = {k: v for k, v in {**os.environ, **tf_env}.items() if v is not None}
    env["PLUGIN_PROTOCOL_VERSIONS"] = "6"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, env=env
    )
    assert parent.stdout is not None
    provider = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "serving"
    assert alive(provider)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while alive(provider) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(provider), "the provider outlived its killed parent"


def test_sigint_does_not_end_the_provider(tf_env):
    env = {k: v for k, v in {**os.environ, **tf_env}.items() if v is not None}
    provider = subprocess.Popen(
        [sys.executable, "-m", "controlplane.terraform_provider.main"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert provider.stdout is not None
    assert provider.stdout.readline().startswith("1|6|unix|")
    provider.send_signal(signal.SIGINT)
    try:
        # Terraform decides what stops; the provider keeps serving until Shutdown.
        assert provider.poll() is None
        time.sleep(0.5)
        assert provider.poll() is None
    finally:
        provider.kill()
        provider.wait()
        provider.stdout.close()
