"""The ``flows`` output of PushFlows and SyncFlows: a stored file, one Ion record per line.

Each record is written as a JSON object, which is also Ion text (the format
Kestra writes these files in), with the keys and value shapes Kestra uses.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from controlplane.plugins.api import RunContext


def store_records(context: RunContext, name: str, records: Iterable[Mapping[str, Any]]) -> str:
    """Write ``records`` one per line to this task run's stored file ``name``; its URI."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=context.working_dir, delete=False, suffix=".ion"
    ) as handle:
        for record in records:
            # ASCII escapes keep every string a valid Ion string too.
            handle.write(json.dumps(dict(record), separators=(",", ":")) + "\n")
    return context.put_file(Path(handle.name), name)
