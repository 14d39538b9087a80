"""The HTTP download task: the answer's body becomes a file of the execution."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import Field

from controlplane.domain.fields import DynBool, Text
from controlplane.domain.tasktypes.base import TaskBase
from controlplane.domain.tasktypes.http import HttpOptions
from controlplane.plugins.api import RunContext, TaskFailedError
from controlplane.plugins.flow.values import truthy
from controlplane.plugins.http.client import check_size, header_lists, max_content_length, stream

_CHUNK = 1024 * 1024


class Download(TaskBase):
    """Download a file over HTTP into the execution's stored files."""

    TYPE = "io.kestra.plugin.core.http.Download"
    ALIASES = ("http.Download", "io.kestra.plugin.fs.http.Download")
    OUTPUTS: ClassVar[Mapping[str, str]] = {
        "uri": "the stored file",
        "code": "the status code",
        "headers": "the response headers (each a list of values)",
        "length": "how many bytes the file holds",
    }

    uri: Text
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    headers: dict[str, Text] = Field(default_factory=dict)
    body: Text | None = None
    formData: dict[str, Any] | None = None  # noqa: N815 - Kestra's field name
    contentType: Text | None = None  # noqa: N815
    options: HttpOptions | None = None
    allowFailed: DynBool = False  # noqa: N815
    failOnEmptyResponse: DynBool = True  # noqa: N815
    saveAs: Text | None = None  # noqa: N815

    def run(self, context: RunContext) -> dict[str, Any]:
        """Stream the body into a file, check its length, and store it."""
        with tempfile.NamedTemporaryFile(dir=context.working_dir, delete=False) as spool:
            part = Path(spool.name)
            try:
                limit = max_content_length(self, context)
                with stream(self, context) as response:
                    size = _copy(response, spool.write, lambda size: check_size(size, limit, self))
                    _check_length(response, size, self.method)
                    code, headers = response.status_code, header_lists(response)
                    name = self._file_name(context, response)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        if size == 0:
            allowed = truthy(context.render(self.allowFailed)) or bool(
                self.options and truthy(context.render(self.options.allowFailed))
            )
            if truthy(context.render(self.failOnEmptyResponse)) and not allowed:
                part.unlink(missing_ok=True)
                raise TaskFailedError(f"no response from server: {self.method} {self.uri} is empty")
            context.log("WARN", f"the file downloaded from {self.uri} is empty")
        uri = context.put_file(part, name)
        context.log("DEBUG", f"downloaded {size} bytes into {name}")
        return {"uri": uri, "code": code, "headers": headers, "length": size}

    def _file_name(self, context: RunContext, response: httpx.Response) -> str:
        """``saveAs``, else the name Content-Disposition gives, else the URL's last segment."""
        if self.saveAs is not None:
            name = str(context.render(self.saveAs))
            if not _safe(name):
                raise TaskFailedError(f"saveAs {name!r} must be a file name, without folders")
            return name
        offered = _disposition_name(response.headers.get("Content-Disposition", ""))
        if offered and _safe(offered):
            return offered
        last = unquote(urlsplit(str(response.url)).path.rsplit("/", 1)[-1])
        return last if _safe(last) else f"{self.id}.tmp"


def _copy(response: httpx.Response, write: Any, check: Callable[[int], None]) -> int:
    """Write the decoded body through ``write``, ``check``-ing the size so far; its size."""
    size = 0
    for chunk in response.iter_bytes(_CHUNK):
        size += len(chunk)
        check(size)
        write(chunk)
    return size


def _check_length(response: httpx.Response, size: int, method: str) -> None:
    """A body shorter or longer than its Content-Length was cut, or is not what was sent."""
    declared = response.headers.get("Content-Length")
    # HEAD answers carry the length of a body they do not send; a compressed body's
    # length is its compressed size, not the size of the decoded bytes kept.
    encoded = response.headers.get("Content-Encoding", "identity") != "identity"
    if declared is None or method == "HEAD" or encoded or not declared.isdigit():
        return
    if int(declared) != size:
        raise TaskFailedError(f"invalid size: got {size} bytes, Content-Length says {declared}")


_FILENAME = re.compile(r"""filename\*?\s*=\s*(?:[\w-]+'[\w-]*')?("?)([^";]+)\1""", re.IGNORECASE)


def _disposition_name(header: str) -> str | None:
    """The file name a Content-Disposition header offers (``filename*`` wins), if any."""
    found = None
    for part in header.split(";"):
        match = _FILENAME.search(part.strip())
        if match is None:
            continue
        value = unquote(match.group(2).strip())
        if part.strip().lower().startswith("filename*") or found is None:
            found = value
    # A name with folders keeps its last part: the server must not choose where it lands.
    return found.replace("\\", "/").rsplit("/", 1)[-1] if found else None


def _safe(name: str) -> bool:
    return bool(name) and name not in {".", ".."} and "/" not in name and "\0" not in name
