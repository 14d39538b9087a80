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
from typing import Any

from controlplane.terraform_provider.framework import (
    UNKNOWN,
    Context,
    Diagnostics,
    Field,
    Kind,
    State,
    unknown_or_none,
)
from controlplane.terraform_provider.objects import TerraformObject
from controlplane.terraform_provider.reporting import reporting
from controlplane.terraform_provider.validators import NAMESPACE_NAME, file_path

NAMESPACE_FILE_FIELDS = (
    Field("id", Kind.STRING, "`<namespace>/<path>`.", computed=True),
    Field(
        "namespace",
        Kind.STRING,
        "Dotted namespace name, e.g. `platform.ops`. Changing it replaces the file.",
        required=True,
        requires_replace=True,
        validators=(NAMESPACE_NAME,),
    ),
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


class NamespaceFileResource(TerraformObject):
    """CRUD, plan and import for ``flowplane_namespace_file``."""

    NAME = "namespace_file"
    DESCRIPTION = "A file in a namespace (Kestra's namespace files), which flows can read."
    FIELDS = NAMESPACE_FILE_FIELDS
    SERVER_TRACKED = True

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
        elif content is not None and encoded is not None:
            diags.add_error(
                "Set only one of content and content_base64",
                "They are two ways to give the file.",
                path=["content_base64"],
            )
        elif not unknown_or_none(encoded) and file_bytes(config) is None:
            diags.add_error(
                "content_base64 is not valid base64",
                "Use filebase64() or base64encode().",
                path=["content_base64"],
            )

    def plan(self, ctx: Context, current: State | None, planned: State) -> State:
        """`tf`'s hook, left as is: ``PlanningServicer`` calls ``modify_plan`` instead."""
        del ctx, current
        return planned

    def modify_plan(
        self, ctx: Context, prior: State | None, planned: State, config: State
    ) -> State:
        """The id, sha256 and size follow the configuration, so the plan knows them."""
        del ctx, prior, config
        namespace, path = planned.get("namespace"), planned.get("path")
        known = isinstance(namespace, str) and isinstance(path, str)
        data = file_bytes(planned)
        return {
            **planned,
            "id": f"{namespace}/{path}" if known else UNKNOWN,
            "sha256": UNKNOWN if data is None else hashlib.sha256(data).hexdigest(),
            "size": UNKNOWN if data is None else len(data),
        }

    def create(self, ctx: Context, planned: State) -> State | None:
        """PUT the file; an existing one is overwritten."""
        return self._put(ctx, "create", planned)

    def read(self, ctx: Context, current: State) -> State | None:
        """The file as the server has it; None (recreate) when it is gone."""
        namespace, path = current["namespace"], current["path"]
        with reporting(ctx.diagnostics, f"read namespace file {namespace}/{path}"):
            body = self.provider.require_client().get_file(namespace, path)
            return None if body is None else file_state(body, current)
        return current

    def update(self, ctx: Context, current: State, planned: State) -> State | None:
        """PUT the configured content."""
        del current
        return self._put(ctx, "update", planned)

    def delete(self, ctx: Context, current: State) -> None:
        """DELETE the file; one already gone is not an error."""
        namespace, path = current["namespace"], current["path"]
        with reporting(ctx.diagnostics, f"delete namespace file {namespace}/{path}"):
            self.provider.require_client().delete_file(namespace, path)

    def import_(self, ctx: Context, resource_id: str) -> State | None:
        """``terraform import flowplane_namespace_file.x <namespace>/<path>``."""
        namespace, _, path = resource_id.partition("/")
        if not namespace or not path:
            ctx.diagnostics.add_error(
                f"import namespace file {resource_id!r}: expected <namespace>/<path>",
                "For example: terraform import flowplane_namespace_file.etl "
                "platform.ops/scripts/etl.py",
            )
            return None
        with reporting(ctx.diagnostics, f"import namespace file {resource_id}"):
            body = self.provider.require_client().get_file(namespace, path)
            if body is None:
                ctx.diagnostics.add_error(
                    f"import namespace file {resource_id}: no such file on the server"
                )
                return None
            return file_state(body, None)
        return None

    def upgrade(self, ctx: Context, version: int, old: State) -> State:
        """Schema version 0 is the only one so far: the state is kept as is."""
        del ctx, version
        return old

    def _put(self, ctx: Context, action: str, planned: State) -> State | None:
        namespace, path = planned["namespace"], planned["path"]
        with reporting(ctx.diagnostics, f"{action} namespace file {namespace}/{path}"):
            content, encoded = planned.get("content"), planned.get("content_base64")
            request = {"content": content} if content is not None else {"content_base64": encoded}
            client = self.provider.require_client()
            client.put_file(namespace, path, request)
            # The PUT answers metadata; state keeps the configured content.
            body = client.get_file(namespace, path)
            if body is None:
                ctx.diagnostics.add_error(f"{action} namespace file {namespace}/{path}: vanished")
                return None
            return file_state(body, planned)
        return None
