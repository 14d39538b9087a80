"""``flowplane_namespace_file``: a file in a namespace, which flows can read.

- **Content.** ``content`` is text (``file("scripts/etl.py")`` or a heredoc);
  ``content_base64`` carries any bytes (``filebase64("model.bin")``). Exactly
  one is set.
- **Drift.** The server answers a file's bytes and their sha256. ``read``
  keeps state's content while the sha256 matches it; otherwise it takes the
  server's bytes (as text when they are UTF-8), so the plan shows the
  difference and apply writes the configured file back. ``sha256`` and
  ``size`` are planned from the configuration, so they are known in the plan.
- **Import** ``<namespace>/<path>``: text when the bytes are UTF-8, else
  ``content_base64``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Any

from controlplane.terraform_provider.errors import ApiError
from controlplane.terraform_provider.framework import (
    UNKNOWN,
    Context,
    Diagnostics,
    Field,
    Kind,
    State,
    unknown_or_none,
)
from controlplane.terraform_provider.objects import ServerResource, with_pair_id
from controlplane.terraform_provider.schemas import namespace_field
from controlplane.terraform_provider.validators import both_set, file_path

if TYPE_CHECKING:
    from controlplane.terraform_provider.client import FlowplaneClient

_ONE_WAY = "They are two ways to give the file."

NAMESPACE_FILE_FIELDS = (
    Field("id", Kind.STRING, "`<namespace>/<path>`.", computed=True),
    namespace_field("file"),
    Field(
        "path",
        Kind.STRING,
        "Path inside the namespace, with `/` between folders, e.g. `scripts/etl.py`. "
        "Absolute paths, `..` and NUL are refused at plan time. Changing it replaces the file.",
        required=True,
        requires_replace=True,
        validators=(file_path,),
    ),
    Field(
        "content",
        Kind.STRING,
        'The file as text, stored as UTF-8; e.g. `file("${path.module}/scripts/etl.py")`. '
        "Set either `content` or `content_base64`.",
        optional=True,
    ),
    Field(
        "content_base64",
        Kind.STRING,
        'The file\'s bytes, base64-encoded, for binary files; e.g. `filebase64("model.bin")`.',
        optional=True,
    ),
    Field("sha256", Kind.STRING, "sha256 of the file's bytes (hex).", computed=True),
    Field("size", Kind.NUMBER, "Size of the file in bytes.", computed=True),
)


def file_bytes(state: State) -> bytes | None:
    """The bytes ``content`` or ``content_base64`` stands for; None when unknown or invalid."""
    content, encoded = state.get("content"), state.get("content_base64")
    if isinstance(content, str) and content is not UNKNOWN:
        return content.encode()
    if isinstance(encoded, str) and encoded is not UNKNOWN:
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error:
            return None
    return None


def file_state(body: dict[str, Any], prior: State | None) -> State:
    """Terraform state from the API's file; ``prior``'s content kept while its bytes match."""
    prior = prior or {}
    data = base64.b64decode(body["content_base64"])
    content, encoded = prior.get("content"), prior.get("content_base64")
    if file_bytes(prior) != data:
        content, encoded = _as_content(data, prefer_text=prior.get("content_base64") is None)
    namespace, path = body["namespace"], body["path"]
    return {
        "id": f"{namespace}/{path}",
        "namespace": namespace,
        "path": path,
        "content": content,
        "content_base64": encoded,
        "sha256": body["sha256"],
        "size": body["size"],
    }


def _as_content(data: bytes, *, prefer_text: bool) -> tuple[str | None, str | None]:
    """(content, content_base64) for ``data``: text when wanted and it is UTF-8."""
    if prefer_text:
        try:
            return data.decode(), None
        except UnicodeDecodeError:
            pass
    return None, base64.b64encode(data).decode()


class NamespaceFileResource(ServerResource):
    """CRUD, plan and import for ``flowplane_namespace_file``."""

    NAME = "namespace_file"
    DESCRIPTION = "A file in a namespace (Kestra's namespace files), which flows can read."
    FIELDS = NAMESPACE_FILE_FIELDS
    LABEL = "namespace file"
    IDENTITY = ("namespace", "path")
    MISSING = "file"
    IMPORT_EXAMPLE = "flowplane_namespace_file.etl platform.ops/scripts/etl.py"

    def validate(self, diags: Diagnostics, type_name: str, config: State) -> None:
        """The fields' checks; exactly one of ``content`` and ``content_base64``, valid base64."""
        super().validate(diags, type_name, config)
        content, encoded = config.get("content"), config.get("content_base64")
        if content is None and encoded is None:
            diags.add_error(
                "Set content or content_base64",
                'content takes text (file("...")); content_base64 takes bytes (filebase64("...")).',
                path=["content"],
            )
        elif (
            not both_set(diags, config, ("content", "content_base64"), _ONE_WAY, "content_base64")
            and not unknown_or_none(encoded)
            and file_bytes(config) is None
        ):
            diags.add_error(
                "content_base64 is not valid base64",
                "Use filebase64() or base64encode().",
                path=["content_base64"],
            )

    def modify_plan(
        self, ctx: Context, prior: State | None, planned: State, config: State
    ) -> State:
        """The id, sha256 and size follow the configuration, so the plan knows them."""
        del ctx, prior, config
        data = file_bytes(planned)
        return {
            **with_pair_id(planned, "namespace", "path"),
            "sha256": UNKNOWN if data is None else hashlib.sha256(data).hexdigest(),
            "size": UNKNOWN if data is None else len(data),
        }

    def fetch(self, client: FlowplaneClient, identity: State) -> dict[str, Any] | None:
        """The file with its bytes, or None."""
        return client.get_file(identity["namespace"], identity["path"])

    def remove(self, client: FlowplaneClient, identity: State) -> None:
        """DELETE the file."""
        client.delete_file(identity["namespace"], identity["path"])

    def to_state(self, body: dict[str, Any], prior: State | None) -> State:
        """``file_state``."""
        return file_state(body, prior)

    def import_identity(self, resource_id: str) -> State | None:
        """The first ``/`` ends the namespace: the path may hold more."""
        namespace, _, path = resource_id.partition("/")
        return {"namespace": namespace, "path": path} if namespace and path else None

    def put(self, client: FlowplaneClient, planned: State, current: State | None) -> State | None:
        """PUT the configured content; an existing file is overwritten."""
        del current
        namespace, path = planned["namespace"], planned["path"]
        content, encoded = planned.get("content"), planned.get("content_base64")
        request = {"content": content} if content is not None else {"content_base64": encoded}
        client.put_file(namespace, path, request)
        # The PUT answers metadata; state keeps the configured content.
        body = client.get_file(namespace, path)
        if body is None:
            raise ApiError("vanished")
        return file_state(body, planned)
