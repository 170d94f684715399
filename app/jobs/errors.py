"""Errors of the jobs API (part of the one :class:`~core.errors.TandemError` hierarchy)."""

from __future__ import annotations

from core.errors import TandemError
from indexers.errors import SourceNotFound


class JobNotFound(TandemError):
    code = "job_not_found"
    status = 404


class JobFinished(TandemError):
    """Cancel asked of a job that has already ended."""

    code = "job_finished"
    status = 409


class InvalidSource(TandemError):
    """A source that is not a usable relative path (absolute, empty, missing, ...)."""

    code = "invalid_source"
    status = 400
    exit_code = 2


class SourceForbidden(TandemError):
    """A source that leads outside ``TANDEM_SOURCES_ROOT`` (``..``, a symlink out)."""

    code = "source_forbidden"
    status = 403
    exit_code = 2


class SourcesDisabled(TandemError):
    """Paths were given but no ``TANDEM_SOURCES_ROOT`` is configured."""

    code = "sources_disabled"
    status = 403
    exit_code = 2


class JobsUnavailable(TandemError):
    """The job queue (Redis) cannot be reached, or jobs are switched off."""

    code = "jobs_unavailable"
    status = 503


#: A ``remove`` naming a source or document id that no document of the index has: the one
#: ``source_not_found`` error (404 in the API, exit 1 on the CLI), raised at submission here.
SourceNotInIndex = SourceNotFound


class RayAddressForbidden(TandemError):
    """A job names a Ray cluster the server is not configured to use (``ray_addresses``)."""

    code = "ray_address_forbidden"
    status = 403
    exit_code = 2
