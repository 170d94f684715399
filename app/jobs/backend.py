"""The two job backends behind one interface, and the one that the settings pick."""

from __future__ import annotations

from typing import Literal, Protocol

from app.jobs.models import JobRecord, JobSpec
from app.settings import Settings
from stores.errors import IndexBusy

HealthState = Literal["ok", "absent", "down"]


class JobBackend(Protocol):
    """Submit, watch, list and cancel jobs (:class:`LocalJobs` or :class:`RedisJobs`)."""

    name: str

    async def start(self) -> None:
        """Start background work (the in-process worker, the lost-job sweeper)."""

    async def close(self) -> None:
        """Stop it; running builds are cancelled and awaited."""

    async def check_free(self, index: str) -> None:
        """Raise :class:`IndexBusy` (409) if ``index`` has a queued or running job."""

    async def submit(self, spec: JobSpec) -> JobRecord:
        """Queue a job; :class:`IndexBusy` if its index already has an active one."""

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def list(self, index: str | None, limit: int) -> list[JobRecord]:
        """Jobs, newest first (of one index, or of every index)."""

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job (:class:`JobFinished` if it has ended)."""

    async def health(self) -> tuple[HealthState, str]: ...


def busy(index: str, other: JobRecord | None, other_id: str) -> IndexBusy:
    state = other.state if other is not None else "active"
    return IndexBusy(
        f"index {index!r} already has a {state} job ({other_id}): wait for it to end, or "
        f"cancel it with DELETE /v1/jobs/{other_id}"
    )


def backend_kind(settings: Settings) -> Literal["redis", "local"]:
    if settings.jobs_backend == "redis" or (settings.jobs_backend == "auto" and settings.redis_url):
        return "redis"
    return "local"


def create_backend(settings: Settings) -> JobBackend:
    """The Redis queue when ``TANDEM_REDIS_URL`` is set (or ``TANDEM_JOBS_BACKEND=redis``),
    else the in-process worker."""
    if backend_kind(settings) == "redis":
        from app.jobs.queue import RedisJobs

        return RedisJobs(settings)
    from app.jobs.local import LocalJobs

    return LocalJobs(settings)
