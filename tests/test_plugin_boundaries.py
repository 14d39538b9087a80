"""A plugin reaches Flowplane only through its run context (docs/plugins.md, "Layers").

Nothing under ``controlplane/plugins/`` may import ``services``, ``store``,
``api``, ``ui`` or ``cli``: what a task needs of the database or of other
runs is a method of ``plugins.api.RunContext``, implemented by the worker.
"""

from __future__ import annotations

from pathlib import Path

import controlplane
from tests.test_architecture import imports_of

PLUGINS = Path(controlplane.__file__).parent / "plugins"
FORBIDDEN = ("services", "store", "api", "ui", "cli", "terraform_provider")


def forbidden_imports(root: Path) -> list[str]:
    """``file imports module`` for every import of a forbidden package under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for module in imports_of(path):
            parts = module.split(".")
            if parts[0] == "controlplane" and len(parts) > 1 and parts[1] in FORBIDDEN:
                found.append(f"{path.relative_to(root)} imports {module}")
    return found


def test_no_plugin_imports_services_or_store() -> None:
    assert PLUGINS.is_dir()
    assert forbidden_imports(PLUGINS) == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    # The rule must be able to fail: a plugin importing the store is caught.
    (tmp_path / "bad.py").write_text("from controlplane.store import kv\n", encoding="utf-8")
    (tmp_path / "lazy.py").write_text(
        "def f():\n    import controlplane.services.executions\n", encoding="utf-8"
    )
    assert forbidden_imports(tmp_path) == [
        "bad.py imports controlplane.store",
        "lazy.py imports controlplane.services.executions",
    ]
