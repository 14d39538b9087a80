"""Argo CD application tasks: Sync (and wait for the sync operation) and Status."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from controlplane.domain.fields import DynBool, Text
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.argocd.client import (
    ArgoCDConnection,
    app_path,
    call,
    status_outputs,
    truthy,
)

# Argo CD's operation phases that end an operation (gitops-engine OperationPhase).
_ENDED = {"Succeeded", "Failed", "Error"}
_FIRST_WAIT, _LONGEST_WAIT = 0.2, 5.0

_STATUS_OUTPUTS: Mapping[str, str] = {
    "syncStatus": "status.sync.status: Synced, OutOfSync or Unknown",
    "healthStatus": "status.health.status: Healthy, Progressing, Degraded, Suspended, Missing…",
    "revision": "status.sync.revision: the revision the application is synced to",
    "resources": "status.resources: the managed resources and their states",
    "rawOutput": "the Application object Argo CD answered, as JSON text",
}


class Sync(ArgoCDConnection):
    """Sync an Argo CD application, optionally to a revision; wait for the sync operation.

    Like ``argocd app sync`` (which Kestra's task runs), the task waits until
    the sync operation ends and fails when it ends Failed or Error. It does
    not wait for health: poll ``Status`` for that. The task's ``timeout``
    bounds the wait.
    """

    TYPE = "io.kestra.plugin.argocd.apps.Sync"
    OUTPUTS: ClassVar[Mapping[str, str]] = _STATUS_OUTPUTS

    revision: Text | None = None
    prune: DynBool = False
    dryRun: DynBool = False  # noqa: N815 - Kestra's field name
    force: DynBool = False

    def run(self, context: RunContext) -> dict[str, Any]:
        """POST the sync request, then read the application until the operation ends."""
        name = str(context.render(self.application))
        body: dict[str, Any] = {
            "name": name,
            "prune": truthy(context.render(self.prune)),
            "dryRun": truthy(context.render(self.dryRun)),
        }
        if self.revision is not None:
            body["revision"] = str(context.render(self.revision))
        if truthy(context.render(self.force)):
            # The CLI's default strategy is "hook"; --force sets its force flag.
            body["strategy"] = {"hook": {"force": True}}
        path = app_path(name)
        with self.client(context) as client:
            call(client, "POST", f"{path}/sync", json=body)
            context.log("INFO", f"sync of {name} requested at {body.get('revision', 'HEAD')}")
            app = _wait_for_operation(client, path, context)
        operation = (app.get("status") or {}).get("operationState") or {}
        phase = operation.get("phase")
        if phase != "Succeeded":
            raise TaskFailedError(f"sync of {name} ended {phase}: {operation.get('message', '')}")
        outputs = status_outputs(app)
        outputs.pop("conditions")
        context.log(
            "INFO", f"sync of {name} {phase}: {outputs['syncStatus']}, {outputs['healthStatus']}"
        )
        return outputs


def _wait_for_operation(client: httpx.Client, path: str, context: RunContext) -> dict[str, Any]:
    """Read the application until no operation is pending and the last one has ended."""
    wait = _FIRST_WAIT
    while True:
        app = call(client, "GET", path)
        phase = ((app.get("status") or {}).get("operationState") or {}).get("phase")
        # The API server sets `operation`; the controller clears it once the sync ends.
        if not app.get("operation") and phase in _ENDED:
            return app
        remaining = context.remaining_seconds()
        if context.should_stop() or (remaining is not None and remaining <= 0):
            raise TaskFailedError(f"the sync operation was still {phase or 'pending'}")
        time.sleep(wait if remaining is None else min(wait, remaining))
        wait = min(wait * 2, _LONGEST_WAIT)


class Status(ArgoCDConnection):
    """Read an Argo CD application's sync and health status.

    Kestra's task has no option to fail on a state; poll it in a ``WaitFor``
    (see docs/plugins/argocd.md) and follow with ``Fail`` when needed.
    """

    TYPE = "io.kestra.plugin.argocd.apps.Status"
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        **_STATUS_OUTPUTS,
        "conditions": "status.conditions: warnings and errors Argo CD reports",
    }

    refresh: DynBool = False

    def run(self, context: RunContext) -> dict[str, Any]:
        """GET the application (``refresh=normal`` first asks Argo CD to re-compare)."""
        name = str(context.render(self.application))
        params = {"refresh": "normal"} if truthy(context.render(self.refresh)) else None
        with self.client(context) as client:
            app = call(client, "GET", app_path(name), params=params)
        outputs = status_outputs(app)
        context.log(
            "INFO",
            f"{name}: {outputs['syncStatus']}, {outputs['healthStatus']} at {outputs['revision']}",
        )
        return outputs
