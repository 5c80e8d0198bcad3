"""Endpoints stand side by side: no endpoint module imports another (issue 19). A pull that needs
another endpoint's answers first is composed by the public layer (capframe/_fetch.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def test_the_facts_of_an_endpoint_are_stated_in_its_module_alone() -> None:
    """Its path and its personal query parameters, in no other module of capframe (the sandbox, a
    server of its own, aside): the engine, the snapshot, the redaction and capframe.testing read the
    registry (capframe/_endpoints.py), which every endpoint module fills on import."""
    from capframe._endpoints import SPECS

    assert {spec.name: spec.path for spec in SPECS.values()} == {
        "customers": "/v2/bulk/getCustomers",
        "children": "/v2/customers/bulk",
        "lookups": "/v2/customers/lookup",
    }
    sources = {path: path.read_text() for path in (ROOT / "capframe").glob("*.py")}
    for spec in SPECS.values():
        for fact in (spec.path, *spec.personal, *spec.personal.values()):
            stated = sorted(path.name for path, text in sources.items() if f'"{fact}"' in text)
            assert len(stated) == 1, (fact, stated)
            assert f"capframe.{stated[0].removesuffix('.py')}" in ENDPOINT_MODULES, (fact, stated)


def test_every_endpoint_is_registered_before_any_use() -> None:
    """``import capframe`` (which any ``capframe.*`` import runs first) imports every endpoint module,
    so what reads the registry (here capframe.testing's scrubbing) finds every endpoint's spec."""
    code = "import capframe.testing, capframe._endpoints as e; print(sorted(e.SPECS), sorted(e.personal_parameters()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split("] [") == [
        "['children', 'customers', 'lookups'",
        "'associationEntityIdentifierValue', 'identifierValue']\n",
    ]
