"""The import rules of docs/architecture.md, checked on every run by reading the source."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tokentrail"

# layer -> the layers of ours it may import
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "pricing": {"core"},
    "providers": {"core"},
    "sinks": {"core"},
    "tracking": {"core", "pricing", "sinks"},
    "instrument": {"core", "providers", "tracking"},
    "server": {"core", "pricing"},
    "mockprovider": {"core"},
    "cli": {"core", "pricing", "providers", "sinks", "tracking", "instrument", "server", "mockprovider"},
}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported tokentrail layer, whether the import is inside a function)."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names: list[str] = []
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [child.module]
            elif isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "tokentrail" and len(parts) > 1:
                    found.append((parts[1], nested))
            visit(child, nested)

    visit(tree, False)
    return found


def test_layers_import_only_what_they_may():
    violations = []
    for layer, allowed in ALLOWED.items():
        for path in (SRC / layer).rglob("*.py"):
            for imported, in_function in _imports(path):
                if imported == layer or imported not in ALLOWED:
                    continue
                if imported not in allowed:
                    violations.append(f"{path.relative_to(SRC)} imports tokentrail.{imported}")
                if in_function:
                    violations.append(f"{path.relative_to(SRC)} imports tokentrail.{imported} inside a function")
    assert not violations, "\n".join(violations)


def test_every_package_has_a_rule():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(ALLOWED), f"add a layer rule for {packages - set(ALLOWED)}"


def test_nothing_of_the_sdk_imports_the_server():
    for layer in ("core", "pricing", "providers", "sinks", "tracking", "instrument"):
        for path in (SRC / layer).rglob("*.py"):
            assert all(imported != "server" for imported, _ in _imports(path)), path
