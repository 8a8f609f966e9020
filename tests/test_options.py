"""Every option is declared once (snhoo_dask/options.py) and both front ends follow it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from snhoo_dask.cli import commands
from snhoo_dask.errors import UsageError
from snhoo_dask.options import DEFAULTS, Options, by_name, check, declared
from snhoo_dask.web.validate import PathPolicy, RequestError, Submission
from snhoo_dask.web.validate import build_job as web_build_job

PACKAGE = Path(__file__).resolve().parent.parent / "snhoo_dask"
# The selection's options default to "not given" (None, False); their names (``frames``) are
# also the record's counts, so only the options with a default of their own are looked for.
NAMES = {d.name for d in declared(Options)} | {d.web_name for d in declared(Options)}


def _literal_defaults(tree: ast.AST):
    """(line, name) of every literal default given to something named like an option: a
    parameter, a class field, a keyword argument, or ``mapping.get("name", literal)``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
            pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
            for arg, default in pairs:
                if arg.arg in NAMES and _is_literal(default):
                    yield node.lineno, arg.arg
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.target.id in NAMES and node.value is not None and _is_literal(node.value):
                yield node.lineno, node.target.id
        elif isinstance(node, ast.Call):
            for kw in node.keywords if _name(node.func) in BUILDERS else ():
                if kw.arg in NAMES and _is_literal(kw.value):
                    yield node.lineno, kw.arg
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "get"
                and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in NAMES
                and _is_literal(node.args[1])
            ):
                yield node.lineno, node.args[0].value


# What takes options by keyword: a literal given to one of these is a second default.
BUILDERS = {"Settings", "JobSpec", "Submission", "Options", "checked", "replace"}


def _name(func: ast.AST) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _is_literal(node: ast.AST) -> bool:
    # None, True and False say "not given" and "off"; a number or a word is a default.
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool | type(None))


def test_every_option_default_is_written_once_in_the_package():
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "options.py" and path.parent == PACKAGE:
            continue
        for line, name in _literal_defaults(ast.parse(path.read_text(), str(path))):
            found.append(f"{path.relative_to(PACKAGE)}:{line} {name}")
    assert found == []


def test_the_default_finder_sees_a_repeated_default():
    # The rule above would miss nothing it is meant to catch: each form it knows, planted.
    planted = textwrap.dedent(
        """
        def f(quality=90): ...
        class S:
            fmt: str = "jpg"
        Settings(timeout=120)
        client.close(timeout=5)
        body.get("format", "png")
        """
    )
    assert sorted(name for _, name in _literal_defaults(ast.parse(planted))) == [
        "fmt",
        "format",
        "quality",
        "timeout",
    ]


@pytest.mark.parametrize("d", [d for d in declared(Options) if d.meta.low is not None], ids=lambda d: d.name)
def test_every_bound_is_kept_the_same_on_the_command_line_and_the_web(tmp_path, d):
    low, high = d.meta.low, d.meta.high
    inside = int(low) if d.kind is int else float(low)
    assert check(d.name, inside) == inside
    past = (int(high) + 1) if d.kind is int else float(high) * 2 + 1
    with pytest.raises(UsageError) as e:
        check(d.name, past)
    assert e.value.field == d.name and d.flags[0] in str(e.value)
    (tmp_path / "v").mkdir()
    res = CliRunner().invoke(commands.main, ["run", str(tmp_path / "v"), d.flags[0], str(past), "--dry-run"])
    assert res.exit_code == 2 and str(e.value) in res.output
    policy = PathPolicy.make([str(tmp_path)], [str(tmp_path)])
    with pytest.raises(RequestError) as web:
        web_build_job(Submission.from_json({"roots": ["v"], d.web_name: past}), policy, lambda out: None)
    assert (web.value.status, web.value.field) == (400, d.web_name)
    assert web.value.message == e.value.worded(lambda name: by_name()[name].web_name.replace("_", " "))


DUMMY = textwrap.dedent(
    """
    import dataclasses, json, sys
    import snhoo_dask.options as o

    @dataclasses.dataclass(kw_only=True)
    class Options(o.Options):
        shiny: int | None = o.option(None, "A dummy option.", label="How shiny", low=1, high=5,
                                     section="advanced", default_text="3")

    o.Options = Options
    o.DEFAULTS = Options()
    from click.testing import CliRunner
    from tornado.template import Loader
    from snhoo_dask.cli import commands
    from snhoo_dask.web import handlers, validate

    help = CliRunner().invoke(commands.main, ["run", "--help"]).output
    sub = validate.Submission.from_json({"roots": ["r"], "shiny": 4})
    try:
        validate.Submission.from_json({"roots": ["r"], "shiny": "very"})
        refused = ""
    except validate.RequestError as e:
        refused = e.message
    form = Loader(sys.argv[1]).load("option_fields.html").generate(
        options=handlers.FORM_SECTIONS["advanced"], sub=sub, bad=set()).decode()
    print(json.dumps({"help": help, "spec": sub.spec(), "refused": refused, "form": form}))
    """
)


def test_an_option_added_to_the_table_appears_on_the_command_line_and_the_web():
    templates = PACKAGE / "web" / "templates"
    out = subprocess.run(
        [sys.executable, "-c", DUMMY, str(templates)], capture_output=True, text=True, timeout=120, check=True
    )
    seen = json.loads(out.stdout)
    assert "--shiny" in seen["help"] and "A dummy option.  [default: 3]" in seen["help"]
    assert seen["spec"]["shiny"] == 4
    assert seen["refused"] == "shiny must be a whole number from 1 to 5"
    assert 'name="shiny"' in seen["form"] and "How shiny" in seen["form"]


def test_defaults_are_the_tables():
    assert DEFAULTS.quality == by_name()["quality"].default
    assert Submission(roots=[]).options() == DEFAULTS.options()
