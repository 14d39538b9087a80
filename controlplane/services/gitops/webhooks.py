"""Signed push webhooks from GitHub, GitLab and Gitea.

The signature is checked against the raw body before anything is parsed or
stored. Pushes to other branches are ignored, and a repeated delivery id
changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from controlplane.errors import InvalidRequestError, NotFoundError, StoreError, UnauthorizedError
from controlplane.services.gitops.plans import sync_source
from controlplane.services.gitops.sources import seal_webhook_secrets, webhook_secret_of
from controlplane.services.secrets import Keyring, load_keyring
from controlplane.store.db import transaction
from controlplane.store.tables import GitSourceRow, PlanRow, WebhookDeliveryRow


@dataclass(frozen=True)
class WebhookOutcome:
    """What a delivery did: a plan, or why it did nothing."""

    status: str  # "planned", "ignored" or "duplicate"
    reason: str = ""
    plan: PlanRow | None = None


def verify_signature(secret: str, body: bytes, headers: Mapping[str, str]) -> str:
    """Check the provider's signature; return the delivery id. Raise ``UnauthorizedError``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if "x-hub-signature-256" in lowered:
        valid = hmac.compare_digest(lowered["x-hub-signature-256"], f"sha256={digest}")
        delivery = lowered.get("x-github-delivery", "")
    elif "x-gitea-signature" in lowered:
        valid = hmac.compare_digest(lowered["x-gitea-signature"], digest)
        delivery = lowered.get("x-gitea-delivery", "")
    elif "x-gitlab-token" in lowered:
        valid = hmac.compare_digest(lowered["x-gitlab-token"], secret)
        delivery = lowered.get("x-gitlab-event-uuid", "")
    else:
        raise UnauthorizedError(
            "no webhook signature: send X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token"
        )
    if not valid:
        raise UnauthorizedError("webhook signature does not match")
    return delivery or hashlib.sha256(body).hexdigest()


def handle_push(
    engine: Engine,
    source_id: str,
    body: bytes,
    headers: Mapping[str, str],
    cache_root: Path,
    *,
    keyring: Keyring | None = None,
) -> WebhookOutcome:
    """Verify, filter by branch, deduplicate, then sync the source.

    ``keyring`` (default: the identity in the data directory, ``cache_root``'s
    parent) decrypts the stored webhook secret.
    """
    keyring = keyring or load_keyring(cache_root.parent)
    with Session(engine) as session:
        source = session.get(GitSourceRow, source_id)
        if source is None or source.deleted_at is not None:
            raise NotFoundError(f"Git source {source_id} does not exist")
        legacy = source.webhook_secret is not None
        secret, branch = webhook_secret_of(source, keyring), source.branch
    if legacy:
        seal_webhook_secrets(engine, keyring)
    if not secret:
        raise UnauthorizedError(f"Git source {source_id} has no webhook_secret; set one first")
    delivery = verify_signature(secret, body, headers)
    try:
        payload = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequestError("webhook body is not JSON") from None
    ref = payload.get("ref") if isinstance(payload, dict) else None
    if ref != f"refs/heads/{branch}":
        return WebhookOutcome("ignored", f"push to {ref}, this source follows {branch}")
    try:
        with transaction(engine) as session:
            session.add(WebhookDeliveryRow(source_id=source_id, delivery_id=delivery[:200]))
    except StoreError:
        return WebhookOutcome("duplicate", f"delivery {delivery} was already handled")
    return WebhookOutcome(
        "planned", plan=sync_source(engine, source_id, cache_root, keyring=keyring, actor="webhook")
    )
