"""``inputFiles`` whose content is a file output's URI: the file is copied in, as in Kestra.

Kestra writes an ``inputFiles`` entry whose value is an internal-storage URI
(``kestra://...``) as that file's content. Flowplane's file URIs are the
absolute paths task outputs give (``outputFiles``, ``uri``), inside the
execution's directory; a value that is exactly such a path is read through
the run context (which refuses links and other executions' files) and its
bytes are written. Any other value is written as text.
"""

from __future__ import annotations

import os
from pathlib import Path

from controlplane.plugins.api import RunContext, TaskFailedError

# A URI is one line; contents with a line break are text however they start.
_MAX_URI = 4096


def execution_file(run: RunContext, content: str) -> bytes | None:
    """The bytes of the file ``content`` names when it is a file of this execution, else None."""
    text = content.removeprefix("file://")
    if not text.startswith("/") or len(text) > _MAX_URI or "\n" in text or "\0" in text:
        return None
    # Task runs work in <execution dir>/<task run id>/work (or a WorkingDirectory's shared
    # folder beside it), so the execution's directory is two levels up.
    root = os.path.realpath(run.working_dir.parent.parent)
    if not Path(os.path.realpath(text)).is_relative_to(root) or not Path(text).is_file():
        return None
    with run.open_file(content) as handle:
        return handle.read()


def text_content(run: RunContext, name: str, content: str) -> str:
    """``content``, or the text of the execution file it names (pods receive text only)."""
    data = execution_file(run, content)
    if data is None:
        return content
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TaskFailedError(
            f"input file {name!r} is binary; the Kubernetes runner passes input files as text"
        ) from None
