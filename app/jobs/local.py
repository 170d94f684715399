"""The embedded default: jobs run by the API process itself, one build thread at a time.

Used when there is no Redis. Jobs live in memory (the newest ``MAX_RECORDS`` are kept), so
they are seen by the process that took them only: serve with one process
(``TANDEM_WORKERS=1``), or configure Redis and run ``tandem worker``. Builds run in a worker
thread (``execute_job``), so the event loop keeps answering requests; the index registry
notices the published version within ``TANDEM_REFRESH_INTERVAL_MS``. Builds share the
process's torch threads (``TANDEM_TORCH_THREADS``, 1 while serving): for large corpora use
Redis and ``tandem worker``, which builds with every core. At shutdown, running
builds are cancelled (nothing is published) and awaited, queued jobs end ``cancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import anyio.to_thread

from app.jobs.backend import HealthState, busy
from app.jobs.errors import JobFinished, JobNotFound
from app.jobs.models import JobRecord, JobSpec, error_dict
from app.jobs.progress import ProgressTracker
from app.jobs.sources import remove_folder, upload_folder
from app.settings import Settings

log = logging.getLogger("tandem.jobs")

#: Jobs remembered (finished ones are forgotten oldest first).
MAX_RECORDS = 1000
#: How long shutdown waits for cancelled builds to stop.
STOP_TIMEOUT_S = 120.0


@dataclass
class _Job:
    record: JobRecord
    tracker: ProgressTracker = field(default_factory=ProgressTracker)
    cancel: threading.Event = field(default_factory=threading.Event)


class LocalJobs:
    """Jobs in memory, run by ``TANDEM_JOB_LOCAL_WORKERS`` tasks of the API's event loop."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jobs: OrderedDict[str, _Job] = OrderedDict()
        self._active: dict[str, str] = {}
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        # the builder's modules load in a thread, not on the event loop at the first job
        await anyio.to_thread.run_sync(importlib.import_module, "app.jobs.runner")
        self._workers = [
            asyncio.create_task(self._work(), name=f"tandem-job-worker-{i}")
            for i in range(self.settings.job_local_workers)
        ]
        log.info("jobs: in-process worker (%d at a time)", len(self._workers))

    async def close(self) -> None:
        for job in self._jobs.values():
            if job.record.state == "queued":
                self._end(job, "cancelled", error=error_dict("cancelled", "the service stopped"))
            job.cancel.set()
        # An idle worker stops at once; a busy one once its build has noticed the cancel.
        for task in self._workers:
            task.cancel()
        if self._workers:
            await asyncio.wait(self._workers, timeout=STOP_TIMEOUT_S)
        self._workers = []

    # -- API -----------------------------------------------------------------------------------
    async def check_free(self, index: str) -> None:
        other_id = self._active.get(index)
        if other_id is not None:
            raise busy(index, await self.get(other_id), other_id)

    async def submit(self, spec: JobSpec) -> JobRecord:
        await self.check_free(spec.index)
        job = _Job(JobRecord(spec))
        self._jobs[spec.job_id] = job
        self._active[spec.index] = spec.job_id
        self._prune()
        self._queue.put_nowait(spec.job_id)
        return self._view(job)

    async def get(self, job_id: str) -> JobRecord | None:
        job = self._jobs.get(job_id)
        return None if job is None else self._view(job)

    async def list(self, index: str | None, limit: int) -> list[JobRecord]:
        out = []
        for job in reversed(self._jobs.values()):
            if index is None or job.record.index == index:
                out.append(self._view(job))
                if len(out) >= limit:
                    break
        return out

    async def cancel(self, job_id: str) -> JobRecord:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"job {job_id!r} not found")
        if job.record.finished:
            raise JobFinished(f"job {job_id} has already ended ({job.record.state})")
        job.cancel.set()
        if job.record.state == "queued":
            self._end(job, "cancelled", error=error_dict("cancelled", "cancelled by request"))
        return self._view(job)  # a running job: "cancelling" until its build stops

    async def health(self) -> tuple[HealthState, str]:
        alive = sum(not t.done() for t in self._workers)
        if not alive:
            return "down", "the in-process job worker is not running"
        queued = sum(j.record.state == "queued" for j in self._jobs.values())
        running = sum(j.record.state == "running" for j in self._jobs.values())
        return "ok", f"in-process worker: {running} running, {queued} queued"

    # -- the worker ----------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            job = self._jobs.get(job_id)
            if job is None or job.record.state != "queued":
                continue
            try:
                await self._run(job)
            except Exception:  # a bug here must not stop the worker
                log.exception("job %s: unexpected failure", job_id)
                if not job.record.finished:
                    self._end(job, "failed", error=error_dict("job_failed", "internal error"))

    async def _run(self, job: _Job) -> None:
        from app.jobs.runner import execute_job, failure_of  # imported by start()
        from indexers.builder import BuildCancelled

        rec = job.record
        rec.state, rec.started_at, rec.attempts = "running", time.time(), rec.attempts + 1
        log.info("job %s: %s of index %s started", rec.job_id, rec.spec.action, rec.index)
        try:
            result = await anyio.to_thread.run_sync(
                execute_job, rec.spec, self.settings, job.tracker, job.cancel.is_set
            )
        except BuildCancelled as exc:
            self._end(job, "cancelled", error=failure_of(exc))
        except asyncio.CancelledError:  # shutdown: the build thread has stopped by now
            self._end(job, "cancelled", error=error_dict("cancelled", "the service stopped"))
            raise
        except Exception as exc:  # noqa: BLE001 - every failure ends the job, reported
            log.warning("job %s failed: %s", rec.job_id, failure_of(exc)["message"])
            self._end(job, "failed", error=failure_of(exc))
        else:
            self._end(job, "done", result=result)

    def _end(
        self,
        job: _Job,
        state: str,
        *,
        result: dict[str, object] | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        rec = job.record
        rec.progress = job.tracker.snapshot()
        rec.state = state  # type: ignore[assignment]
        rec.result, rec.error, rec.finished_at = result, error, time.time()
        if self._active.get(rec.index) == rec.job_id:
            del self._active[rec.index]
        if rec.spec.upload:
            remove_folder(upload_folder(self.settings, rec.job_id))
        log.info("job %s: %s", rec.job_id, state)

    def _view(self, job: _Job) -> JobRecord:
        rec = job.record
        if rec.state == "running":
            return JobRecord(
                rec.spec,
                "cancelling" if job.cancel.is_set() else rec.state,
                job.tracker.snapshot(),
                None,
                None,
                rec.started_at,
                None,
                rec.attempts,
            )
        return rec

    def _prune(self) -> None:
        while len(self._jobs) > MAX_RECORDS:
            oldest = next((k for k, j in self._jobs.items() if j.record.finished), None)
            if oldest is None:
                return
            with contextlib.suppress(KeyError):
                del self._jobs[oldest]
