"""`flowplane plan`: what a checkout of the flows repository would change, stored nowhere.

Meant for pull-request CI: it reads the working directory's flows, fetches the
server's live flows over the API, and runs the same pure ``compute_plan`` the
server runs on sync.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from controlplane.domain.argo.gitfiles import expand_argo_files
from controlplane.domain.normalize import normalize, spec_digest
from controlplane.domain.plan import ActiveFlow, DesiredFile, Plan, compute_plan
from controlplane.domain.validate import validate_flow
from controlplane.errors import SourceUnavailableError


def read_checkout(root: Path, flows_path: str = "flows/") -> list[DesiredFile]:
    """Every file under ``root/flows_path``, with repo-relative paths."""
    base = root / flows_path
    return [
        DesiredFile(str(path.relative_to(root)), path.read_text(encoding="utf-8"))
        for path in sorted(base.rglob("*"))
        if path.is_file()
    ]


def fetch_live(
    client: httpx.Client, source_id: str
) -> tuple[list[ActiveFlow], set[tuple[str, str]]]:
    """The flows the source owns on the server, and the keys of all other live flows."""
    owned: list[ActiveFlow] = []
    others: set[tuple[str, str]] = set()
    offset = 0
    while True:
        page = _get(client, "/api/v1/flows", params={"offset": offset, "limit": 500})
        for item in page["items"]:
            key = (item["namespace"], item["id"])
            if item["origin"] != f"git:{source_id}":
                others.add(key)
                continue
            flow = _get(client, f"/api/v1/flows/{key[0]}/{key[1]}")
            spec = validate_flow(flow["content"]).spec
            owned.append(
                ActiveFlow(
                    key[0],
                    key[1],
                    flow["revision"],
                    flow["content"],
                    normalize(spec),
                    spec_digest(spec),
                )
            )
        offset += len(page["items"])
        if offset >= page["total"] or not page["items"]:
            return owned, others


def stored_secret_keys(client: httpx.Client, namespaces: set[str]) -> dict[str, list[str]]:
    """The secret keys the server holds in each namespace (names only, never values).

    The preview cannot decrypt ``secrets/*.age`` (only the server holds the
    identity), so a reference counts as satisfied when the server already
    stores the key; a key that only a new ``.age`` file adds is reported missing.
    """
    keys: dict[str, list[str]] = {}
    for namespace in sorted(namespaces):
        response = client.get(f"/api/v1/namespaces/{namespace}/secrets")
        if response.status_code in {403, 404}:
            keys[namespace] = []
            continue
        try:
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise SourceUnavailableError(f"cannot read secrets of {namespace}: {exc}") from None
        keys[namespace] = [item["key"] for item in response.json()]
    return keys


class _AnyKey(Collection[str]):
    """Every key: a namespace whose ``.age`` file only the server can open."""

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def sealed_namespaces(root: Path, secrets_path: str = "secrets/") -> list[str]:
    """Namespaces with a ``secrets/<namespace>.age`` file in the checkout.

    Only the server holds the identity that opens them, so the preview cannot
    tell which keys they define: references in these namespaces are accepted
    here and checked when the server syncs the commit.
    """
    base = root / secrets_path
    return sorted(p.stem for p in base.glob("*.age")) if base.is_dir() else []


def plan_checkout(root: Path, client: httpx.Client, source_id: str) -> Plan:
    """The plan a sync of this checkout would make on the server."""
    owned, others = fetch_live(client, source_id)
    files = read_checkout(root)
    namespaces = {f.path.split("/")[-2] for f in files if f.path.count("/") >= 2}  # noqa: PLR2004
    known: dict[str, Collection[str]] = dict(stored_secret_keys(client, namespaces))
    for namespace in sealed_namespaces(root):
        known[namespace] = _AnyKey()
    # Argo Workflows files are converted as the server converts them on sync.
    expansion = expand_argo_files(files)
    plan = compute_plan(owned, expansion.files, known_flows=others, known_secrets=known)
    return replace(plan, problems=(*expansion.problems, *plan.problems))


def _get(client: httpx.Client, url: str, **kwargs: Any) -> Any:
    try:
        response = client.get(url, **kwargs)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise SourceUnavailableError(f"cannot read {url} from the server: {exc}") from None
    return response.json()
