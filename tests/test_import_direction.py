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


# -- inside the gateway: one folder per part, imports go down only (docs/architecture.md) -------

#: The gateway's parts, lowest first: a part imports only parts before it in this list.
GATEWAY_LAYERS = [
    ("journal", "acquirer", "contracts"),
    ("sync", "recovery", "security", "day"),
    ("payments",),
    ("till", "web"),
    ("daemon",),
]
#: Leaf modules every part may import: they import nothing of the gateway but gateway.errors.
GATEWAY_LEAVES = {
    "gateway.errors",
    "gateway.card_data",
    "gateway.daemon.config",
    "gateway.daemon.snapshot",
}
#: The journal's SQL modules: only the journal itself touches them.
JOURNAL_SQL = {"gateway.journal.store", "gateway.journal.schema"}


def _gateway_imports(path: Path) -> set[str]:
    """Every ``gateway.*`` module name a file imports (``from gateway.x import y`` -> both the
    module ``gateway.x`` and, when it is one, the submodule ``gateway.x.y``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "gateway")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "gateway":
                continue
            found.add(node.module)
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if (ROOT / (sub.replace(".", "/") + ".py")).exists():
                    found.add(sub)
    return found


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (ROOT / "gateway" / parts[1]).is_dir() else None


def _rank(part: str) -> int:
    return next(i for i, layer in enumerate(GATEWAY_LAYERS) if part in layer)


def _gateway_violations(files: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, imported in sorted(files.items()):
        own = _part(name)
        for target in sorted(imported):
            if target in GATEWAY_LEAVES or target == "gateway":
                continue
            other = _part(target)
            if name in GATEWAY_LEAVES and target != "gateway.errors":
                bad.append(f"{name} is a leaf but imports {target}")
            elif own is None or other is None or own == other:
                continue
            elif own == "web":
                bad.append(f"{name} (web reads only the typed snapshot) imports {target}")
            elif _rank(other) >= _rank(own):
                bad.append(f"{name} ({own}) imports the higher or sibling part {target}")
            if target in JOURNAL_SQL and own != "journal":
                bad.append(f"{name} imports the journal's SQL module {target}")
    return bad


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_gateway_parts_import_downwards_only() -> None:
    files = {_module(p): _gateway_imports(p) for p in sorted((ROOT / "gateway").rglob("*.py"))}
    every_part = {_part(name) for name in files} - {None}
    assert every_part == {part for layer in GATEWAY_LAYERS for part in layer}
    assert not _gateway_violations(files), "\n".join(_gateway_violations(files))


def test_the_gateway_check_would_catch_each_rule() -> None:
    assert _gateway_violations({"gateway.till.x": {"gateway.journal.store"}})
    assert _gateway_violations({"gateway.web.view": {"gateway.payments.lane"}})
    assert _gateway_violations({"gateway.journal.x": {"gateway.payments.session"}})
    assert _gateway_violations({"gateway.recovery.x": {"gateway.sync.publisher"}})
    assert _gateway_violations({"gateway.daemon.snapshot": {"gateway.payments"}})
    assert not _gateway_violations({"gateway.web.status": {"gateway.daemon.snapshot"}})
    assert not _gateway_violations({"gateway.till.payments": {"gateway.journal"}})


@pytest.mark.parametrize("package", ["gateway", "simulator"])
def test_public_kernel_names_come_from_terminal_itself(package: str) -> None:
    """Where ``terminal.__all__`` has the name, the gateway and the simulator import it from
    ``terminal``, not from one of the kernel's internal modules."""
    import importlib

    import terminal

    public = set(terminal.__all__)
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            if not node.module.startswith("terminal."):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                same = getattr(module, alias.name, None) is getattr(terminal, alias.name, None)
                if alias.name in public and same:
                    bad.append(f"{path.relative_to(ROOT)}: {alias.name} from {node.module}")
    assert not bad, "\n".join(bad)
