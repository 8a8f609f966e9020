"""The ``snhoo-dask`` command: click options turned into a job spec, then one call.

``commands`` holds the click commands (run, serve, report, samples); ``terminal`` runs a
job with its live progress line; ``options`` and ``progress`` are their small helpers.
"""

from .commands import entry, main

__all__ = ["entry", "main"]
