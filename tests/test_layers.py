"""The packages depend one way (docs/architecture.md): every import, inside functions too.

well <- connectors <- matching <- review <- api, and the sandbox package and the benchmarks above
them all: a package imports only packages below it, so no app imports the sandboxes and no two
packages import each other. Where the flow goes back down (a sync hands records to matching), it
names a task by its dotted path instead of importing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["well", "connectors", "matching", "review", "api", "sandbox", "benchmarks"]
RANK = {package: rank for rank, package in enumerate(LAYERS)}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, at any depth, relative ones resolved."""
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, module))
    return found


def _package_imports() -> list[tuple[str, str, str]]:
    """(importing package, imported package, "file:line") across every layered package."""
    edges = []
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, module in _imported(path):
                target = module.split(".")[0]
                if target in RANK and target != package:
                    edges.append((package, target, f"{path.relative_to(ROOT)}:{line}"))
    return edges


def _cycles(edges: list[tuple[str, str, str]]) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for source, target, _ in edges:
        graph.setdefault(source, set()).add(target)
    found, path = [], []

    def visit(node: str) -> None:
        if node in path:
            found.append([*path[path.index(node) :], node])
            return
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            visit(nxt)
        path.pop()

    for start in sorted(graph):
        visit(start)
    return found


def test_every_package_is_parsed():
    assert all((ROOT / package / "__init__.py").exists() for package in LAYERS)
    assert len(_package_imports()) > 100  # the walk reaches the imports it must judge


def test_no_package_imports_a_package_above_it():
    upward = [
        f"{where}: {source} imports {target}"
        for source, target, where in _package_imports()
        if RANK[target] > RANK[source]
    ]
    assert upward == []


def test_there_is_no_import_cycle_between_packages():
    assert _cycles(_package_imports()) == []


@pytest.mark.parametrize(
    ("source", "code", "expected"),
    [
        ("well/x.py", "def f():\n    from connectors import models\n", ["well imports connectors"]),
        ("connectors/x.py", "from review.selectors import queue\n", ["connectors imports review"]),
        ("matching/x.py", "import sandbox.demo\n", ["matching imports sandbox"]),
        ("review/x.py", "from connectors.models import Connection\n", []),
    ],
)
def test_the_check_sees_an_upward_import_even_inside_a_function(tmp_path, source, code, expected):
    path = tmp_path / source
    path.parent.mkdir(parents=True)
    (path.parent / "__init__.py").write_text("")
    path.write_text(code)
    package = source.split("/")[0]
    imported = {module.split(".")[0] for _, module in _imported(path, tmp_path)}
    found = [f"{package} imports {t}" for t in sorted(imported) if RANK.get(t, -1) > RANK[package]]
    assert found == expected


def test_a_cycle_between_two_packages_is_found():
    edges = [("well", "connectors", "a"), ("connectors", "well", "b")]
    assert _cycles(edges)


def _module_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the project modules it imports}, at any depth (inside functions too)."""
    modules = {
        _module_name(path, root): path
        for package in LAYERS
        for path in (root / package).rglob("*.py")
        if "migrations" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for _, module in _imported(path, root):
            if module in modules:
                found.add(module)
        # `from package import module` names the module itself.
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                found |= {f"{module}.{a.name}" for a in node.names} & set(modules)
        # A module's own packages are initialised before it (their __init__ re-exporting it is
        # the usual shape, not a loop); `from . import sibling` names the sibling, kept above.
        ancestors = {name.rsplit(".", n)[0] for n in range(1, name.count(".") + 1)}
        graph[name] = found - {name} - ancestors
    return graph


def _module_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for start in sorted(graph):
        if start not in index:
            visit(start)
    return cycles


def test_there_is_no_import_loop_between_modules_even_through_imports_inside_functions():
    """The loop of issue 16 (quickbooks/sync -> handoff -> matching -> qonto -> onboarding ->
    quickbooks/sync) was held together by imports hidden in functions: none may come back."""
    assert _module_cycles(_module_imports()) == []


def test_the_module_loop_check_finds_a_loop_hidden_in_a_function(tmp_path):
    for name, code in {
        "well/a.py": "from well import b\n",
        "well/b.py": "def f():\n    from well.a import x\n",
    }.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").write_text("")
        path.write_text(code)
    for package in LAYERS[1:]:
        (tmp_path / package).mkdir(exist_ok=True)
    assert _module_cycles(_module_imports(tmp_path)) == [["well.a", "well.b"]]
