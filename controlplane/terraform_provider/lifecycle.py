"""How the provider process stops: never in the middle of an API call it made.

`tf` 1.2's ``run_provider`` ends the gRPC server with no grace as soon as
Terraform sends ``StopProvider``, which Terraform sends on Ctrl-C *while
applies are in flight*: those calls die, Terraform logs "Plugin did not
respond", and an object created on the server never reaches state. It also
turns the SIGINT a terminal sends to the whole process group into the same
abrupt stop. This layer, installed by ``planning.serve``, changes three things:

- **StopProvider** only tells the provider to stop (``FlowplaneProvider.stop``):
  requests already sent finish and their results are returned and recorded;
  no new request starts. The server keeps serving until go-plugin's
  ``Shutdown``, which Terraform sends once it is done with the provider.
- **SIGINT is ignored**, as go-plugin's own Go servers do: Terraform, which
  receives it too, decides what stops.
- **The parent is watched**: when Terraform dies (``kill -9``), the provider is
  re-parented, notices within ``PARENT_POLL_SECONDS`` and exits.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
from typing import Any

PARENT_POLL_SECONDS = 0.5
_SHUTDOWN = "/plugin.GRPCController/Shutdown"


class ShutdownOnlyInterceptor:
    """Stands in for `tf.runner._ShutdownInterceptor`: ends the server on Shutdown only."""

    def __init__(self) -> None:
        self.stopped = False
        self.server: Any = None

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        """Serve the call; after go-plugin's Shutdown, let the serve loop end."""
        result = continuation(handler_call_details)
        if handler_call_details.method == _SHUTDOWN:
            self.stopped = True
            if self.server is not None:
                # Terraform sends Shutdown after its last call returned: no
                # request is in flight, so a short grace is enough.
                self.server.stop(grace=1.0)
        return result


def install() -> None:
    """Patch `tf.runner` and this process before ``run_provider`` starts."""
    runner: Any = importlib.import_module("tf.runner")
    runner._ShutdownInterceptor = ShutdownOnlyInterceptor  # noqa: SLF001 - the documented patch
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent(os.getppid())


def watch_parent(parent: int, poll: float = PARENT_POLL_SECONDS) -> threading.Thread:
    """Exit the process when ``parent`` is no longer its parent (it died)."""

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(poll)
        # Nobody is left to receive an answer or record state.
        os._exit(1)

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread
