"""trigger.Toggle: switch a flow's trigger on or off at run time."""

from __future__ import annotations

from typing import Any

from controlplane.domain.fields import DynBool, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext
from controlplane.plugins.flow.values import truthy


class Toggle(TaskBase):
    """Enable or disable a trigger of a flow (this one by default)."""

    TYPE = "io.kestra.plugin.core.trigger.Toggle"
    ALIASES = ("trigger.Toggle", "io.kestra.core.tasks.trigger.Toggle")

    namespace: Text | None = None
    flowId: Text | None = None  # noqa: N815 - Kestra's field name
    trigger: Text
    enabled: DynBool = False

    def run(self, context: RunContext) -> dict[str, Any]:
        """Record the switch; the scheduler, webhooks and flow triggers honour it."""
        own = context.execution
        namespace = str(context.render(self.namespace)) if self.namespace else own.namespace
        flow_id = str(context.render(self.flowId)) if self.flowId else own.flow_id
        trigger = str(context.render(self.trigger))
        enabled = truthy(context.render(self.enabled))
        source_disables = context.toggle_trigger(namespace, flow_id, trigger, enabled=enabled)
        where = f"{namespace}/{flow_id}"
        context.log("INFO", f"trigger {trigger} of {where} {'enabled' if enabled else 'disabled'}")
        if enabled and source_disables:
            context.log(
                "WARN",
                f"trigger {trigger} of {where} stays disabled: its source says disabled: true",
            )
        return {}
