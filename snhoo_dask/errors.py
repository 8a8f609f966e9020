"""Errors a user can cause before any video is processed: one line each, exit status 2."""

from __future__ import annotations


class JobError(Exception):
    """The job cannot start (a usage problem); the message is one line for the user."""
