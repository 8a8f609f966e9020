"""The client side of a job: everything that runs where ``snhoo-dask run`` (or the web's
job runner) runs, before, around and after the tasks.

- ``discover``: find the videos under the roots (one ``model.Video`` each).
- ``prepare``: check the output folder (not inside or around another run's output).
- ``planning``: resume: which videos a finished earlier run already did; what a run would do (the dry run).
- ``lock``: one run per output folder.
- ``tasks``: the one module that submits worker tasks (single videos, batches, pieces).
- ``job``: a whole job: discover -> plan -> submit -> collect records -> manifest -> report.
- ``summary``: the counts and the exit status; ``cluster``/``dashboard``: the Dask cluster.
"""

from .job import Job, new_run_id
from .summary import Summary

__all__ = ["Job", "Summary", "new_run_id"]
