"""A converted flow as YAML text, headed by a comment naming its Argo source."""

from __future__ import annotations

from typing import Any

import yaml

from controlplane.domain.argo.convert import ConvertedFlow


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line text, keys in the order the converter wrote them."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # A block scalar cannot keep control characters, nor spaces that end a line.
    block = "\n" in value and not any(ch in value for ch in "\x00\x0b\x0c\r")
    if block and not any(line.rstrip(" \t") != line for line in value.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _text)


def header(flow: ConvertedFlow) -> str:
    """The comment lines that open a converted flow's YAML."""
    lines = [
        "# Converted from Argo Workflows by `flowplane convert argo`; edit the Argo source.",
        f"# Source: {flow.file} (document {flow.document + 1}: {flow.kind} {flow.name})",
    ]
    if flow.notes:
        lines.append("# Argo fields with no Flowplane effect:")
        lines += [f"#   {note}" for note in flow.notes]
    return "\n".join(lines) + "\n"


def dump_spec(spec: dict[str, Any]) -> str:
    """The flow document as YAML (no header)."""
    return yaml.dump(
        spec,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def to_yaml(flow: ConvertedFlow) -> str:
    """The flow as YAML text with its header comment."""
    return header(flow) + dump_spec(flow.spec)
