"""A rule of option parsing Click has no switch for: an option that takes one value may be
given once.  Click keeps the last of ``--frames 1 --frames 2`` without a word, so a
command line assembled by a script (a default, then the user's own) would silently run
with only one of them."""

from __future__ import annotations

import click

from ..jobs.summary import EXIT_USAGE


class GivenTwice(click.UsageError):
    """Shown as the command's other usage errors are: one line, exit status 2."""

    exit_code = EXIT_USAGE

    def show(self, file=None) -> None:
        click.echo(f"snhoo-dask: error: {self.format_message()}", err=True, file=file)


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
                    raise GivenTwice(f"{max(param.opts, key=len)} given twice", ctx)
                seen.add(param)
            return opts, rest, order

        parser.parse_args = parse_once
        return parser
