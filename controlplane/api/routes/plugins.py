"""``/api/v1/plugins``: the task types this server runs, and their JSON Schemas."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from controlplane.api.auth import Viewer
from controlplane.api.schemas import ErrorBody
from controlplane.domain.tasktypes import suggest_task_type
from controlplane.domain.tasktypes.schema import catalog, task_schema
from controlplane.errors import NotFoundError

router = APIRouter(prefix="/api/v1/plugins", tags=["plugins"])


class PluginPublic(BaseModel):
    """One task type: its names, where it comes from, and what it exposes."""

    type: str
    aliases: list[str]
    title: str
    description: str
    family: str
    package: str
    flowable: bool
    sandbox: bool
    outputs: dict[str, str]


class PluginList(BaseModel):
    """Every registered task type, sorted by type name."""

    items: list[PluginPublic]
    total: int


@router.get("", response_model=PluginList)
def list_plugins(principal: Viewer) -> PluginList:  # noqa: ARG001 - the dependency authenticates
    """Every task type the registry holds (first-party and installed plugins)."""
    items = [PluginPublic(**entry) for entry in catalog()]
    return PluginList(items=items, total=len(items))


@router.get("/{task_type}/schema", responses={404: {"model": ErrorBody}})
def plugin_schema(
    principal: Viewer,  # noqa: ARG001
    task_type: Annotated[str, Path(max_length=300, description="A type name or alias")],
) -> dict[str, Any]:
    """The JSON Schema of one task type."""
    schema = task_schema(task_type)
    if schema is None:
        hint = suggest_task_type(task_type)
        raise NotFoundError(
            f"unknown task type {task_type}" + (f"; did you mean {hint}?" if hint else "")
        )
    return schema
