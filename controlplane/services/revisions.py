"""The parsed spec of a stored revision, parsed once per process.

Stored sources were validated when they were written, so every later reader
(execution creation, the worker, the scheduler, webhooks, resume) shares one
parse per source instead of validating it again on each call. Flow models are
frozen, so sharing them is safe.
"""

from __future__ import annotations

from functools import lru_cache

from controlplane.domain.spec import Flow
from controlplane.domain.validate import validate_flow


# Sized for a whole large repository (10k flows), which a sync reads at once.
@lru_cache(maxsize=16_384)
def stored_spec(source: str) -> Flow:
    """The ``Flow`` of a source that the store already holds."""
    return validate_flow(source).spec
