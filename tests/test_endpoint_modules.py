"""Endpoints stand side by side: no endpoint module imports another (issue 19). A pull that needs
another endpoint's answers first is composed by the public layer (capframe/_fetch.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ENDPOINT_MODULES = {"capframe._customers", "capframe._children", "capframe._lookup"}
ROOT = Path(__file__).resolve().parent.parent


def imported(module: str) -> set[str]:
    """The capframe modules ``module`` imports, anywhere in it (inside a function too)."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # from capframe import _customers
    return found


def test_no_endpoint_module_imports_another() -> None:
    imports = {module: sorted(imported(module) & (ENDPOINT_MODULES - {module})) for module in ENDPOINT_MODULES}
    assert imports == {module: [] for module in ENDPOINT_MODULES}
