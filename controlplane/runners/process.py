"""Run a script task as a subprocess in a temporary working directory."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.runners.outputs import parse_output_line


@dataclass
class ProcessResult:
    """What a finished process left behind."""

    exit_code: int
    outputs: dict[str, Any] = field(default_factory=dict)
    timed_out: bool = False
    killed: bool = False


def run_process(  # noqa: C901 - exit, timeout and stop are handled in one wait loop
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_line: Callable[[str, str], None],
    timeout: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ProcessResult:
    """Run ``argv``, streaming each stdout/stderr line to ``on_line(level, text)``.

    The process is killed (with its process group) on timeout or when
    ``should_stop`` turns true; the caller learns which from the result.
    """
    process = subprocess.Popen(  # noqa: S603 - argv comes from the flow author, by design
        argv,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    result = ProcessResult(exit_code=-1)

    def pump(stream: Any, level: str) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            # Only stdout carries outputs, as in Kestra.
            outputs = parse_output_line(line) if level == "INFO" else None
            if outputs is not None:
                result.outputs.update(outputs)
                continue
            on_line(level, line)

    readers = [
        threading.Thread(target=pump, args=(process.stdout, "INFO"), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, "WARN"), daemon=True),
    ]
    for reader in readers:
        reader.start()
    waited = 0.0
    while True:
        try:
            result.exit_code = process.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            waited += 0.1
            if timeout is not None and waited >= timeout:
                result.timed_out = True
            elif should_stop():
                result.killed = True
            else:
                continue
            os.killpg(process.pid, 9)
            result.exit_code = process.wait()
            break
    for reader in readers:
        reader.join(timeout=5)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return result
