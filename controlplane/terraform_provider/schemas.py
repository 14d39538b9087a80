"""Attribute lists of every type, and the mapping from API bodies to state.

Pure: no IO, no `tf`. The mappings are where Terraform's view of "unchanged"
is decided, so they are kept together and tested directly.
"""

from __future__ import annotations

import json
import re
from typing import Any

from controlplane.domain.fields import NAMESPACE_PATTERN
from controlplane.terraform_provider.framework import Field, Kind, State
from controlplane.terraform_provider.validators import FLOW_ID, NAMESPACE_NAME, SECRET_KEY, named

_NAME = "Dotted namespace name, e.g. `platform.ops`."
_DESCRIPTION = "Free text shown in the Flowplane UI."
_LABELS = "Labels (string to string), for filtering and ownership."
_VARIABLES = (
    "Namespace variables available to flows. Values are strings in Terraform; "
    "a value set through the API as a number or an object is shown as JSON text."
)
_ALLOWED = (
    "Namespaces whose flows may act in this one (Subflow, KV, Resume, log fetch, "
    "flow triggers): names, or globs where `*` stands for any run of characters, "
    "such as `team.*` or `*`. The namespace's own flows always may."
)
_ALLOWED_WRITE = (
    f"{_ALLOWED} Declarative: leaving it out means none (`[]`), so a list set "
    "outside Terraform shows up in the plan and is emptied by apply."
)
# As the API's NamespaceGlob (controlplane/api/schemas.py), which refuses longer values.
_MAX_NAMESPACE_LENGTH = 150
_CONTENT = (
    "The flow's YAML, stored byte for byte. Prefer `file()` so that the YAML stays "
    "a file your editor and `flowplane validate` understand."
)
_REVISION = "The flow's revision number; every write that changes the source adds one."
_SHA256 = "sha256 of the content as UTF-8 bytes."
_SPEC_SHA256 = "sha256 of the normalized flow: equal values mean the same flow."
_ORIGIN = "Who wrote the current revision: `terraform`, `api` or `git:<source>`."
_ETAG = (
    "The ETag Terraform read last. Updates send it as If-Match, so a change made on "
    "the server after the plan is refused (HTTP 412) instead of overwritten."
)


def namespace_field(thing: str) -> Field:
    """The required ``namespace`` of an object that lives in one; a change replaces ``thing``."""
    return Field(
        "namespace",
        Kind.STRING,
        f"{_NAME} Changing it replaces the {thing}.",
        required=True,
        requires_replace=True,
        validators=(NAMESPACE_NAME,),
    )


NAMESPACE_FIELDS = (
    Field("id", Kind.STRING, "The namespace's name.", computed=True),
    Field(
        "name",
        Kind.STRING,
        f"{_NAME} Changing it replaces the namespace.",
        required=True,
        requires_replace=True,
        validators=(named("name", NAMESPACE_NAME),),
    ),
    Field("description", Kind.STRING, _DESCRIPTION, optional=True),
    Field("labels", Kind.STRING_MAP, _LABELS, optional=True),
    Field("variables", Kind.STRING_MAP, _VARIABLES, optional=True),
    Field("allowed_namespaces", Kind.STRING_LIST, _ALLOWED_WRITE, optional=True),
    Field("etag", Kind.STRING, _ETAG, computed=True),
)

NAMESPACE_DATA_FIELDS = (
    Field("id", Kind.STRING, "The namespace's name.", computed=True),
    Field("name", Kind.STRING, _NAME, required=True),
    Field("description", Kind.STRING, _DESCRIPTION, computed=True),
    Field("labels", Kind.STRING_MAP, _LABELS, computed=True),
    Field("variables", Kind.STRING_MAP, _VARIABLES, computed=True),
    Field("allowed_namespaces", Kind.STRING_LIST, _ALLOWED, computed=True),
)

FLOW_FIELDS = (
    Field("id", Kind.STRING, "`<namespace>/<flow_id>`.", computed=True),
    Field(
        "namespace",
        Kind.STRING,
        "The flow's namespace. Read from the content when unset; a change replaces the flow.",
        optional=True,
        computed=True,
        requires_replace=True,
        validators=(NAMESPACE_NAME,),
    ),
    Field(
        "flow_id",
        Kind.STRING,
        "The flow's id. Read from the content when unset; a change replaces the flow.",
        optional=True,
        computed=True,
        requires_replace=True,
        validators=(FLOW_ID,),
    ),
    Field("content", Kind.STRING, _CONTENT, required=True),
    Field("revision", Kind.NUMBER, _REVISION, computed=True),
    Field("sha256", Kind.STRING, _SHA256, computed=True),
    Field("spec_sha256", Kind.STRING, _SPEC_SHA256, computed=True),
    Field("origin", Kind.STRING, _ORIGIN, computed=True),
    Field("etag", Kind.STRING, _ETAG, computed=True),
)

FLOW_DATA_FIELDS = (
    Field("id", Kind.STRING, "`<namespace>/<flow_id>`.", computed=True),
    Field("namespace", Kind.STRING, "The flow's namespace.", required=True),
    Field("flow_id", Kind.STRING, "The flow's id.", required=True),
    Field("content", Kind.STRING, "The flow's YAML as stored.", computed=True),
    Field("revision", Kind.NUMBER, _REVISION, computed=True),
    Field("sha256", Kind.STRING, _SHA256, computed=True),
    Field("spec_sha256", Kind.STRING, _SPEC_SHA256, computed=True),
    Field("origin", Kind.STRING, _ORIGIN, computed=True),
)

EXECUTION_DATA_FIELDS = (
    Field("id", Kind.STRING, "The execution's id.", required=True),
    Field("namespace", Kind.STRING, "The flow's namespace.", computed=True),
    Field("flow_id", Kind.STRING, "The flow's id.", computed=True),
    Field(
        "flow_revision",
        Kind.NUMBER,
        "The flow revision the run is pinned to (the one active when it was created).",
        computed=True,
    ),
    Field(
        "state",
        Kind.STRING,
        "The run's state now, e.g. `CREATED`, `RUNNING`, `PAUSED`, `SUCCESS`, `FAILED`.",
        computed=True,
    ),
    Field("origin", Kind.STRING, f"{_ORIGIN} Copied from the revision.", computed=True),
    Field(
        "git_commit_sha",
        Kind.STRING,
        "The Git commit the revision came from; null unless a Git source wrote it.",
        computed=True,
    ),
    Field(
        "plan_id",
        Kind.STRING,
        "The GitOps plan that activated the revision; null unless a Git source wrote it.",
        computed=True,
    ),
    Field("labels", Kind.STRING_MAP, "The run's labels.", computed=True),
    Field("created_at", Kind.STRING, "When the run was created (RFC 3339).", computed=True),
    Field(
        "ended_at", Kind.STRING, "When the run ended (RFC 3339); null while it runs.", computed=True
    ),
)

SECRET_FIELDS = (
    Field("id", Kind.STRING, "`<namespace>/<key>`.", computed=True),
    namespace_field("secret"),
    Field(
        "key",
        Kind.STRING,
        "The secret's key, e.g. `DB_PASSWORD`. Changing it replaces the secret.",
        required=True,
        requires_replace=True,
        validators=(SECRET_KEY,),
    ),
    Field(
        "value",
        Kind.STRING,
        "The secret value. Sensitive: redacted in plans, but **stored in Terraform state** "
        "and plan files. Prefer `value_wo`. The server never returns it.",
        optional=True,
        sensitive=True,
    ),
    Field(
        "value_wo",
        Kind.STRING,
        "The secret value, write-only (Terraform 1.11+): sent to the server, never stored "
        "in state or plan files. Terraform cannot see a change of it: bump "
        "`value_wo_version` to write a new value. Set either `value` or `value_wo`.",
        optional=True,
        sensitive=True,
        write_only=True,
    ),
    Field(
        "value_wo_version",
        Kind.NUMBER,
        "Any number; changing it writes `value_wo` again (rotation). Stored in state.",
        optional=True,
    ),
    Field("description", Kind.STRING, _DESCRIPTION, optional=True),
    Field(
        "version",
        Kind.NUMBER,
        "The server's version of the secret; it grows with every change, so a value "
        "rotated outside Terraform shows up as a planned update.",
        computed=True,
    ),
)


def secret_state(body: dict[str, Any], value: str | None, wo_version: float | None = None) -> State:
    """Terraform state from the API's secret metadata; the value comes from Terraform.

    ``value`` is None when Terraform does not know the value the server holds
    (after an import, or once the server's version moved on): the configured
    value then differs, and the next plan writes it.
    """
    namespace, key = body["namespace"], body["key"]
    return {
        "id": f"{namespace}/{key}",
        "namespace": namespace,
        "key": key,
        "value": value,
        "value_wo": None,
        "value_wo_version": wo_version,
        "description": body.get("description"),
        "version": body["version"],
    }


def flow_state(body: dict[str, Any], content: str | None) -> State:
    """Terraform state from the API's flow body; ``content`` overrides the server's copy."""
    namespace, flow_id = body["namespace"], body["id"]
    return {
        "id": f"{namespace}/{flow_id}",
        "namespace": namespace,
        "flow_id": flow_id,
        "content": body["content"] if content is None else content,
        "revision": body["revision"],
        "sha256": body["sha256"],
        "spec_sha256": body["spec_sha256"],
        "origin": body["origin"],
    }


def execution_state(body: dict[str, Any]) -> State:
    """Terraform state from the API's execution body; label values as strings."""
    return {
        "id": body["id"],
        "namespace": body["namespace"],
        "flow_id": body["flow_id"],
        "flow_revision": body["flow_revision"],
        "state": body["state"],
        "origin": body["origin"],
        "git_commit_sha": body.get("git_commit_sha"),
        "plan_id": body.get("plan_id"),
        "labels": {key: _as_string(value) for key, value in (body.get("labels") or {}).items()},
        "created_at": body.get("created_at"),
        "ended_at": body.get("ended_at"),
    }


def with_etag(state: State, body: dict[str, Any]) -> State:
    """A resource's state with the ETag the server sent alongside ``body``."""
    return {**state, "etag": body.get("etag")}


def namespace_state(body: dict[str, Any], prior: State | None) -> State:
    """Terraform state from the API's namespace body, keeping ``prior``'s unset values.

    The server answers ``{}`` for labels and variables, ``[]`` for allowed
    namespaces and null for the description when none were set. Where Terraform
    had the attribute unset (null) or empty, that answer is not a change, so
    ``prior``'s value is kept.
    """
    prior = prior or {}
    variables = {key: _as_string(value) for key, value in (body.get("variables") or {}).items()}
    return {
        "id": body["name"],
        "name": body["name"],
        "description": _keep_unset(body.get("description"), prior.get("description")),
        "labels": _keep_unset(dict(body.get("labels") or {}), prior.get("labels")),
        "variables": _keep_unset(variables, prior.get("variables")),
        "allowed_namespaces": _keep_unset(
            list(body.get("allowed_namespaces") or []), prior.get("allowed_namespaces")
        ),
    }


def namespace_body(planned: State) -> dict[str, Any]:
    """The PUT body: every attribute, since a PUT replaces them all."""
    return {
        "description": planned.get("description"),
        "labels": planned.get("labels") or {},
        "variables": planned.get("variables") or {},
        "allowed_namespaces": planned.get("allowed_namespaces") or [],
    }


def namespace_glob_problem(value: str) -> str | None:
    """Why ``value`` is not a namespace name or glob, or None when it is one.

    The API's rule (``NamespaceGlob``): each ``*`` stands in for one valid
    character, so ``team.*`` and ``*`` pass while ``?``, character classes,
    spaces and capitals do not. Checked at plan time so a typo fails the plan,
    not the apply.
    """
    if len(value) > _MAX_NAMESPACE_LENGTH:
        return f"It is {len(value)} characters long; the limit is {_MAX_NAMESPACE_LENGTH}."
    if not re.fullmatch(NAMESPACE_PATTERN, value.replace("*", "a")):
        return (
            f"Got {value!r}. Use lowercase letters, digits, '.', '_' and '-', starting "
            "with a letter or digit; '*' stands for any run of characters, "
            "as in 'team.*' or '*'."
        )
    return None


def _keep_unset(server: Any, prior: Any) -> Any:
    if not server and not prior:
        return prior
    return server


def _as_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
