"""Every test that starts a process, a browser or a benchmark carries the ``slow`` marker, so that
``./run test --fast`` (pytest ``-m "not slow"``) stays a quick loop.

The check reads the test sources (ast, never imports them). A test "starts a process" if it, a
fixture it asks for, or a helper it calls (followed through this module, the conftest.py files
above it and ``from tests... import`` lines) uses subprocess, asyncio's create_subprocess_*,
multiprocessing, Playwright, or the benchmark (``bench``, except its pure ``bench.report``).
Such a test must be marked ``@pytest.mark.slow``, by its class, or by the module's ``pytestmark``.
Tests slower than about a second are marked too, by hand; this check does not time anything.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO

TESTS = REPO / "tests"

# names whose use starts a process, a browser or a benchmark
STARTERS = {
    "subprocess",
    "create_subprocess_exec",
    "create_subprocess_shell",
    "multiprocessing",
    "sync_playwright",
    "async_playwright",
}
STARTER_MODULES = ("subprocess", "multiprocessing", "playwright", "bench")
PURE_MODULES = ("bench.report", "bench.export_data")  # imported by tests that only compute (numbers, rows)
# ./run test starts the redis-server; the fixture starts one itself only under a bare `pytest`
EXEMPT = {("tests/conftest.py", "redis_server")}


def starter_module(module: str) -> bool:
    def under(prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    return any(under(m) for m in STARTER_MODULES) and not any(under(m) for m in PURE_MODULES)


def is_slow_mark(node: ast.AST) -> bool:
    """``pytest.mark.slow`` (also when called, e.g. ``pytest.mark.slow()``)."""
    if isinstance(node, ast.Call):
        node = node.func
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "slow"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "mark"
    )


def is_fixture(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if (isinstance(target, ast.Attribute) and target.attr == "fixture") or (
            isinstance(target, ast.Name) and target.id == "fixture"
        ):
            return True
    return False


def walk(node: ast.AST):
    """ast.walk without annotations: ``proc: asyncio.subprocess.Process`` starts nothing."""
    todo = [node]
    while todo:
        node = todo.pop()
        yield node
        for name, value in ast.iter_fields(node):
            if name in ("annotation", "returns"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    todo.append(child)


def parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = node.args
    return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]


@dataclass
class Module:
    path: str  # relative to the repository, e.g. "tests/ops/test_server.py"
    tree: ast.Module
    defs: dict[str, ast.AST] = field(default_factory=dict)  # top-level functions and classes
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (tests module path, name)
    starters: set[str] = field(default_factory=set)  # names bound to a starter module's objects
    fixtures: set[str] = field(default_factory=set)
    slow_module: bool = False

    @classmethod
    def parse(cls, path: str, source: str) -> Module:
        mod = cls(path, ast.parse(source, filename=path))
        for node in mod.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                mod.defs[node.name] = node
                if not isinstance(node, ast.ClassDef) and is_fixture(node):
                    mod.fixtures.add(node.name)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    name = alias.asname or alias.name
                    if starter_module(node.module):
                        mod.starters.add(name)
                    elif node.module == "tests" or node.module.startswith("tests."):
                        mod.imported[name] = (node.module.replace(".", "/") + ".py", alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if starter_module(alias.name):
                        mod.starters.add((alias.asname or alias.name).split(".")[0])
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets) and node.value:
                    marks = node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
                    mod.slow_module = any(is_slow_mark(m) for m in marks)
        return mod


class Checker:
    """Which tests start a process (directly or through helpers and fixtures) without the slow mark."""

    def __init__(self, sources: dict[str, str]):
        self.modules = {path: Module.parse(path, src) for path, src in sources.items()}
        self.memo: dict[tuple[str, str], str | None] = {}

    def conftest_fixture(self, path: str, name: str) -> tuple[str, str] | None:
        folder = Path(path).parent
        while True:
            conftest = (folder / "conftest.py").as_posix()
            if conftest != path and conftest in self.modules and name in self.modules[conftest].fixtures:
                return conftest, name
            if folder.as_posix() in ("tests", ".", ""):
                return None
            folder = folder.parent

    def resolve(self, path: str, name: str) -> tuple[str, str] | None:
        mod = self.modules.get(path)
        if mod is None:
            return None
        if name in mod.defs:
            return path, name
        if name in mod.imported:
            target = mod.imported[name]
            return self.resolve(*target) if target[0] in self.modules else None
        return None

    def why(self, path: str, name: str) -> str | None:
        """How the top-level ``name`` of ``path`` starts a process, or None if it does not."""
        key = (path, name)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = None  # a cycle starts nothing by itself
        reason = None if key in EXEMPT else self.find(path, self.modules[path].defs[name])
        self.memo[key] = reason
        return reason

    def find(self, path: str, node: ast.AST) -> str | None:
        mod = self.modules[path]
        names = []
        for sub in walk(node):
            if isinstance(sub, ast.Name):
                if sub.id in STARTERS or sub.id in mod.starters:
                    return sub.id
                names.append(sub.id)
            elif isinstance(sub, ast.Attribute) and sub.attr in STARTERS:
                return sub.attr
            elif isinstance(sub, ast.ImportFrom) and sub.module and starter_module(sub.module):
                return sub.module
            elif isinstance(sub, ast.Import) and any(starter_module(a.name) for a in sub.names):
                return sub.names[0].name
        for name in dict.fromkeys(names):
            if name != getattr(node, "name", None):
                target = self.resolve(path, name)
                if target and (reason := self.why(*target)):
                    return f"{name} -> {reason}"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            node.name.startswith("test") or is_fixture(node)
        ):
            for param in parameters(node):
                target = self.resolve(path, param) or self.conftest_fixture(path, param)
                if target and target != (path, node.name) and (reason := self.why(*target)):
                    return f"fixture {param} -> {reason}"
        return None

    def tests(self, path: str):
        """(test id, function node, marked slow) for each test of a module."""
        mod = self.modules[path]
        for node in mod.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                yield f"{path}::{node.name}", node, mod.slow_module or any(map(is_slow_mark, node.decorator_list))
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                class_slow = mod.slow_module or any(map(is_slow_mark, node.decorator_list))
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                        marked = class_slow or any(map(is_slow_mark, item.decorator_list))
                        yield f"{path}::{node.name}::{item.name}", item, marked

    def unmarked(self) -> list[str]:
        found = []
        for path in sorted(self.modules):
            if not Path(path).name.startswith("test_"):
                continue
            for test_id, node, marked in self.tests(path):
                if not marked and (reason := self.find(path, node)):
                    found.append(f"{test_id} (starts a process: {reason})")
        return found


def repo_sources() -> dict[str, str]:
    return {p.relative_to(REPO).as_posix(): p.read_text() for p in sorted(TESTS.rglob("*.py"))}


@pytest.fixture(scope="module")
def repo_checker() -> Checker:
    return Checker(repo_sources())


def test_every_test_that_starts_a_process_a_browser_or_a_benchmark_is_marked_slow(repo_checker):
    unmarked = repo_checker.unmarked()
    assert not unmarked, "mark these @pytest.mark.slow (or the module's pytestmark):\n" + "\n".join(unmarked)


def test_the_check_finds_real_process_starters(repo_checker):
    # the checker is not vacuous on this repository: it sees processes where they are known to start
    checker = repo_checker
    started = {
        test_id.split(" ")[0]
        for path in checker.modules
        if Path(path).name.startswith("test_")
        for test_id, node, _ in checker.tests(path)
        if checker.find(path, node)
    }
    assert len(started) > 20
    assert any(t.startswith("tests/console/test_browser.py::") for t in started)  # playwright, via live.py
    assert any(t.startswith("tests/ops/test_server.py::") for t in started)  # start_gateway, via ops/conftest


HELPERS = """
import asyncio
import subprocess

import pytest


def run_cli(*args):
    return subprocess.run(["crmgw", *args], check=False)


async def spawn():
    return await asyncio.create_subprocess_exec("crmgw")


@pytest.fixture
def server():
    return spawn


@pytest.fixture
def plain():
    return 1
"""


def check(test_source: str, *, helpers: str = HELPERS, conftest: str = "") -> list[str]:
    sources = {"tests/pkg/helpers.py": helpers, "tests/pkg/test_x.py": test_source}
    if conftest:
        sources["tests/pkg/conftest.py"] = conftest
    return [line.split(" ")[0] for line in Checker(sources).unmarked()]


def test_the_checker_flags_a_direct_subprocess_call_without_the_mark():
    source = """
import subprocess
import pytest

def test_runs():
    subprocess.run(["true"])

def test_pure():
    assert 1 + 1 == 2

@pytest.mark.slow
def test_marked():
    subprocess.run(["true"])
"""
    assert check(source) == ["tests/pkg/test_x.py::test_runs"]


def test_the_checker_follows_helpers_imports_fixtures_and_conftest():
    source = """
import pytest
from tests.pkg.helpers import run_cli, server, plain
from playwright.sync_api import sync_playwright
from bench.micro import run_micro
from bench.report import ratios


def local_helper():
    return run_cli("check")


@pytest.fixture
def browser():
    with sync_playwright() as pw:
        yield pw


def test_via_local_helper():
    local_helper()

def test_via_imported_fixture(server):
    pass

def test_via_conftest_fixture(spawned):
    pass

def test_via_browser_fixture(browser):
    pass

def test_benchmark():
    run_micro()

def test_pure_report(plain):
    ratios({})

class TestGroup:
    def test_in_class(self):
        local_helper()

    def test_pure_in_class(self, plain):
        pass
"""
    conftest = """
import pytest, multiprocessing

@pytest.fixture
def spawned():
    multiprocessing.Process(target=print).start()
"""
    assert check(source, conftest=conftest) == [
        "tests/pkg/test_x.py::test_via_local_helper",
        "tests/pkg/test_x.py::test_via_imported_fixture",
        "tests/pkg/test_x.py::test_via_conftest_fixture",
        "tests/pkg/test_x.py::test_via_browser_fixture",
        "tests/pkg/test_x.py::test_benchmark",
        "tests/pkg/test_x.py::TestGroup::test_in_class",
    ]


def test_the_checker_accepts_module_class_and_list_marks():
    body = """
import subprocess
import pytest

{mark}

def test_runs():
    subprocess.run(["true"])
"""
    assert check(body.format(mark="")) == ["tests/pkg/test_x.py::test_runs"]
    assert check(body.format(mark="pytestmark = pytest.mark.slow")) == []
    assert check(body.format(mark="pytestmark = [pytest.mark.timeout(5), pytest.mark.slow]")) == []
    assert check(body.format(mark="pytestmark = [pytest.mark.timeout(5)]")) == ["tests/pkg/test_x.py::test_runs"]
    in_class = """
import subprocess
import pytest

@pytest.mark.slow
class TestRuns:
    def test_runs(self):
        subprocess.run(["true"])
"""
    assert check(in_class) == []


def test_the_run_tests_redis_server_fixture_is_exempt():
    conftest = """
import subprocess
import pytest

@pytest.fixture(scope="session")
def redis_server():
    subprocess.Popen(["redis-server"])
"""
    source = """
def test_uses_redis(redis_server):
    pass
"""
    sources = {"tests/conftest.py": conftest, "tests/pkg/test_x.py": source}
    assert Checker(sources).unmarked() == []
    sources["tests/conftest.py"] = conftest.replace("redis_server", "other_server")
    sources["tests/pkg/test_x.py"] = source.replace("redis_server", "other_server")
    assert [line.split(" ")[0] for line in Checker(sources).unmarked()] == ["tests/pkg/test_x.py::test_uses_redis"]
