"""Size, Delete and PurgeCurrentExecutionFiles: look at and remove stored files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import field_validator

from controlplane.domain.fields import DynBool, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.flow.values import truthy


class Size(TaskBase):
    """Output the size, in bytes, of a stored file."""

    TYPE = "io.kestra.plugin.core.storage.Size"
    ALIASES = ("storage.Size", "io.kestra.core.tasks.storages.Size")
    OUTPUTS: ClassVar[Mapping[str, str]] = {"size": "the file's size in bytes"}

    uri: Text

    def run(self, context: RunContext) -> dict[str, Any]:
        """The size of the file ``uri`` names."""
        with context.open_file(str(context.render(self.uri))) as handle:
            return {"size": os.fstat(handle.fileno()).st_size}


class Delete(TaskBase):
    """Delete a stored file of this execution."""

    TYPE = "io.kestra.plugin.core.storage.Delete"
    ALIASES = ("storage.Delete", "io.kestra.core.tasks.storages.Delete")
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "uri": "the file named",
        "deleted": "whether it existed and was deleted",
    }

    uri: Text
    errorOnMissing: DynBool = False  # noqa: N815 - Kestra's field name

    def run(self, context: RunContext) -> dict[str, Any]:
        """Delete the file; a missing one fails only with ``errorOnMissing``."""
        uri = str(context.render(self.uri))
        deleted = context.delete_file(uri)
        if not deleted and truthy(context.render(self.errorOnMissing)):
            raise TaskFailedError(f"unable to find file {uri!r}")
        return {"uri": uri, "deleted": deleted}


def _only_false(name: str) -> Any:
    def check(value: Any) -> Any:
        if value is not False:
            raise ValueError(
                f"{name} is not supported: Flowplane purges only the files this execution stored"
            )
        return value

    return field_validator(name, mode="before")(check)


class PurgeCurrentExecutionFiles(TaskBase):
    """Delete every file this execution's tasks stored so far."""

    TYPE = "io.kestra.plugin.core.storage.PurgeCurrentExecutionFiles"
    ALIASES = (
        "storage.PurgeCurrentExecutionFiles",
        "io.kestra.plugin.core.storage.PurgeExecution",
        "io.kestra.core.tasks.storages.PurgeExecution",
    )
    OUTPUTS: ClassVar[Mapping[str, str]] = {"uris": "the deleted files"}

    includeChildExecutions: bool = False  # noqa: N815 - Kestra's field name
    includeStates: bool = False  # noqa: N815

    _no_children = _only_false("includeChildExecutions")
    _no_states = _only_false("includeStates")

    def run(self, context: RunContext) -> dict[str, Any]:
        """Delete the stored files (``*/output-files``); working directories stay."""
        deleted = context.purge_files()
        context.log("INFO", f"purged {len(deleted)} stored files")
        return {"uris": deleted}
