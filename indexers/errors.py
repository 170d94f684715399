"""Errors of index builds."""

from __future__ import annotations

from core.errors import TandemError


class EmptyBuild(TandemError):
    """The build would publish a version with no documents: nothing is published."""

    code = "empty_build"
    status = 422
    exit_code = 1


class StrictBuildFailed(TandemError):
    """``--strict``: a file failed or was skipped, so nothing is published."""

    code = "strict_build_failed"
    status = 422
    exit_code = 1


class SourceNotFound(TandemError):
    """A removal names sources or document ids that no document of the index has (the jobs
    API answers the same code at submission)."""

    code = "source_not_found"
    status = 404
    exit_code = 1
