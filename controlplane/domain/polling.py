"""Polling triggers: a plugin kind that asks an outside system, every interval, what to start.

A polling trigger is a pydantic spec, like a task type, registered through the
same ``flowplane.plugins`` entry points (``registry.py`` sorts the classes it
loads by base class). It has Kestra's trigger properties (``interval``,
``conditions``, ``stopAfter``, ``disabled``, ...) and one method:
``poll(context)`` returns the ``Fire``s it found, each with a dedup ``key``.

The server's polling loop (``services/polling.py``) calls ``poll`` when the
trigger's interval is due and creates one execution per fire, recording the
fire's key under a unique constraint in the same transaction: a trigger fires
at most once per key, whichever server polled and whatever crashed. The fire's
``variables`` become the run's ``trigger.*``.

The domain holds the base class and the table of types only; the loop, the
context and the store live in the services and the store.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

from pydantic import Field, GetJsonSchemaHandler, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from controlplane.domain.conditions import Condition, Multiple, misplaced
from controlplane.domain.durations import parse_duration
from controlplane.domain.fields import LogLevel, State, StrictModel

DEFAULT_INTERVAL = "PT60S"  # Kestra's PollingTriggerInterface default
# As for task types (tasktypes.base, which this module must not import: the
# registry imports this one), a Kestra name also works without this prefix.
KESTRA_PREFIX = "io.kestra.plugin."

POLLING_TRIGGERS: dict[str, type[PollingTrigger]] = {}
POLLING_ALIASES: dict[str, str] = {}

_T = TypeVar("_T", bound="type[PollingTrigger]")


@dataclass(frozen=True)
class Fire:
    """One thing a poll found: start a run for it, once per ``key``.

    ``key`` identifies what fired (a commit sha, a digest of the rows): the
    trigger never fires twice for the same key. ``variables`` are what the run
    sees as ``trigger.*`` (``id`` and ``type`` are set by Flowplane).
    """

    key: str
    variables: dict[str, Any] = field(default_factory=dict)


class TriggerContext(Protocol):
    """What a polling trigger may use of Flowplane while it polls, for one flow's trigger.

    Rendering sees the flow (``flow.*``), the poll's ``trigger.date`` and
    ``secret()`` of the flow's namespace only; every secret revealed is masked
    in the poll's log lines, errors and fire variables.
    """

    @property
    def namespace(self) -> str:
        """The flow's namespace (the only one whose secrets the poll sees)."""
        ...

    @property
    def flow_id(self) -> str:
        """The flow's id."""
        ...

    def render(self, value: Any) -> Any:
        """``value`` with its templates rendered (dicts and lists walked)."""
        ...

    def log(self, level: str, message: str) -> None:
        """One server log line about this poll, secrets masked."""
        ...

    def is_secret(self, value: str) -> bool:
        """True when ``value`` contains a secret this poll revealed."""
        ...

    def load_state(self) -> Any:
        """The value this trigger last saved with ``save_state`` (None before)."""
        ...

    def save_state(self, value: Any) -> None:
        """Keep a small JSON value for the next polls of this trigger (any server)."""
        ...

    def should_stop(self) -> bool:
        """True once the server is stopping: a long poll should give up."""
        ...

    def ensure_not_server_database(self, host: str, port: int, dbname: str) -> None:
        """Raise ``TaskFailedError`` when ``host:port/dbname`` is Flowplane's own database."""
        ...

    def server_paths(self) -> list[Path]:
        """The server's directories a flow's local path may not name (data, working dirs)."""
        ...


def canonical_trigger(name: str) -> str | None:
    """The full name of a polling trigger type, by full name or alias; None when unknown."""
    if name in POLLING_TRIGGERS:
        return name
    return POLLING_ALIASES.get(name)


def register_trigger(cls: _T) -> _T:
    """Enter a polling trigger type and its aliases (the plugin registry calls it)."""
    if not cls.TYPE:
        raise RuntimeError(f"{cls.__qualname__} has no TYPE")
    known = POLLING_TRIGGERS.get(cls.TYPE)
    if known is not None and known is not cls:
        raise RuntimeError(f"trigger type {cls.TYPE} is claimed twice ({cls.__module__})")
    POLLING_TRIGGERS[cls.TYPE] = cls
    # As task types do, a Kestra type is also known without its io.kestra.plugin. prefix.
    for alias in {cls.TYPE.removeprefix(KESTRA_PREFIX), *cls.ALIASES} - {cls.TYPE}:
        if POLLING_ALIASES.get(alias, cls.TYPE) != cls.TYPE:
            raise RuntimeError(f"trigger alias {alias!r} is claimed twice ({cls.TYPE})")
        POLLING_ALIASES[alias] = cls.TYPE
    return cls


def fire_key_digest(value: Any) -> str:
    """A stable digest of a JSON-able value, for keys built from content (rows, listings)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class PollingTrigger(StrictModel):
    """The base of every polling trigger type: Kestra's trigger properties and ``poll``."""

    KIND: ClassVar[str] = "Polling"
    TYPE: ClassVar[str] = ""
    ALIASES: ClassVar[tuple[str, ...]] = ()
    # What a fired run sees as ``trigger.<name>`` (name: meaning), for docs and the catalog.
    OUTPUTS: ClassVar[Mapping[str, str]] = {}

    id: Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$", max_length=100)]
    type: str
    description: str | None = None
    disabled: bool = False
    conditions: list[Condition] | None = None
    stopAfter: list[State] | None = None  # noqa: N815 - Kestra's field name
    inputs: dict[str, Any] | None = None
    labels: dict[str, Any] | list[dict[str, Any]] | None = None
    # Lines of the poll below this level are dropped, as a task's logLevel does.
    logLevel: LogLevel | None = None  # noqa: N815
    interval: str = DEFAULT_INTERVAL

    @field_validator("type")
    @classmethod
    def _canonical(cls, value: str) -> str:
        # The discriminator already chose this class, so the name is known.
        return canonical_trigger(value) or value

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        # Kestra's interval is a plain Duration, never an expression.
        if not isinstance(value, str):
            raise ValueError("must be an ISO-8601 duration such as PT30S or PT5M")
        if parse_duration(value).total_seconds() <= 0:
            raise ValueError("must be a positive duration such as PT30S")
        return value

    @field_validator("conditions")
    @classmethod
    def _conditions_fit(cls, value: list[Condition] | None) -> list[Condition] | None:
        # A poll, like a schedule, has no upstream execution for conditions to test.
        for index, condition in enumerate(value or []):
            if isinstance(condition, Multiple):
                raise ValueError(
                    f"conditions[{index}]: MultipleCondition gathers upstream executions; "
                    "a polling trigger has none"
                )
        problem = misplaced(value or [], "Schedule")
        if problem is not None:
            raise ValueError(
                problem.replace("a Schedule trigger", "a polling trigger").replace(
                    "a schedule has none", "a poll has none"
                )
            )
        return value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The model's schema with ``type`` narrowed to this type's names, for editors."""
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        if cls.TYPE:
            aliases = {a for a, full in POLLING_ALIASES.items() if full == cls.TYPE}
            names = [cls.TYPE, *sorted(aliases | set(cls.ALIASES) - {cls.TYPE})]
            target.setdefault("properties", {})["type"] = {
                "title": "Type",
                "type": "string",
                "enum": names,
                "description": f"{cls.TYPE} (or an alias)",
            }
        return schema

    def interval_seconds(self) -> float:
        """The interval between two polls, in seconds."""
        return parse_duration(self.interval).total_seconds()

    def poll(self, context: TriggerContext) -> list[Fire] | None:
        """Ask the outside system; return what fired (None or [] when nothing did).

        Raising fails this poll only: the loop logs it (masked) and backs off
        for this trigger while every other trigger goes on.
        """
        raise NotImplementedError
