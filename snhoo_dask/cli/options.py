"""How the command line is read, beyond Click's defaults: usage errors in one line
(``OneLineGroup``), an option given twice refused (``OnceEach``), the scheduler found
by Dask's conventions (``scheduler_address``)."""

from __future__ import annotations

import sys

import click

from ..errors import SnhooError, UsageError
from ..jobs.summary import EXIT_INTERRUPTED, EXIT_USAGE
from .text import shown


class GivenTwice(UsageError):
    """Shown as the command's other usage errors are (``OneLineGroup``)."""


class OnceEach(click.Command):
    """Refuses a single-value option given more than once (flags and repeatable options may be)."""

    def make_parser(self, ctx: click.Context):
        parser = super().make_parser(ctx)
        parse = parser.parse_args

        def parse_once(args: list[str]):
            opts, rest, order = parse(args)  # ``order`` names an option each time it appears
            seen: set[click.Parameter] = set()
            for param in order:
                if not isinstance(param, click.Option) or param.multiple or param.is_flag or param.count:
                    continue
                if param in seen and not ctx.resilient_parsing:
                    raise GivenTwice(f"{max(param.opts, key=len)} given twice")
                seen.add(param)
                _not_too_long(param, opts.get(param.name), ctx)
            return opts, rest, order

        # Click has no hook between parsing and its own checks: this parser instance's
        # method is replaced (mypy refuses assigning to a method).
        parser.parse_args = parse_once  # type: ignore[method-assign]
        return parser


# A number option's value longer than this is refused unread: Python will not even turn a
# text of over 4,300 digits into an int, and Click's own error would echo all of it.
MAX_NUMBER_TEXT = 40
_NUMBERS = (click.types.IntParamType, click.types.FloatParamType)


def _not_too_long(param: click.Option, value: object, ctx: click.Context) -> None:
    if isinstance(param.type, _NUMBERS) and isinstance(value, str) and len(value) > MAX_NUMBER_TEXT:
        name = max(param.opts, key=len)
        raise GivenTwice(f"{name}: a number of {len(value)} characters is not one it can take")


def exit_status(error: SnhooError) -> int:
    """The command's exit status for an error raised on purpose: its own ``exit_code`` when
    it has one (``ReportError``), 2 for a usage error, else 1."""
    code = getattr(error, "exit_code", None)
    if isinstance(code, int):
        return code
    return EXIT_USAGE if isinstance(error, UsageError) else 1


class OneLineGroup(click.Group):
    """Every usage error Click finds itself (an unknown option or command, a value out of
    range, a missing ROOT) in the one line ``snhoo-dask: error: ...`` and exit status 2,
    as the command's own; Click's default is a four-line usage block."""

    def main(self, args=None, prog_name=None, complete_var=None, **extra):  # type: ignore[override]
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            click.echo(f"snhoo-dask: error: {e.format_message()}", err=True)  # did-you-mean kept
            sys.exit(EXIT_USAGE)
        except SnhooError as e:  # raised on purpose: its one line, never a traceback
            click.echo(f"snhoo-dask: error: {shown(str(e))}", err=True)
            sys.exit(exit_status(e))
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort as e:
            if isinstance(e.__cause__, KeyboardInterrupt):  # Ctrl-C before the job's own handlers
                click.echo("interrupted; nothing was processed", err=True)
                sys.exit(EXIT_INTERRUPTED)
            click.echo("Aborted!", err=True)
            sys.exit(1)
        # --help, --version, shell completion: Click's own exit status.
        sys.exit(code if isinstance(code, int) else 0)


SCHEDULER_ENVS = ("SNHOO_SCHEDULER", "DASK_SCHEDULER_ADDRESS")
LOCAL_ONLY = ("workers", "threads_per_worker", "dashboard_address")


def scheduler_address(ctx: click.Context, scheduler: str | None, scheduler_file: str | None) -> str | None:
    """The scheduler to use, first of: --scheduler, --scheduler-file, $SNHOO_SCHEDULER,
    $DASK_SCHEDULER_ADDRESS (Dask's own; Dask's config files may set it too); None: a
    local cluster.  UsageError for a file that holds no address or an address that is none."""
    from ..jobs.cluster import check_address

    given = ctx.get_parameter_source("scheduler") == click.core.ParameterSource.COMMANDLINE
    if scheduler and given:
        return check_address(scheduler)
    if scheduler_file:
        return check_address(read_scheduler_file(scheduler_file))
    if scheduler:  # $SNHOO_SCHEDULER, through the option's envvar
        return check_address(scheduler)
    import dask

    from_dask = dask.config.get("scheduler-address", None)  # $DASK_SCHEDULER_ADDRESS
    return check_address(str(from_dask)) if from_dask else None


def read_scheduler_file(path: str) -> str:
    """The address in a Dask scheduler file (``dask scheduler --scheduler-file``'s JSON)."""
    import json

    from ..errors import UsageError

    try:
        with open(path, encoding="utf-8") as f:
            address = json.load(f).get("address")
    except OSError as e:
        raise UsageError(f"cannot read --scheduler-file {path}: {e.strerror or e}") from None
    except (ValueError, AttributeError):
        raise UsageError(
            f"--scheduler-file {path} is not a Dask scheduler file (JSON with an address)"
        ) from None
    if not isinstance(address, str) or not address:
        raise UsageError(f"--scheduler-file {path} names no scheduler address")
    return address


def ignored_with_scheduler(ctx: click.Context) -> str | None:
    """A warning naming the local-cluster options given that a running scheduler ignores."""
    given = [
        max(p.opts, key=len)
        for p in ctx.command.params
        if p.name in LOCAL_ONLY
        and ctx.get_parameter_source(p.name)
        in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    ]
    if not given:
        return None
    return (
        f"warning: {', '.join(given)} {'does' if len(given) == 1 else 'do'} nothing with a running "
        "scheduler: its own workers run the job"
    )
