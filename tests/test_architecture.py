"""The package's shape, as docs/architecture.md draws it: checked on the source, so a new
import that breaks it fails here instead of in a newcomer's head.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a
cycle hidden in a lazy import is still a cycle for whoever reads the code.
"""

from __future__ import annotations

import ast
import re
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


# ``module.name`` in a docstring: a reference a reader follows.  Ending in one of these it
# names a file the program reads or writes (``manifest.jsonl``), not code.
_REF = re.compile(r"``([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)``")
_DATA_FILES = {"jsonl", "json", "html", "csv", "tar", "txt", "mp4", "lock", "md", "yml", "sh", "service"}
_DATA_FILES |= {"exports", "parquet", "jpg", "png", "tmp", "log", "d", "conf", "toml", "nut", "js", "css"}


def _has(obj: object, names: list[str]) -> bool:
    """Whether ``obj.a.b...`` exists: an attribute, a dataclass field or an annotation, or
    (on a class) an attribute its methods set on ``self``."""
    import inspect

    for n in names:
        if hasattr(obj, n):
            obj = getattr(obj, n)
            continue
        if not isinstance(obj, type):
            return False
        if any(n in getattr(c, "__annotations__", {}) for c in obj.__mro__):
            return True
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError):
            return False
        return re.search(rf"self\.{n}\b\s*(?::[^=]*)?=", source) is not None
    return True


def _resolves(ref: str, here: str, params: dict[str, str | None], modules: list[str]) -> bool:
    import importlib
    import importlib.util

    parts = ref.split(".")
    if parts[-1] in _DATA_FILES:
        return True
    if parts[-1] == "py":  # a module by its file name
        stem = ".".join(parts[:-1])
        return any(m == f"snhoo_dask.{stem}" or m.endswith(f".{stem}") for m in modules)
    if parts[0] in params:  # an argument's attribute: through its annotation, when it has one
        kind = params[parts[0]]
        if kind is None or _resolves(".".join([kind, *parts[1:]]), here, {}, modules):
            return True
    if parts[0] == "snhoo_dask":
        parts = parts[1:]
    if _has(importlib.import_module(here), parts[:1]):
        return _has(importlib.import_module(here), parts)
    for k in range(len(parts) - 1, 0, -1):  # a module named by its last components
        stem = ".".join(parts[:k])
        for m in modules:
            if (m == f"snhoo_dask.{stem}" or m.endswith(f".{stem}")) and _has(
                importlib.import_module(m), parts[k:]
            ):
                return True
    for m in modules:  # a class or function of the package, by its own name
        if parts[0] in vars(importlib.import_module(m)) and _has(importlib.import_module(m), parts):
            return True
    if importlib.util.find_spec(parts[0]) is None:  # not a library either
        return False
    obj: object = importlib.import_module(parts[0])
    for k in range(1, len(parts)):
        try:
            obj = importlib.import_module(".".join(parts[: k + 1]))
        except ImportError:
            return _has(obj, parts[k:])
    return True


def test_every_dotted_name_a_docstring_gives_exists():
    """``module.name`` and ``Class.attribute`` in the package's docstrings name code that is
    there (a renamed or moved name leaves no dangling pointer behind)."""
    modules = [m for m in _package_modules()]
    dangling = []
    for name in modules:
        tree = ast.parse(_modules(PACKAGE)[name].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            params: dict[str, str | None] = {}
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                    annotation = ast.unparse(a.annotation) if a.annotation is not None else None
                    params[a.arg] = annotation if annotation and annotation.isidentifier() else None
            for ref in _REF.findall(ast.get_docstring(node, clean=False) or ""):
                if not _resolves(ref, name, params, modules):
                    dangling.append(f"{name}: {ref}")
    assert dangling == []
