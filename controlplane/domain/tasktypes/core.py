"""Core task specs (the data of each type; plugins/core, kv, execution, storage run them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from controlplane.domain.fields import DynBool, DynDuration, LogLevel, Text
from controlplane.domain.tasktypes.base import TaskBase


class Log(TaskBase):
    """Write one or more messages to the execution's log."""

    TYPE = "io.kestra.plugin.core.log.Log"
    ALIASES = ("Log", "io.kestra.core.tasks.log.Log")

    message: Text | list[Text]
    level: LogLevel = LogLevel.INFO


class Return(TaskBase):
    """Render ``format`` and expose it as the ``value`` output."""

    TYPE = "io.kestra.plugin.core.debug.Return"
    ALIASES = ("Return", "io.kestra.core.tasks.debugs.Return")

    format: Text | None = None


class Echo(TaskBase):
    """Render ``format`` into the log (Kestra's older Log)."""

    TYPE = "io.kestra.plugin.core.debug.Echo"
    ALIASES = ("Echo", "io.kestra.core.tasks.debugs.Echo")

    format: Text
    level: LogLevel = LogLevel.INFO


class Fail(TaskBase):
    """Fail the execution, or only when ``condition`` renders true."""

    TYPE = "io.kestra.plugin.core.execution.Fail"
    ALIASES = ("Fail", "io.kestra.core.tasks.executions.Fail")

    condition: Text | None = None
    errorMessage: Text = "Task failure"  # noqa: N815 - Kestra's field name


class Sleep(TaskBase):
    """Wait for a duration."""

    TYPE = "io.kestra.plugin.core.flow.Sleep"
    ALIASES = ("Sleep",)

    duration: DynDuration


class OutputValues(TaskBase):
    """Expose rendered values as the ``values`` output."""

    TYPE = "io.kestra.plugin.core.output.OutputValues"
    ALIASES = ("OutputValues", "io.kestra.core.tasks.outputs.OutputValues")

    values: dict[str, Any] = Field(default_factory=dict)


class Labels(TaskBase):
    """Add or override labels on the running execution."""

    TYPE = "io.kestra.plugin.core.execution.Labels"
    ALIASES = ("Labels", "io.kestra.core.tasks.executions.Labels")

    labels: dict[str, Any] | list[dict[str, Any]] | str


class Resume(TaskBase):
    """Resume a paused execution (this one's parent by default)."""

    TYPE = "io.kestra.plugin.core.execution.Resume"
    ALIASES = ("Resume",)

    executionId: Text | None = None  # noqa: N815
    namespace: Text | None = None
    flowId: Text | None = None  # noqa: N815
    inputs: dict[str, Any] | None = None


class Fetch(TaskBase):
    """Collect the log lines of an execution into a stored file."""

    TYPE = "io.kestra.plugin.core.log.Fetch"
    ALIASES = ("log.Fetch", "io.kestra.core.tasks.log.Fetch")

    executionId: Text | None = None  # noqa: N815
    namespace: Text | None = None
    flowId: Text | None = None  # noqa: N815
    tasksId: list[str] | None = None  # noqa: N815
    level: LogLevel = LogLevel.INFO


class _StateTask(TaskBase):
    name: Text = "default"
    namespace: bool = False
    taskrunValue: bool = True  # noqa: N815


class StateGet(_StateTask):
    """Read a flow-scoped state document."""

    TYPE = "io.kestra.plugin.core.state.Get"
    ALIASES = ("state.Get", "io.kestra.core.tasks.states.Get")

    errorOnMissing: bool = False  # noqa: N815


class StateSet(_StateTask):
    """Merge values into a flow-scoped state document."""

    TYPE = "io.kestra.plugin.core.state.Set"
    ALIASES = ("state.Set", "io.kestra.core.tasks.states.Set")

    data: dict[str, Any] = Field(default_factory=dict)


class StateDelete(_StateTask):
    """Delete a flow-scoped state document."""

    TYPE = "io.kestra.plugin.core.state.Delete"
    ALIASES = ("state.Delete", "io.kestra.core.tasks.states.Delete")

    errorOnMissing: bool = False  # noqa: N815


KvType = Literal["STRING", "NUMBER", "BOOLEAN", "DATETIME", "DATE", "DURATION", "JSON"]


class _KvTask(TaskBase):
    key: Text
    # Defaults to the flow's namespace when not given.
    namespace: Text | None = None


class KvSet(_KvTask):
    """Store a value under a key in the namespace's key-value store."""

    TYPE = "io.kestra.plugin.core.kv.Set"
    ALIASES = ("kv.Set",)

    value: Any
    overwrite: DynBool = True
    ttl: DynDuration | None = None
    kvType: KvType | None = None  # noqa: N815
    description: str | None = None

    @field_validator("kvType", mode="before")
    @classmethod
    def _no_kv_type(cls, value: Any) -> Any:
        # kv.Set stores the value as rendered; a declared type would be a silent promise.
        if value is not None:
            raise ValueError(
                "kvType is not supported: kv.Set stores the value with the type "
                "YAML or its template gives it"
            )
        return value


class KvGet(_KvTask):
    """Read a key of the namespace's key-value store into the ``value`` output."""

    TYPE = "io.kestra.plugin.core.kv.Get"
    ALIASES = ("kv.Get",)

    errorOnMissing: DynBool = False  # noqa: N815


class KvDelete(_KvTask):
    """Delete a key of the namespace's key-value store; ``deleted`` says if it existed."""

    TYPE = "io.kestra.plugin.core.kv.Delete"
    ALIASES = ("kv.Delete",)

    errorOnMissing: DynBool = False  # noqa: N815


class LocalFiles(TaskBase):
    """Write files into, and collect files from, a WorkingDirectory."""

    TYPE = "io.kestra.plugin.core.storage.LocalFiles"
    ALIASES = ("LocalFiles", "io.kestra.core.tasks.storages.LocalFiles")

    inputs: dict[str, Text] | Text | None = None
    outputs: list[Text] | None = None
