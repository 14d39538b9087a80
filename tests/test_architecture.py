"""Imports point one way: domain ← store ← services ← api/ui ← cli.

A module may import from its own layer and the layers below it, never above.
The domain layer does no IO, so it may not import the store, services or API.
"""

from __future__ import annotations

import ast
from pathlib import Path

import controlplane

PACKAGE = Path(controlplane.__file__).parent
# Lower number = lower layer. Modules not listed are top-level shared modules
# (errors, settings, logging), which everything may import.
LAYERS = {
    "domain": 1,
    "store": 2,
    "services": 3,
    "runners": 3,
    # Task types: they import the domain, runners and plugins.api only
    # (tests/test_plugin_boundaries.py holds them to that).
    "plugins": 3,
    "api": 4,
    "ui": 4,
    "terraform_provider": 4,
    "cli": 5,
    "cli_ops": 5,
}
SHARED = {"errors", "settings", "logging", "metrics", "__init__"}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "controlplane" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_imports_point_down() -> None:
    violations = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts)
        own = layer_of(module)
        if own is None:
            continue
        for imported in imports_of(path):
            target = layer_of(imported)
            if target is not None and target > own:
                violations.append(f"{module} imports {imported}")
    assert violations == []


def test_shared_modules_import_no_layer() -> None:
    for name in SHARED - {"__init__"}:
        imported = imports_of(PACKAGE / f"{name}.py")
        assert not [m for m in imported if layer_of(m) is not None], name
