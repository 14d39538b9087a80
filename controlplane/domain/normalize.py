"""One answer to "do these two sources mean the same flow?".

The normalized form is the validated model dumped with:
- canonical names (task type aliases → full Kestra names, ``maxAttempt`` →
  ``maxAttempts``, input ``name`` → ``id``, ``taskDefaults`` → ``pluginDefaults``);
- labels as a map, whether written as a map or a list of pairs;
- every property equal to its default left out, whether written or not;
- keys sorted; comments, quoting and layout gone;
- ``revision`` dropped (the server owns revisions).

The plan engine and the Terraform provider's plan stability both compare this form.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from controlplane.domain.spec import Flow


def normalize(flow: Flow) -> dict[str, Any]:
    """The flow as a JSON-ready dict in canonical form."""
    return flow.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def canonical_json(flow: Flow) -> str:
    """The normalized flow as compact JSON with sorted keys."""
    return json.dumps(normalize(flow), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_digest(flow: Flow) -> str:
    """sha256 of the canonical JSON: equal digests mean the same flow."""
    return hashlib.sha256(canonical_json(flow).encode()).hexdigest()


def source_digest(source: str) -> str:
    """sha256 of the source text as UTF-8, byte for byte."""
    return hashlib.sha256(source.encode()).hexdigest()
