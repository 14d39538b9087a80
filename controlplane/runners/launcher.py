"""The program a pre-started sandbox runs until its task arrives (``prestart``).

It runs inside the sandbox, as ``nobody``, started with ``python -c`` and this
file's source: the package itself is not bound into the sandbox, so the
program imports only the standard library. Its arguments are the pipe that
brings the task, the pipe on which it says it has started (file descriptors),
and the slot directory bound into the sandbox, which the worker renames to the
task's working directory once the launcher has started (not before: bwrap
binds the slot by its name).

The task is one JSON object: ``cwd``, the working directory's path as the task
sees it; ``env``, the whole environment; and either ``argv``, a command to
execute in place of this program, or ``script``, a Python file to run in this
interpreter as ``python script`` would (the interpreter is already started,
which is the point). A closed pipe with no task means the worker no longer
needs this sandbox.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import machinery
from pathlib import Path


def main(argv: list[str]) -> None:
    """Say it is ready on ``argv[2]``, wait for the task on ``argv[1]``, run it in ``argv[3]``."""
    # The sandbox's mounts are made: the worker may now move the slot.
    os.write(int(argv[2]), b"1")
    os.close(int(argv[2]))
    with os.fdopen(int(argv[1]), "rb") as tasks:
        raw = tasks.read()
    if not raw:
        return
    task = json.loads(raw)
    cwd, env = task["cwd"], dict(task["env"])
    # The slot is bound at its own path; the task's working directory is named
    # by a link in the sandbox's private work root, so absolute paths the
    # engine rendered ({{ outputDir }}) reach the same files.
    Path(cwd).parent.mkdir(parents=True, exist_ok=True)
    Path(cwd).symlink_to(argv[3])
    os.chdir(cwd)
    env["PWD"] = cwd
    if "argv" in task:
        command = task["argv"]
        try:
            os.execvpe(command[0], command, env)  # noqa: S606 - the task's own command
        except OSError as exc:
            # As a shell reports a command it cannot run.
            sys.stderr.write(f"{command[0]}: {exc.strerror}\n")
            sys.exit(127)
    _run_script(task["script"], cwd, env)


def _run_script(script: str, cwd: str, env: dict[str, str]) -> None:
    """Run ``script`` as ``python script`` runs it: a new ``__main__``, argv, sys.path[0].

    Done by hand rather than with ``runpy``, which imports ``pkgutil`` and
    ``typing`` (5 ms to import, and as much again to tear down at exit).
    """
    os.environ.clear()
    os.environ.update(env)
    # The absolute path through the working directory's name, as __file__ and
    # tracebacks show it when the interpreter starts on the script.
    path = str(Path(cwd) / script)
    sys.argv = [script]
    sys.path[0] = cwd
    module = type(sys)("__main__")
    loader = machinery.SourceFileLoader("__main__", path)
    module.__dict__.update(__file__=path, __cached__=None, __loader__=loader)
    sys.modules["__main__"] = module
    try:
        with open(path, "rb") as source:  # noqa: PTH123 - as the interpreter opens it
            code = compile(source.read(), path, "exec")
        exec(code, module.__dict__)  # noqa: S102 - the task's script, in its sandbox
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - reported as the interpreter reports it
        # The traceback starts at the script, as a fresh interpreter's would.
        trace = exc.__traceback__
        while trace is not None and trace.tb_frame.f_code.co_filename != path:
            trace = trace.tb_next
        sys.excepthook(type(exc), exc.with_traceback(trace), trace)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv)
