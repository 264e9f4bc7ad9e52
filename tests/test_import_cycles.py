"""The stage packages depend on each other one way only, and detectors/ stands apart from gateway/.

Every module under gateway/ and detectors/ is read with ``ast`` (nothing is imported), and each of
its imports is sorted by when it runs:

    module          at import time: top level, class bodies, try/if blocks (a cycle here is real)
    function        inside a def: runs later, so it can hide a cycle (allowed, but see below)
    type_checking   under ``if TYPE_CHECKING:``: never runs (annotations only)

Modules of one stage package (gateway.identity, ..., gateway.access) count as that package; every
other module (gateway.pipeline, gateway.settings, ...) is a node of its own, so a cycle through a
shared module is still a cycle. A module-level cycle that goes through a stage package fails the
test with its path and the import lines that make it. A function-level import that is the only
thing keeping two packages apart is a cycle in waiting: ``python tests/test_import_cycles.py``
lists those.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import itertools
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOPS = ("gateway", "detectors")
STAGES = (
    "gateway.identity",
    "gateway.context",
    "gateway.policy",
    "gateway.upstream",
    "gateway.response",
    "gateway.audit",
    "gateway.signals",
    "gateway.alerts",
    "gateway.console",
    "gateway.approvals",
    "gateway.access",
)

Graph = Mapping[str, Iterable[str]]


@dataclasses.dataclass(frozen=True)
class Import:
    importer: str  # module name
    imported: str  # module name, resolved to a module of the tree where one matches
    line: int
    when: str  # module / function / type_checking


# --- reading imports ----------------------------------------------------------------------------


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file, for every .py file under gateway/ and detectors/."""
    found: dict[str, Path] = {}
    for top in TOPS:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, source: str, *, is_package: bool = False, known: Iterable[str] = ()) -> list[Import]:
    """The imports of one module's source, each with when it runs. ``known``: the tree's modules,
    so ``from gateway import fieldpath`` resolves to the module ``gateway.fieldpath``."""
    known = frozenset(known)
    package = name if is_package else name.rpartition(".")[0]
    out: list[Import] = []

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:  # relative: from . import x, from ..y import z
            parts = package.split(".")
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]

    def visit(node: ast.AST, when: str) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _HOLDS_STATEMENTS):  # an expression holds no import statement
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                out.extend(Import(name, target, child.lineno, when) for target in targets(child))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, "function" if when == "module" else when)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit_one(stmt, "type_checking")
                for stmt in child.orelse:  # the else branch of ``if TYPE_CHECKING`` does run
                    visit_one(stmt, when)
            else:
                visit(child, when)

    def visit_one(stmt: ast.stmt, when: str) -> None:
        wrapper = ast.Module(body=[stmt], type_ignores=[])
        visit(wrapper, when)

    visit(ast.parse(source), "module")
    return out


_HOLDS_STATEMENTS = (ast.stmt, ast.excepthandler, ast.match_case)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@functools.cache
def all_imports(root: Path = ROOT) -> tuple[Import, ...]:
    """Every import between modules of the tree (the standard library and packages are left out)."""
    found = modules(root)
    out: list[Import] = []
    for name, path in found.items():
        for imp in imports_of(name, path.read_text(), is_package=path.name == "__init__.py", known=found):
            target = imp.imported
            while target not in found and "." in target:  # ``import a.b.c`` of a name inside a module
                target = target.rpartition(".")[0]
            if target in found and target != name:
                out.append(dataclasses.replace(imp, imported=target))
    return tuple(out)


# --- the graph ----------------------------------------------------------------------------------


def node_of(module: str) -> str:
    """A stage package stands for all its modules; any other module is its own node."""
    for stage in STAGES:
        if module == stage or module.startswith(stage + "."):
            return stage
    return module


def package_graph(imports: Iterable[Import], when: Iterable[str] = ("module",)) -> dict[str, set[str]]:
    kinds = frozenset(when)
    graph: dict[str, set[str]] = {}
    for imp in imports:
        a, b = node_of(imp.importer), node_of(imp.imported)
        if imp.when in kinds and a != b:
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set())
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component with more than one node or
    a self-loop, each found by a breadth-first search back to its smallest node (a shortest path)."""
    cycles = []
    for component in _components(graph):
        start = min(component)
        if len(component) == 1 and start not in set(graph.get(start, ())):
            continue
        cycles.append(_path_back(graph, start, component))
    return sorted(cycles)


def _components(graph: Graph) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit on a big tree)."""
    nodes = set(graph) | {b for targets in graph.values() for b in targets}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                out.append(component)
    return out


def _path_back(graph: Graph, start: str, within: set[str]) -> list[str]:
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph.get(node, ())):
                if child == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = came_from[node]
                    return [start, *reversed(path[1:]), start]
                if child in within and child not in came_from:
                    came_from[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{start} is in a cycle but no path leads back to it")


def explain(cycle: list[str], imports: Iterable[Import], when: Iterable[str] = ("module",)) -> str:
    """A cycle with, for each step, the import lines that make it."""
    kinds = frozenset(when)
    lines = [" -> ".join(cycle)]
    for a, b in itertools.pairwise(cycle):
        why = sorted(
            {
                f"{i.importer}:{i.line} imports {i.imported}"
                for i in imports
                if i.when in kinds and node_of(i.importer) == a and node_of(i.imported) == b
            }
        )
        lines.append(f"  {a} -> {b}: " + "; ".join(why[:3]) + (f" (+{len(why) - 3} more)" if len(why) > 3 else ""))
    return "\n".join(lines)


def stage_cycles(imports: Iterable[Import], when: Iterable[str] = ("module",)) -> list[list[str]]:
    return [c for c in find_cycles(package_graph(imports, when)) if any(n in STAGES for n in c)]


# --- the tests ----------------------------------------------------------------------------------


def test_no_module_level_cycle_through_a_stage_package():
    imports = all_imports()
    cycles = stage_cycles(imports)
    assert not cycles, "module-level import cycles:\n" + "\n".join(explain(c, imports) for c in cycles)


def test_detectors_import_nothing_from_gateway():
    found = [i for i in all_imports() if i.importer.startswith("detectors") and i.imported.startswith("gateway")]
    assert not found, "\n".join(f"{i.importer}:{i.line} imports {i.imported} ({i.when})" for i in found)


def test_upstream_imports_nothing_from_response():
    """The one-way rule between stages 4 and 5: gateway.response may use gateway.upstream, never back
    (not even inside a function or for annotations)."""
    found = [
        i
        for i in all_imports()
        if node_of(i.importer) == "gateway.upstream" and node_of(i.imported) == "gateway.response"
    ]
    assert not found, "\n".join(f"{i.importer}:{i.line} imports {i.imported} ({i.when})" for i in found)


def test_the_tree_is_read():
    """Guards the guard: an empty or unresolved walk would find no cycle anywhere."""
    imports = all_imports()
    assert len(modules()) > 50
    edges = {(node_of(i.importer), node_of(i.imported)) for i in imports if i.when == "module"}
    assert ("gateway.response", "gateway.upstream") in edges  # response/stage.py forwards with upstream


def test_a_cycle_in_a_small_graph_is_found_with_its_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"x": {"x"}}) == [["x", "x"]]
    two = find_cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}})
    assert two == [["a", "b", "a"], ["c", "d", "c"]]


def test_a_stage_cycle_is_reported_only_through_module_level_imports():
    imports = [
        Import("gateway.upstream.records", "gateway.response.formats", 16, "module"),
        Import("gateway.response.stage", "gateway.upstream.forward", 27, "module"),
        Import("gateway.audit.log", "gateway.alerts.model", 3, "function"),
        Import("gateway.alerts.model", "gateway.audit.log", 5, "module"),
        Import("gateway.signals.a", "gateway.alerts.b", 1, "type_checking"),
        Import("gateway.alerts.b", "gateway.signals.a", 1, "module"),
    ]
    cycles = stage_cycles(imports)
    assert cycles == [["gateway.response", "gateway.upstream", "gateway.response"]]
    message = explain(cycles[0], imports)
    assert "gateway.upstream.records:16 imports gateway.response.formats" in message
    assert "gateway.response.stage:27 imports gateway.upstream.forward" in message
    with_functions = stage_cycles(imports, ("module", "function"))
    assert ["gateway.alerts", "gateway.audit", "gateway.alerts"] in with_functions


def test_a_cycle_through_a_shared_module_counts():
    imports = [
        Import("gateway.response.x", "gateway.settings", 1, "module"),
        Import("gateway.settings", "gateway.upstream.y", 1, "module"),
        Import("gateway.upstream.y", "gateway.response.z", 1, "module"),
    ]
    assert stage_cycles(imports) == [["gateway.response", "gateway.settings", "gateway.upstream", "gateway.response"]]


def test_imports_are_sorted_by_when_they_run():
    source = """
from __future__ import annotations
import typing
from typing import TYPE_CHECKING
from gateway import fieldpath
from . import sibling
from ..policy import engine

if TYPE_CHECKING:
    from gateway.ruleset import RuleSet
else:
    import gateway.errors

if typing.TYPE_CHECKING:
    from gateway.settings import Settings

try:
    from gateway.model import Flow
except ImportError:
    pass


class Thing:
    from gateway.context import routes

    def method(self):
        from gateway.alerts import model


def later():
    import detectors.events
"""
    known = {"gateway.fieldpath", "gateway.response.sibling", "gateway.policy.engine", "gateway.context.routes"}
    found = {(i.imported, i.when) for i in imports_of("gateway.response.x", source, known=known)}
    assert {
        ("gateway.fieldpath", "module"),
        ("gateway.response.sibling", "module"),
        ("gateway.policy.engine", "module"),
        ("gateway.ruleset", "type_checking"),
        ("gateway.errors", "module"),
        ("gateway.settings", "type_checking"),
        ("gateway.model", "module"),
        ("gateway.context.routes", "module"),
        ("gateway.alerts", "function"),
        ("detectors.events", "function"),
    } <= found
    package = {i.imported for i in imports_of("gateway.response", "from . import scope", is_package=True)}
    assert package == {"gateway.response"}


def _reaches(graph: Graph, start: str, goal: str) -> bool:
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        if node == goal:
            return True
        for child in graph.get(node, ()):
            if child not in seen:
                seen.add(child)
                frontier.append(child)
    return False


def cycles_in_waiting(imports: Iterable[Import]) -> list[Import]:
    """The function-level imports ``a -> b`` where module-level imports already lead from b back to
    a (between packages, or between two modules of one package): each is the only thing keeping a
    cycle from running at import time."""
    imports = list(imports)
    packages = package_graph(imports)
    modules_graph: dict[str, set[str]] = {}
    for i in imports:
        if i.when == "module":
            modules_graph.setdefault(i.importer, set()).add(i.imported)
    out = []
    for i in imports:
        if i.when != "function":
            continue
        a, b = node_of(i.importer), node_of(i.imported)
        if (a != b and _reaches(packages, b, a)) or _reaches(modules_graph, i.imported, i.importer):
            out.append(i)
    return out


if __name__ == "__main__":
    for imp in sorted(cycles_in_waiting(all_imports()), key=lambda i: (i.importer, i.line)):
        print(f"{imp.importer}:{imp.line} imports {imp.imported} inside a function; {imp.imported} already leads back")
    sys.exit(0)
