"""HTTP-style preconditions (If-Match) on stored objects."""

from __future__ import annotations

from controlplane.errors import PreconditionFailedError


def check_if_match(if_match: str | None, current_etag: str | None) -> None:
    """Raise ``PreconditionFailedError`` unless ``If-Match`` allows the write.

    ``*`` matches any existing object; a list of tags matches when one equals
    the current ETag. A missing object matches nothing.
    """
    if if_match is None:
        return
    candidates = {tag.strip() for tag in if_match.split(",")}
    if "*" in candidates and current_etag is not None:
        return
    if current_etag is None or current_etag not in candidates:
        raise PreconditionFailedError(
            f"If-Match {if_match} does not match the current ETag {current_etag or '(none)'}"
        )
