"""Argo files in a flows repository, converted before the plan sees them.

A file under ``flows/<namespace>/`` whose ``apiVersion`` names Argo's API
group is converted (into ``<namespace>``) at plan time. The plan then sees
the converted flows at ``flows/<namespace>/<flow id>.yaml``, as if they had
been written there, and ``originals`` remembers which Argo file, byte for
byte, each came from: the plan shows both diffs and the revision keeps both.

The converted text's header carries the Argo source's sha256, so any change
to the Argo file (even a comment) makes a new revision that keeps it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from controlplane.domain.argo import convert_sources
from controlplane.domain.argo.documents import is_argo_source
from controlplane.domain.argo.emit import dump_spec, header
from controlplane.domain.plan import DesiredFile
from controlplane.errors import InvalidFlowError, Problem

ARGO_FORMAT = "argo"
_SUFFIXES = {"yaml", "yml"}


@dataclass(frozen=True)
class Original:
    """The Argo file a converted flow comes from."""

    path: str
    source: str
    format: str = ARGO_FORMAT


@dataclass
class Expansion:
    """The repository's files with every Argo file replaced by the flows it converts to."""

    files: tuple[DesiredFile, ...]
    originals: dict[tuple[str, str], Original] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def expand_argo_files(files: Iterable[DesiredFile], *, flows_path: str = "flows/") -> Expansion:
    """Convert the Argo files among ``files``; the others pass through unchanged.

    Conversion problems (``file:line:col: path: message``) are returned, not
    raised: the plan is then invalid and activates nothing, as with any
    invalid flow file.
    """
    stripped = flows_path.strip("/")
    prefix = f"{stripped}/" if stripped else ""
    kept: list[DesiredFile] = []
    argo: dict[str, list[DesiredFile]] = {}
    problems: list[Problem] = []
    for file in files:
        name = file.path.rsplit("/", 1)[-1]
        is_yaml = name.rpartition(".")[2].lower() in _SUFFIXES
        if not (file.path.startswith(prefix) and is_yaml and is_argo_source(file.source)):
            kept.append(file)
            continue
        directory = file.path[len(prefix) :].rpartition("/")[0]
        if not directory or "/" in directory:
            problems.append(
                Problem(
                    f"Argo files belong at {prefix}<namespace>/<name>.yaml; "
                    "the folder names the namespace the flows are converted into",
                    file=file.path,
                )
            )
            continue
        argo.setdefault(directory, []).append(file)
    originals: dict[tuple[str, str], Original] = {}
    for namespace, group in sorted(argo.items()):
        by_path = {file.path: file for file in group}
        try:
            flows = convert_sources(
                [(file.path, file.source) for file in group], namespace=namespace
            )
        except InvalidFlowError as exc:
            problems.extend(exc.problems)
            continue
        for flow in flows:
            source = by_path[flow.file].source
            digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
            text = header(flow) + f"# Argo source sha256: {digest}\n" + dump_spec(flow.spec)
            path = f"{prefix}{flow.namespace}/{flow.flow_id}.yaml"
            kept.append(DesiredFile(path, text))
            originals[(flow.namespace, flow.flow_id)] = Original(flow.file, source)
    return Expansion(tuple(kept), originals, problems)
