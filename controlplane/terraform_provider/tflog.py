"""Provider logs in the shape Terraform reads: one hclog JSON object per stderr line.

go-plugin parses each JSON line a provider writes to stderr and files it at
its ``@level``, so ``TF_LOG=DEBUG`` (or ``TF_LOG_PROVIDER=DEBUG``) shows every
API request and its status. Nothing is written unless one of those variables
is set. Callers pass no bodies and no headers: secrets never reach a log line.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import UTC, datetime

_LOCK = threading.Lock()


def enabled() -> bool:
    """Whether Terraform asked for provider logs."""
    return bool(os.environ.get("TF_LOG") or os.environ.get("TF_LOG_PROVIDER"))


def debug(message: str, **fields: object) -> None:
    """Log ``message`` at debug level, with ``fields`` as hclog key/values."""
    if not enabled():
        return
    line = {
        "@level": "debug",
        "@message": message,
        "@module": "provider.flowplane",
        "@timestamp": datetime.now(UTC).isoformat(),
        **fields,
    }
    with _LOCK:
        sys.stderr.write(json.dumps(line, default=str) + "\n")
        sys.stderr.flush()
