"""Write and Concat: make one stored file, from text or from other stored files."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from controlplane.domain.fields import Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.plugins.api import RunContext, TaskFailedError


class Write(TaskBase):
    """Write text into a stored file of the execution."""

    TYPE = "io.kestra.plugin.core.storage.Write"
    ALIASES = ("storage.Write",)
    OUTPUTS: ClassVar[Mapping[str, str]] = {"uri": "the stored file"}

    content: Text
    extension: Text | None = None  # with its dot, as Kestra: ".txt"

    def run(self, context: RunContext) -> dict[str, Any]:
        """Store the rendered content (UTF-8) as ``<task id><extension>``."""
        data = str(context.render(self.content)).encode()
        extension = str(context.render(self.extension)) if self.extension is not None else ".tmp"
        return {"uri": context.put_file(spool(context, data), f"{self.id}{extension}")}


class Concat(TaskBase):
    """Concatenate stored files into one, in order, with an optional separator after each."""

    TYPE = "io.kestra.plugin.core.storage.Concat"
    ALIASES = ("storage.Concat", "io.kestra.core.tasks.storages.Concat")
    OUTPUTS: ClassVar[Mapping[str, str]] = {"uri": "the concatenated file"}

    files: list[Text] | Text
    separator: Text | None = None
    extension: Text = ".tmp"

    def run(self, context: RunContext) -> dict[str, Any]:
        """Copy each file, then the separator (as Kestra does, after the last one too)."""
        separator = (
            str(context.render(self.separator)).encode() if self.separator is not None else b""
        )
        with tempfile.NamedTemporaryFile(dir=context.working_dir, delete=False) as out:
            for uri in self._uris(context):
                with context.open_file(uri) as source:
                    shutil.copyfileobj(source, out)
                out.write(separator)
        name = f"{self.id}{context.render(self.extension)}"
        return {"uri": context.put_file(Path(out.name), name)}

    def _uris(self, context: RunContext) -> list[str]:
        """``files`` as a list of URIs: a list, or one template rendering to a JSON list."""
        if isinstance(self.files, list):
            return [str(context.render(uri)) for uri in self.files]
        rendered = context.render(self.files)
        if isinstance(rendered, str):
            try:
                rendered = json.loads(rendered)
            except json.JSONDecodeError:
                raise TaskFailedError("files must render to a JSON list of file URIs") from None
        if not isinstance(rendered, list):
            raise TaskFailedError("files must render to a JSON list of file URIs")
        return [str(uri) for uri in rendered]


def spool(context: RunContext, data: bytes) -> Path:
    """``data`` in a new file of the working directory, ready for ``put_file``."""
    with tempfile.NamedTemporaryFile(dir=context.working_dir, delete=False) as out:
        out.write(data)
    return Path(out.name)
