"""The package's shape, as docs/architecture.md draws it: checked on the source, so a new
import that breaks it fails here instead of in a newcomer's head.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a
cycle hidden in a lazy import is still a cycle for whoever reads the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "snhoo_dask"

# The client side: code that runs where the job is started.  It reaches the worker's code
# through one module only, the one that submits the tasks.
CLIENT = ("cli", "jobs", "web")
BRIDGE = "snhoo_dask.jobs.tasks"

# Lower layers never import higher ones (a package may import its own modules).
LAYERS = [
    {"errors"},
    {"fs"},
    {"disks"},
    {"model"},
    {"output"},
    {"video"},
    {"frames"},
    {"packets"},
    {"options"},
    {"settings"},
    {"worker"},
    {"jobs"},
    {"cli", "web", "__main__", "__init__"},
]


def _modules(package: Path) -> dict[str, Path]:
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in its body."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
                edges.update(t for t in targets if t in modules)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    if full in modules:  # a module imported by name
                        edges.add(full)
                    elif source in modules:
                        edges.add(source)
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_cycles():
    assert _cycles(imports()) == []


def test_few_modules_at_the_top_and_small_packages():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top
    for package in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        modules = sorted(p.name for p in package.glob("*.py"))
        assert len(modules) <= 12, (package.name, modules)


def test_client_reaches_the_worker_through_one_module():
    offenders = {
        (module, target)
        for module, targets in imports().items()
        for target in targets
        if _top(module) in CLIENT and _top(target) == "worker" and module != BRIDGE
    }
    assert offenders == set()


def test_lower_layers_do_not_import_higher_ones():
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    offenders = set()
    for module, targets in imports().items():
        for target in targets:
            here, there = _top(module), _top(target)
            if here != there and rank[there] > rank[here]:
                offenders.add((module, target))
    assert offenders == set()


@pytest.mark.parametrize(
    "source",
    [
        "from .b import f\n",
        "def later():\n    from .b import f\n",  # lazy
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n",
    ],
)
def test_the_cycle_check_sees_cycles(tmp_path, source):
    """The checker itself: a two-module cycle is found however a's import of b is written."""
    package = tmp_path / "p"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(source)
    (package / "b.py").write_text("from .a import g\n")
    assert _cycles(imports(package)) == [["p.a", "p.b"]]


def test_the_public_names_are_there_and_cheap():
    """Every name the package's front door offers resolves, and ``import snhoo_dask`` alone
    does not import Dask's client (a worker importing one module pays for what it uses)."""
    import subprocess
    import sys

    import snhoo_dask

    for name in snhoo_dask.__all__:
        assert getattr(snhoo_dask, name) is not None, name
    code = "import sys, snhoo_dask; print('distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _package_modules() -> list[str]:
    return sorted(name for name in _modules(PACKAGE) if name != "snhoo_dask.__main__")


def test_every_error_class_is_a_snhoo_error():
    """An error snhoo-dask defines is one of its own (``errors.SnhooError``): the command line
    shows it as one line, and a caller can catch every error raised on purpose at once."""
    import importlib
    import inspect

    from snhoo_dask.errors import SnhooError

    outside = []
    for name in _package_modules():
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException) and not issubclass(cls, SnhooError):
                outside.append(f"{name}.{cls_name}")
    assert outside == []


MAX_MODULE_LINES = 450


def test_no_module_is_over_450_lines():
    """A module that grows past this is split by concern (a reader holds one job at a time)."""
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
