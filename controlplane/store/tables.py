"""The database tables (SQLModel), shared by SQLite and PostgreSQL.

Flow revisions are immutable: rows are inserted, never updated. The ``flows``
row is a pointer to the active revision plus ownership, so activating a change
is one small update inside the same transaction that inserts the revision.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def _timestamp() -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class NamespaceRow(SQLModel, table=True):
    """A namespace and its metadata. Flows may exist before their namespace row."""

    __tablename__ = "namespaces"

    name: str = Field(primary_key=True, max_length=150)
    description: str | None = Field(default=None, sa_type=Text)
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    variables: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Caller namespaces (names or globs) whose flows may act in this one (Kestra's
    # ``allowedNamespaces``); empty means only flows of this namespace.
    allowed_namespaces: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    version: int = Field(default=1)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class FlowRow(SQLModel, table=True):
    """One flow's identity, owner and active revision."""

    __tablename__ = "flows"
    __table_args__ = (UniqueConstraint("namespace", "flow_id", name="uq_flows_namespace_flow_id"),)

    pk: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=150, index=True)
    flow_id: str = Field(max_length=100)
    revision: int
    deleted: bool = Field(default=False)
    origin: str = Field(max_length=200)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class FlowRevisionRow(SQLModel, table=True):
    """An immutable revision of a flow; a tombstone when ``deleted`` is true."""

    __tablename__ = "flow_revisions"
    __table_args__ = (
        UniqueConstraint("flow_pk", "revision", name="uq_flow_revisions_flow_revision"),
        Index("ix_flow_revisions_plan_id", "plan_id"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    flow_pk: int = Field(foreign_key="flows.pk")
    namespace: str = Field(max_length=150)
    flow_id: str = Field(max_length=100)
    revision: int
    deleted: bool = Field(default=False)
    source: str = Field(sa_type=Text)
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source_sha256: str = Field(max_length=64)
    spec_sha256: str = Field(max_length=64)
    origin: str = Field(max_length=200)
    git_commit_sha: str | None = Field(default=None, max_length=64)
    git_author: str | None = Field(default=None, max_length=300)
    git_message: str | None = Field(default=None, sa_type=Text)
    plan_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = _timestamp()
    created_by: str | None = Field(default=None, max_length=200)
    # Written by a rollback plan: ``git_commit_sha`` is the older commit it restored.
    rollback: bool = Field(default=False)
    # A flow converted from another format (``argo``) keeps that source byte for byte;
    # ``source`` then holds the converted flow.
    original_format: str | None = Field(default=None, max_length=20)
    original_path: str | None = Field(default=None, max_length=1000)
    original_source: str | None = Field(default=None, sa_type=Text)
    # The validator (``domain.plan.validator_fingerprint``) that computed ``spec`` from
    # ``source``, when a Git plan wrote it: a later plan with the same fingerprint
    # reuses ``spec`` for a byte-identical file instead of validating it again.
    spec_fingerprint: str | None = Field(default=None, max_length=64)


class ExecutionRow(SQLModel, table=True):
    """One run of a flow, pinned to the revision that was active at creation.

    ``git_commit_sha`` and ``plan_id`` are copied from that revision, so the
    lineage of a run never changes afterwards. ``lease_owner`` and
    ``lease_expires_at`` say which worker runs it and until when its claim holds.
    """

    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_state_lease", "state", "lease_expires_at"),
        # The claim reads queued runs oldest first, and parked runs by wake time.
        Index("ix_executions_state_created", "state", "created_at"),
        Index("ix_executions_state_wake", "state", "wake_at"),
        Index("ix_executions_flow", "namespace", "flow_id"),
    )

    id: str = Field(primary_key=True, max_length=36)
    namespace: str = Field(max_length=150)
    flow_id: str = Field(max_length=100)
    flow_revision: int
    revision_pk: int = Field(foreign_key="flow_revisions.pk")
    git_commit_sha: str | None = Field(default=None, max_length=64)
    plan_id: str | None = Field(default=None, max_length=64)
    origin: str = Field(max_length=200)
    trigger: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    outputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(max_length=20)
    state_history: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    takeovers: int = Field(default=0)
    # Copied from the flow's `concurrency.limit`: at most this many of the flow's
    # runs hold a worker at once; the rest wait in the queue.
    concurrency_limit: int | None = Field(default=None)
    # A timed Pause sets this; the worker queues the run again once it passes.
    wake_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = _timestamp()
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class TaskRunRow(SQLModel, table=True):
    """One attempt-carrying run of one task (per loop value) in an execution."""

    __tablename__ = "task_runs"
    __table_args__ = (
        UniqueConstraint("execution_id", "task_id", "value_key", name="uq_task_runs_key"),
    )

    id: str = Field(primary_key=True, max_length=36)
    execution_id: str = Field(foreign_key="executions.id", index=True, max_length=36)
    task_id: str = Field(max_length=100)
    task_type: str = Field(max_length=200)
    parent_id: str | None = Field(default=None, max_length=36)
    # The loop values leading to this run, joined; "" outside loops.
    value_key: str = Field(default="", sa_type=Text)
    value: str | None = Field(default=None, sa_type=Text)
    attempt: int = Field(default=1)
    state: str = Field(max_length=20)
    outputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    resumed_by: str | None = Field(default=None, max_length=200)
    resumed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    started_at: datetime = _timestamp()
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class LogRow(SQLModel, table=True):
    """One log line of a task run; secret values are masked before it is written."""

    __tablename__ = "logs"

    pk: int | None = Field(default=None, primary_key=True)
    execution_id: str = Field(foreign_key="executions.id", index=True, max_length=36)
    task_run_id: str | None = Field(default=None, max_length=36)
    task_id: str | None = Field(default=None, max_length=100)
    level: str = Field(max_length=10)
    message: str = Field(sa_type=Text)
    timestamp: datetime = _timestamp()


class TriggerFireRow(SQLModel, table=True):
    """One firing of a Schedule trigger; the unique key makes each fire happen once.

    Two schedulers computing the same due time both try to insert this row in
    the transaction that creates the execution; only one commits.
    """

    __tablename__ = "trigger_fires"
    __table_args__ = (
        UniqueConstraint(
            "namespace", "flow_id", "trigger_id", "scheduled_at", name="uq_trigger_fires_once"
        ),
    )

    pk: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=150)
    flow_id: str = Field(max_length=100)
    trigger_id: str = Field(max_length=100)
    scheduled_at: datetime = Field(sa_type=DateTime(timezone=True))
    execution_id: str = Field(foreign_key="executions.id", max_length=36)
    fired_at: datetime = _timestamp()


class GitSourceRow(SQLModel, table=True):
    """A Git repository whose flows Flowplane keeps active (origin ``git:<id>``)."""

    __tablename__ = "git_sources"

    id: str = Field(primary_key=True, max_length=100)
    url: str = Field(sa_type=Text)
    branch: str = Field(default="main", max_length=200)
    flows_path: str = Field(default="flows/", max_length=300)
    secrets_path: str = Field(default="secrets/", max_length=300)
    poll_interval_seconds: int = Field(default=60)
    # Plaintext from before migration 0011 only; encrypted and cleared on first use.
    webhook_secret: str | None = Field(default=None, max_length=500)
    # Write-only: the webhook signing secret, age-encrypted to the server identity.
    webhook_secret_ciphertext: bytes | None = Field(default=None)
    # Write-only: ``user:password`` taken out of an https URL, sealed like the webhook secret.
    url_credentials_ciphertext: bytes | None = Field(default=None)
    approval: str = Field(default="auto", max_length=20)
    required_approvals: int = Field(default=1)
    prune: bool = Field(default=False)
    self_heal: bool = Field(default=False)
    # Policy for a flow another origin (another source, terraform, api) owns:
    # false makes it a plan problem, true an explicit ``take_over`` action.
    take_over: bool = Field(default=False)
    # The namespaces its flows live in (and its latest plan names): scoped
    # tokens see a source only through these.
    namespaces: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    last_commit: str | None = Field(default=None, max_length=64)
    version: int = Field(default=1)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    # Soft delete: plans and revisions keep pointing at the source for lineage.
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class PlanRow(SQLModel, table=True):
    """A computed plan: the changes one commit would make, and its review status."""

    __tablename__ = "plans"
    __table_args__ = (
        Index("ix_plans_source_status", "source_id", "status"),
        # Repeated webhooks for one commit make one sync plan; heal, rollback and
        # local plans have no dedup key, so a commit can be planned again that way.
        UniqueConstraint("source_id", "dedup_key", name="uq_plans_source_dedup_key"),
    )

    id: str = Field(primary_key=True, max_length=36)
    source_id: str = Field(foreign_key="git_sources.id", max_length=100)
    base_commit: str | None = Field(default=None, max_length=64)
    target_commit: str = Field(max_length=64)
    author: str | None = Field(default=None, max_length=300)
    author_email: str | None = Field(default=None, max_length=300)
    committer: str | None = Field(default=None, max_length=300)
    message: str | None = Field(default=None, sa_type=Text)
    status: str = Field(max_length=20)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    changes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    problems: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    text: str = Field(default="", sa_type=Text)
    created_at: datetime = _timestamp()
    decided_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # sync (a new commit), heal (self_heal correcting drift), rollback or local (--watch).
    kind: str = Field(default="sync", max_length=20)
    dedup_key: str | None = Field(default=None, max_length=64)
    # Who asked for a rollback; like the commit's author, they cannot approve it.
    requested_by: str | None = Field(default=None, max_length=200)
    # Per namespace and key: the action only, never a value or a hash of one.
    secret_changes: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # namespace -> key -> new value age-encrypted to the server (base64); never returned.
    secret_payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    # Who asked for the plan (a token, "git" for the poller, "webhook"); the
    # commit's author is a separate field.
    created_by: str | None = Field(default=None, max_length=200)
    # Why a plan failed or was superseded (stale, crashed apply, conflict).
    status_reason: str | None = Field(default=None, sa_type=Text)
    # Authors and committers (name, email) of every commit in base..target:
    # none of them may approve (four-eyes).
    commit_identities: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # "namespace/flow_id" -> [live revision, owner origin] or None, for every
    # flow the plan touches, as seen when it was computed; apply refuses a plan
    # whose basis moved (stale).
    basis: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ApprovalRow(SQLModel, table=True):
    """One reviewer's decision on a plan."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("plan_id", "actor", name="uq_approvals_plan_actor"),)

    pk: int | None = Field(default=None, primary_key=True)
    plan_id: str = Field(foreign_key="plans.id", max_length=36, index=True)
    actor: str = Field(max_length=200)
    decision: str = Field(max_length=10)
    comment: str | None = Field(default=None, sa_type=Text)
    decided_at: datetime = _timestamp()


class WebhookDeliveryRow(SQLModel, table=True):
    """A push delivery already handled; a repeated delivery id is ignored."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("source_id", "delivery_id", name="uq_webhook_deliveries_once"),
    )

    pk: int | None = Field(default=None, primary_key=True)
    source_id: str = Field(foreign_key="git_sources.id", max_length=100)
    delivery_id: str = Field(max_length=200)
    received_at: datetime = _timestamp()


class SecretRow(SQLModel, table=True):
    """A namespace secret, age-encrypted at rest to the server's identity.

    The value never leaves the server in any API response; ``version`` grows
    with every change so clients (Terraform) can see out-of-band rotation.
    """

    __tablename__ = "secrets"

    namespace: str = Field(primary_key=True, max_length=150)
    key: str = Field(primary_key=True, max_length=200)
    ciphertext: bytes
    description: str | None = Field(default=None, sa_type=Text)
    origin: str = Field(default="api", max_length=200)
    version: int = Field(default=1)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class AuditEventRow(SQLModel, table=True):
    """One mutation, append-only; ``hash`` covers the event and the previous hash.

    Editing or deleting any row breaks the chain from that row on, which
    ``verify_chain`` reports by position.
    """

    __tablename__ = "audit_events"

    pk: int | None = Field(default=None, primary_key=True)
    at: datetime = _timestamp()
    actor: str = Field(max_length=200)
    action: str = Field(max_length=100, index=True)
    target: str = Field(max_length=400)
    request_id: str | None = Field(default=None, max_length=64)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class ApiTokenRow(SQLModel, table=True):
    """A bearer token: only the sha256 of its secret is kept, so the store cannot leak it."""

    __tablename__ = "api_tokens"

    id: str = Field(primary_key=True, max_length=40)
    # Unique among live tokens only (checked by the service), so a revoked
    # token's name can be reused when Terraform replaces it.
    name: str = Field(max_length=200, index=True)
    role: str = Field(max_length=20)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret_sha256: str = Field(max_length=64, unique=True)
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = _timestamp()
    created_by: str | None = Field(default=None, max_length=200)
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    # Verified e-mail addresses of the person holding the token, set by an
    # admin; four-eyes review compares them with commit authors and committers.
    identities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class UiSessionRow(SQLModel, table=True):
    """A signed-in UI session; signing out ends it here, so a copied cookie stops working."""

    __tablename__ = "ui_sessions"

    id: str = Field(primary_key=True, max_length=64)
    token_id: str = Field(max_length=40, index=True)
    created_at: datetime = _timestamp()
    ended_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class AuditCheckpointRow(SQLModel, table=True):
    """A signed statement of the audit chain's head: its position, hash and length.

    Deleting the last events, or rewriting the chain, no longer matches the
    latest checkpoint, whose signature only the server's key can make.
    """

    __tablename__ = "audit_checkpoints"

    pk: int | None = Field(default=None, primary_key=True)
    at: datetime = _timestamp()
    position: int  # pk of the head event (0: the chain was empty)
    head_hash: str = Field(max_length=64)
    events: int
    algorithm: str = Field(max_length=20)
    key_id: str = Field(max_length=100)
    signature: str = Field(max_length=200)


class KvEntryRow(SQLModel, table=True):
    """One key of a namespace's key-value store (Kestra's ``kv`` tasks).

    ``expires_at`` comes from a ``ttl``; an expired entry reads as missing.
    """

    __tablename__ = "kv_entries"

    namespace: str = Field(primary_key=True, max_length=150)
    key: str = Field(primary_key=True, max_length=300)
    value: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    description: str | None = Field(default=None, sa_type=Text)
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class ServerKeyRow(SQLModel, table=True):
    """The server's public age recipient, so any process can seal values to it.

    Creating an execution only needs the public key (to seal SECRET inputs);
    only processes holding the identity file can open them.
    """

    __tablename__ = "server_keys"

    name: str = Field(primary_key=True, max_length=40)
    recipient: str = Field(max_length=200)
    updated_at: datetime = _timestamp()
