"""Migrations never import the application: a fresh ``jarvis db upgrade`` must work with any
later version of the code (``migrations/env.py`` may read the settings; the versions may not)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

VERSIONS = Path(__file__).resolve().parents[2] / "migrations" / "versions"


def _jarvis_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "jarvis"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "jarvis":
            found.append(str(node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
        ):
            found.append(ast.unparse(node))
    return found


def test_no_migration_imports_jarvis() -> None:
    files = sorted(VERSIONS.glob("*.py"))
    assert len(files) >= 9
    offenders = {p.name: _jarvis_imports(p) for p in files}
    assert {name: names for name, names in offenders.items() if names} == {}
    # The plain text too (an import hidden in a string handed to exec, say).
    pattern = re.compile(r"^\s*(from\s+jarvis[\s.]|import\s+jarvis\b)", re.MULTILINE)
    assert [p.name for p in files if pattern.search(p.read_text(encoding="utf-8"))] == []
