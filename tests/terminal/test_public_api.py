"""The kernel's public API: a small, sorted ``terminal.__all__``, and no import cycle inside."""

from __future__ import annotations

import ast
from pathlib import Path

import terminal

ROOT = Path(terminal.__file__).resolve().parent


def test_all_is_sorted_unique_and_every_name_resolves() -> None:
    names = terminal.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(terminal, name) is not None, name


def test_the_public_api_stays_small() -> None:
    assert 20 <= len(terminal.__all__) <= 40


def test_it_runs_a_payment_with_public_names_only() -> None:
    for name in (
        "run_contact_transaction",
        "run_contactless_payment",
        "TerminalConfig",
        "TransactionRequest",
        "Environment",
        "TransactionResult",
        "OnlineRequest",
        "OnlineResponse",
    ):
        assert name in terminal.__all__


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Module -> kernel modules it imports, type-only (TYPE_CHECKING) imports included."""
    modules = {_module_name(path): path for path in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if not node.module.startswith("terminal"):
                    continue
                submodules = [f"{node.module}.{a.name}" for a in node.names]
                if all(sub in modules for sub in submodules):  # `from terminal import tags`
                    deps.update(submodules)
                else:
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("terminal"))
        graph[name] = {dep for dep in deps if dep in modules and dep != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the non-package modules, or None (packages re-export)."""
    packages = {name for name in graph if (ROOT.parent / name.replace(".", "/")).is_dir()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node] - packages):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(set(graph) - packages):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_import_cycle_inside_the_kernel() -> None:
    assert _cycle(_graph()) is None


def test_the_cycle_check_would_catch_one() -> None:
    graph = _graph()
    graph["terminal.environment"].add("terminal.contact.selection")  # the cycle that was cut
    assert _cycle(graph) is not None
