"""The ``serve`` command's error contract: any configuration error is one line
``snhoo-dask: error: ...`` and exit status 2, so a systemd unit can say
``RestartPreventExitStatus=2`` (restarting cannot fix a bad option)."""

from __future__ import annotations

import sys

import click

CONFIG_ERROR = 2


def config_error(message: str) -> None:
    click.echo(f"snhoo-dask: error: {message}", err=True)
    sys.exit(CONFIG_ERROR)


class OneLineErrors(click.Command):
    """Option parsing errors in the same one line, instead of click's usage block."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            config_error(f"{info_name}: {e.format_message()}")
