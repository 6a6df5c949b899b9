"""The import-direction table of ARCHITECTURE.md, enforced on every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "terminal": set(),
    "drivers": set(),
    "gateway": {"terminal", "drivers"},
    "simulator": {"terminal", "drivers"},
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_architecture_allows(package: str) -> None:
    ours = set(ALLOWED)
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path) & ours - {package} - ALLOWED[package]:
            bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_check_would_catch_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from gateway.journal import Journal\nimport drivers.pcsc\n")
    assert _imports(bad) == {"gateway", "drivers"}
