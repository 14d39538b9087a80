"""The base of every task type, and the table of type names.

Each task type names its full Kestra type in ``TYPE`` and its short aliases in
``ALIASES``; ``register`` (called by the plugin registry, ``registry.py``)
enters both into one table. A task's ``type`` is canonicalized to the full
name during validation, so ``Log`` and ``io.kestra.plugin.core.log.Log``
normalize to the same flow.

The classes in this package's family modules (``core``, ``flowable``, ``http``,
``scripts``) are the *specs* of the first-party types: pure data the plan,
the UI and masking read. The runnable task types subclass them in
``controlplane/plugins/<family>/`` and register through entry points.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import Field, field_validator

from controlplane.domain.fields import DynDuration, LogLevel, Retry, StrictModel, TaskId

KESTRA_PREFIX = "io.kestra.plugin."

TASK_TYPES: dict[str, type[TaskBase]] = {}
TASK_ALIASES: dict[str, str] = {}

_T = TypeVar("_T", bound="type[TaskBase]")


def canonical_type(name: str) -> str | None:
    """The full type name for a full name or alias, or ``None`` when unknown."""
    if name in TASK_TYPES:
        return name
    return TASK_ALIASES.get(name)


def register(cls: _T) -> _T:
    """Enter a task type and its aliases in the type table (the registry calls it)."""
    if not cls.TYPE:
        msg = f"{cls.__qualname__} has no TYPE"
        raise RuntimeError(msg)
    known = TASK_TYPES.get(cls.TYPE)
    if known is not None and known is not cls:
        msg = f"type {cls.TYPE} is claimed by both {_origin(known)} and {_origin(cls)}"
        raise RuntimeError(msg)
    TASK_TYPES[cls.TYPE] = cls
    aliases = {cls.TYPE.removeprefix(KESTRA_PREFIX), *cls.ALIASES} - {cls.TYPE}
    for alias in aliases:
        if alias in TASK_ALIASES and TASK_ALIASES[alias] != cls.TYPE:
            msg = f"alias {alias!r} is claimed by both {TASK_ALIASES[alias]} and {cls.TYPE}"
            raise RuntimeError(msg)
        TASK_ALIASES[alias] = cls.TYPE
    return cls


def _origin(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class TaskBase(StrictModel):
    """Properties every task has, whatever its type."""

    TYPE: ClassVar[str] = ""
    ALIASES: ClassVar[tuple[str, ...]] = ()
    # Flowable tasks hold other tasks and run none of their own work.
    FLOWABLE: ClassVar[bool] = False
    # The outputs a run exposes (name: meaning), for schemas, docs and the API.
    OUTPUTS: ClassVar[Mapping[str, str]] = {}
    # Whether the type runs user code, and so needs the script sandbox.
    SANDBOX: ClassVar[bool] = False
    # Whether a run acts outside its own task run (processes, files, HTTP, other
    # executions). One without side effects may run again after a crash harmlessly,
    # so its end commits with the next write instead of on its own (worker/batch.py).
    SIDE_EFFECTS: ClassVar[bool] = True

    id: TaskId
    type: str
    description: str | None = None
    retry: Retry | None = None
    timeout: DynDuration | None = None
    disabled: bool = False
    allowFailure: bool = False  # noqa: N815 - Kestra's field name
    allowWarning: bool = False  # noqa: N815
    runIf: str | bool | None = None  # noqa: N815
    logLevel: LogLevel | None = None  # noqa: N815
    logToFile: bool = False  # noqa: N815
    workerGroup: dict[str, Any] | None = None  # noqa: N815

    @field_validator("type")
    @classmethod
    def _canonical(cls, value: str) -> str:
        # The discriminator already chose this class, so the name is known.
        return canonical_type(value) or value

    @field_validator("workerGroup", mode="before")
    @classmethod
    def _no_worker_group(cls, value: Any) -> Any:
        # Accepting it would promise a placement the worker pool cannot keep.
        if value is not None:
            raise ValueError("workerGroup is not supported: every Flowplane worker runs every task")
        return value

    def child_lists(self) -> dict[str, list[TaskBase]]:
        """Every list of nested tasks this task holds, keyed by field path.

        Non-flowable tasks hold none. The keys are the field names used in the
        YAML (``then``, ``else``, ``cases.a``) so callers can build error paths.
        """
        return {}


if TYPE_CHECKING:
    # At run time ``Task`` is the discriminated union of every registered model,
    # supplied by ``registry.py`` when it rebuilds the models; to the type
    # checker a nested task is simply a TaskBase.
    Task = TaskBase


class FlowableBase(TaskBase):
    """A task that orchestrates nested tasks, with its own error branch."""

    FLOWABLE: ClassVar[bool] = True

    errors: list[Task] | None = None
    finally_: list[Task] | None = Field(default=None, alias="finally")

    def child_lists(self) -> dict[str, list[TaskBase]]:
        """The error and finally branches; subclasses add their main lists."""
        lists: dict[str, list[TaskBase]] = {}
        if self.errors:
            lists["errors"] = list(self.errors)
        if self.finally_:
            lists["finally"] = list(self.finally_)
        return lists


def labels_as_dict(value: Any) -> Any:
    """Kestra accepts labels as a map or as a list of ``{key, value}``; keep a map."""
    if isinstance(value, list):
        labels: dict[str, Any] = {}
        for index, item in enumerate(value):
            if not isinstance(item, dict) or set(item) != {"key", "value"}:
                raise ValueError(f"item {index} must be a mapping with exactly key and value")
            if item["key"] in labels:
                raise ValueError(f"label {item['key']!r} is given twice")
            labels[str(item["key"])] = item["value"]
        return labels
    return value


def positive_or_template(value: Any) -> Any:
    """Reject a negative literal where Kestra expects a count."""
    if isinstance(value, int) and value < 0:
        raise ValueError("must be ≥ 0")
    return value
