"""The ``snhoo-dask`` command: parses options and hands off to the library."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable

import click

from .. import __version__
from ..errors import JobError, UsageError
from ..jobs.cluster import DEFAULT_DASHBOARD, ClusterError, ClusterSpec
from ..jobs.spec import JobSpec, build_job
from ..jobs.summary import EXIT_USAGE
from ..options import Options, Selected, declared
from ..web.auth import TOKEN_ENV
from . import terminal
from .dry_run import dry_run as dry_run_command
from .options import OnceEach, OneLineGroup, ignored_with_scheduler, scheduler_address
from .serve_errors import OneLineErrors, config_error
from .text import shown


def entry() -> None:
    """The console script: the command, then an exit without tearing the interpreter down.

    Freeing Dask's, Bokeh's and Tornado's objects one by one at exit cost 0.45 s of CPU
    per run here (paired runs, import then exit: 1.64 s against 1.19 s), more than a
    short clip's decoding.  By the time the command returns, every file it wrote is
    closed and the cluster is shut down, so there is nothing left for that teardown to do.
    An exception that escapes ``main`` still ends the normal way, with its traceback.
    """
    status: str | int | None = 0
    try:
        main(prog_name="snhoo-dask")
    except SystemExit as e:
        status = e.code
    if status is None:
        code = 0
    elif isinstance(status, int):
        code = status
    else:
        print(status, file=sys.stderr)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe (| head): nothing more can reach the reader anyway
    os._exit(code)


def fail_usage(message: str) -> None:
    click.echo(f"snhoo-dask: error: {shown(message)}", err=True)
    sys.exit(EXIT_USAGE)


LOG_LEVELS = ("debug", "info", "warning", "error")


def job_options(command: Callable) -> Callable:
    """The job's options as command-line options, from their one declaration
    (``options.Options``, ``options.Selected``).  Types are converted here; their bounds
    and choices are checked by the job spec (``options.check``), in the same words the web
    uses, with the flags as the option names."""
    for d in reversed([*declared(Selected), *declared(Options)]):
        if not d.meta.cli:
            continue
        flags = [*d.flags]
        kwargs: dict = {"help": d.help_text()}
        if d.meta.switch:
            # --stage/--no-stage: two of the choices, neither given is the default one.
            flags = [f"{flags[0]}/--no-{flags[0][2:]}"]
            kwargs["default"] = None
            kwargs["callback"] = _switch(d)
        elif d.kind is bool:
            kwargs["is_flag"] = True
        else:
            kwargs["type"] = {int: click.INT, float: click.FLOAT, str: click.STRING}[d.kind]
            kwargs["default"] = d.default
            kwargs["show_default"] = False  # said in the help, with the library's own defaults
            if d.meta.choices:
                kwargs["metavar"] = "|".join(d.meta.choices)
        command = click.option(*flags, d.name, **kwargs)(command)
    return command


def _switch(d) -> Callable:
    on, off = d.meta.switch

    def mode(ctx: click.Context, param: click.Parameter, value: bool | None) -> str:
        return d.default if value is None else (on if value else off)

    return mode


def cluster_options(command):
    """--scheduler, or the size of the embedded LocalCluster: shared by run and serve."""
    for option in reversed(
        [
            click.option(
                "--scheduler",
                envvar="SNHOO_SCHEDULER",
                help="Address of a running Dask scheduler, tcp://HOST:8786 (or $SNHOO_SCHEDULER, "
                "else $DASK_SCHEDULER_ADDRESS). Without one, a local cluster is started.",
            ),
            click.option(
                "--scheduler-file",
                type=click.Path(dir_okay=False),
                help="The scheduler's address from the JSON file `dask scheduler --scheduler-file` "
                "writes (after --scheduler, before the environment).",
            ),
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                help="Local cluster: workers (default: one per core).",
            ),
            click.option("--threads-per-worker", type=click.IntRange(min=1), default=1, show_default=True),
            click.option(
                "--dashboard-address",
                default=DEFAULT_DASHBOARD,
                show_default=True,
                help="Local cluster: where the Dask dashboard listens.",
            ),
        ]
    ):
        command = option(command)
    return command


class UnreadPath(click.Path):
    """A path taken as typed.  Click's Path stats it while parsing, in the main thread and
    unbounded: a ROOT on a disk that hangs would hang there, deaf to Ctrl-C.  The job reads
    the roots and the output folder itself, bounded in time (``jobs.spec.build_job``)."""

    def convert(self, value, param, ctx):
        return os.fsdecode(value)


UNREAD_PATH = UnreadPath()


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snhoo-dask")
def main() -> None:
    """Turn folders of videos into still images on a Dask cluster."""


@main.command(cls=OnceEach)
# Checked by discovery (a folder, or one video file).
@click.argument("roots", nargs=-1, required=True, metavar="ROOT...", type=UNREAD_PATH)
@click.option(
    "--out",
    "-o",
    default="snhoo-output",
    show_default=True,
    type=UNREAD_PATH,
    help="Output folder: OUT/<root name>/<video path>/ per video, plus manifest.jsonl.",
)
@job_options
@cluster_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Say what a run would do (videos per root and type, new/skip/redo with why, files known "
    "to fail) and the first 20 videos; process nothing.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a machine-readable summary on stdout at the end (docs/output.md); nothing else goes there.",
)
@click.option("--verbose", "-v", count=True, help="Log more: -v what Dask and snhoo-dask do, -vv debugging.")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Log level for snhoo-dask and Dask (overrides -v).  [default: warning]",
)
def run(
    scheduler: str | None,
    workers: int | None,
    threads_per_worker: int,
    dashboard_address: str,
    scheduler_file: str | None,
    dry_run: bool,
    quiet: bool,
    as_json: bool,
    verbose: int,
    log_level: str | None,
    **options: object,
) -> None:
    """Extract frames from every video under ROOT(s); a ROOT may also be one video file."""
    ctx = click.get_current_context()
    spec = JobSpec.from_names(options)  # the command's options are named as the spec's fields
    dry_run = dry_run or spec.list_videos
    try:
        if as_json and dry_run:
            raise UsageError("--json summarises a run; --dry-run and --list say what it would do as text")
        address = None if dry_run else scheduler_address(ctx, scheduler, scheduler_file)
        job = build_job(spec, dry_run=dry_run)
    except UsageError as e:
        fail_usage(str(e))
    if dry_run:
        sys.exit(dry_run_command(job, list_all=spec.list_videos))
    level = set_log_level(log_level, verbose)
    if address and (warning := ignored_with_scheduler(ctx)):
        click.echo(warning, err=True)
    cluster = ClusterSpec(address, workers, threads_per_worker, dashboard_address, log_level=level)
    try:
        code = terminal.run_job(job, cluster, quiet, as_json=as_json)
    except JobError as e:
        fail_usage(str(e))
    sys.exit(code)


def set_log_level(name: str | None, verbose: int) -> int:
    """Log to stderr at --log-level (or -v: info, -vv: debug); the level the embedded
    cluster's own logs are shown at (CRITICAL, none, unless asked)."""
    if name is None and not verbose:
        return logging.CRITICAL
    level = getattr(logging, name.upper()) if name else (logging.INFO if verbose == 1 else logging.DEBUG)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for logger in ("snhoo_dask", "distributed"):
        logging.getLogger(logger).setLevel(level)
    return level


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False))
def report(out: str) -> None:
    """Rebuild OUT/report.html from OUT/manifest.jsonl and the frame folders."""
    from ..output.report import build_report

    click.echo(build_report(out))


def _folders(flag: str, help: str) -> Callable:
    """A repeatable folder option; its parameter is named after the flag."""
    name = flag.lstrip("-").replace("-", "_")
    return click.option(flag, name, multiple=True, type=click.Path(), metavar="DIR", help=help)


@main.command(cls=OneLineErrors)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", type=click.IntRange(0, 65535), default=8888, show_default=True)
@_folders(
    "--allow",
    "Base folder that roots may lie under (repeatable). Nothing else can be read. "
    "A folder missing now (an unplugged disk) is shown as unavailable until it appears.",
)
@_folders(
    "--out-base",
    "Base folder that output folders must lie under (repeatable; default: the --allow folders).",
)
@click.option(
    "--state-dir",
    default="snhoo-state",
    show_default=True,
    type=click.Path(),
    help="Where the service keeps its job database (jobs.sqlite) and its token (token, mode 0600).",
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    help=f"The token every page and API call needs (or ${TOKEN_ENV}). "
    "Without it, one is made once and kept in STATE_DIR/token.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A Host name the service answers to besides loopback names, IP addresses and this "
    "machine's own names (repeatable; e.g. the name users type).",
)
@cluster_options
def serve(
    host: str,
    port: int,
    allow: tuple[str, ...],
    out_base: tuple[str, ...],
    state_dir: str,
    token: str | None,
    allowed_hosts: tuple[str, ...],
    scheduler: str | None,
    workers: int | None,
    threads_per_worker: int,
    dashboard_address: str,
    scheduler_file: str | None,
) -> None:
    """Web pages to submit, watch and review jobs (the old :8888 form, plus Flower).

    Configuration errors exit with status 2, other failures (no scheduler) with 1."""
    from ..web.server import ServeError
    from ..web.server import serve as serve_web

    ctx = click.get_current_context()
    try:
        scheduler = scheduler_address(ctx, scheduler, scheduler_file)
    except UsageError as e:
        config_error(str(e))
    if scheduler and (warning := ignored_with_scheduler(ctx)):
        click.echo(warning, err=True)
    try:
        serve_web(
            host=host,
            port=port,
            allow=list(allow),
            out_base=list(out_base),
            state_dir=state_dir,
            scheduler=scheduler,
            workers=workers,
            threads_per_worker=threads_per_worker,
            dashboard_address=dashboard_address,
            token=token,
            allowed_hosts=list(allowed_hosts),
        )
    except ServeError as e:
        config_error(str(e))
    except ClusterError as e:
        click.echo(f"snhoo-dask: error: {e}", err=True)
        sys.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="The table as JSON (one object, a list of disks).")
@click.option(
    "--eject",
    metavar="NAME",
    help="Safely eject the hot-plugged disk NAME: refused while anything on this host uses it (run on its storage host, as root).",
)
# The hot-plug unit's ExecStart and ExecStop (snhoo-disk@.service); not for people.
@click.option("--attach", metavar="DEV", hidden=True)
@click.option("--detach", metavar="DEV", hidden=True)
@click.option("--forget-stale", is_flag=True, hidden=True)
def disks(
    as_json: bool, eject: str | None, attach: str | None, detach: str | None, forget_stale: bool
) -> None:
    """The lab's disks: host, name, label, size, free space, state, videos ($SNHOO_DISKS_BASE)."""
    if attach is not None or detach is not None or forget_stale:
        from ..disks.hotplug import unit_main

        sys.exit(unit_main(attach if attach is not None else detach, attach is not None))
    from .disks import disks_command

    sys.exit(disks_command(as_json, eject))


@main.command()
@click.argument("folder", type=click.Path(file_okay=False), default="sample-videos")
def samples(folder: str) -> None:
    """Write a small corpus of test videos into FOLDER (default ./sample-videos)."""
    from .samples import make_samples

    try:
        paths = make_samples(folder)
    except (OSError, subprocess.CalledProcessError) as e:
        fail_usage(f"cannot make sample videos in {folder}: {e}")
    click.echo(f"{len(paths)} sample videos under {os.path.abspath(folder)}")
