"""The package layout holds: imports only go down the layers and never form a cycle, no
module shares its name with a public function of its package, no function is overlong."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import imgclf

SRC = Path(imgclf.__file__).resolve().parent

# Bottom to top: a module may import its own layer (without cycles) and the layers below.
LAYERS = {
    "imgclf.errors": 0,
    "imgclf.lazy_exports": 0,
    "imgclf.processes": 0,
    "imgclf.reporting": 0,
    "imgclf.task": 0,
    "imgclf.data": 1,
    "imgclf.model": 1,
    "imgclf.training": 2,
    "imgclf.evaluation": 3,
    "imgclf.callbacks": 4,
    "imgclf.serving": 4,
    "imgclf.api": 5,
    "imgclf.commands": 5,
    "imgclf.cli": 6,
    "imgclf.__main__": 7,  # `python -m imgclf`: the command line, nothing else
}
# Same layer, but independent of each other.
APART = {("imgclf.data", "imgclf.model"), ("imgclf.model", "imgclf.data")}
# "About 50 lines": longer functions need a comment saying why they are one piece.
MAX_FUNCTION_LINES = 55


def module_name(path: Path) -> str:
    parts = ["imgclf", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in SRC.rglob("*.py")}


def imports(tree: ast.Module) -> set[str]:
    """Every imgclf module a module imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "imgclf" or name.startswith("imgclf.")}


def package_of(name: str) -> str | None:
    """The LAYERS key a module belongs to (the longest matching prefix)."""
    keys = [k for k in LAYERS if name == k or name.startswith(k + ".")]
    return max(keys, key=len) if keys else None


def test_every_module_has_a_layer():
    unplaced = [name for name in modules() if name != "imgclf" and package_of(name) is None]
    assert unplaced == [], "add these modules to LAYERS"


def test_imports_never_climb_a_layer():
    climbing = []
    for name, tree in modules().items():
        if name == "imgclf":  # the package face re-exports every layer (lazily)
            continue
        home = package_of(name)
        for target in imports(tree):
            there = package_of(target)
            if target == "imgclf" or LAYERS[there] > LAYERS[home] or (home, there) in APART:
                climbing.append(f"{name} -> {target}")
    assert climbing == []


def test_no_import_cycles():
    graph = {name: imports(tree) for name, tree in modules().items() if name != "imgclf"}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt in graph and nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def exported_functions(package: str) -> set[str]:
    import importlib

    module = importlib.import_module(package)
    return {n for n in getattr(module, "__all__", []) if callable(getattr(module, n, None))}


@pytest.mark.parametrize(
    "package", ["imgclf", "imgclf.data", "imgclf.model", "imgclf.training", "imgclf.evaluation"]
)
def test_no_module_shares_its_name_with_a_public_function(package):
    folder = SRC.joinpath(*package.split(".")[1:])
    submodules = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir()}
    assert exported_functions(package) & submodules == set()


def test_package_docstrings_say_what_they_hold():
    for init in SRC.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.splitlines()[0]) > 20, init


def test_functions_are_short_or_say_why_not():
    long = []
    for path in SRC.rglob("*.py"):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                body = "\n".join(source.splitlines()[node.lineno - 1 : node.end_lineno])
                if length > MAX_FUNCTION_LINES and "one piece" not in body:
                    long.append(f"{module_name(path)}.{node.name}: {length} lines")
    assert long == []
