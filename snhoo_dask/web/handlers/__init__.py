"""Tornado handlers: the pages (submit, jobs, job, a job's output folder) and the JSON API
under them, on one ``Base`` that checks who is asking."""

from .api import Api, ApiJob, ApiJobs, ApiNotFound, ApiResume, ApiStop, ApiVideo
from .base import Base, check_host, from_out, untrusted
from .pages import (
    FORM_SECTIONS,
    JobPage,
    JobsPage,
    OutputFile,
    ReportFile,
    ResumeForm,
    SheetImage,
    StopForm,
    SubmitPage,
)

__all__ = [
    "FORM_SECTIONS",
    "Api",
    "ApiJob",
    "ApiJobs",
    "ApiNotFound",
    "ApiResume",
    "ApiStop",
    "ApiVideo",
    "Base",
    "JobPage",
    "JobsPage",
    "OutputFile",
    "ReportFile",
    "ResumeForm",
    "SheetImage",
    "StopForm",
    "SubmitPage",
    "check_host",
    "from_out",
    "untrusted",
]
