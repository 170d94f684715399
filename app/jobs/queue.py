"""Jobs over Redis: a saq queue filled by the API and consumed by ``tandem worker`` processes.

Any number of workers, on any machine that shares the data dir (and the sources root, and
the upload dir) with the API, take jobs from the queue named ``TANDEM_JOB_QUEUE``. The saq job
*is* the record the API reads: its ``meta`` holds the job's spec, progress and error.

Keys (``<p>`` is ``TANDEM_CACHE_PREFIX:jobs``):

* ``<p>:active:<index>`` — the id of the index's queued or running job. Taken with ``SET NX``
  on submit (a second job gets 409 ``index_busy``), released when the job ends; a key left by
  a job that has ended (a killed worker) is taken over by the next submit and cleared by the
  sweeper.
* ``<p>:cancel:<job_id>`` — a cancel request; the worker running the job polls it.
* ``<p>:index:<index>`` and ``<p>:all`` — job ids by submission time, for listings.

A running job's worker writes its progress and heartbeat every ``TANDEM_JOB_HEARTBEAT_S / 4``
seconds at most (and on every progress change, at most twice a second). A worker that dies
(``SIGKILL``, lost machine) stops that heartbeat: after ``TANDEM_JOB_HEARTBEAT_S`` the sweeper
(every ``TANDEM_JOB_SWEEP_S`` in each worker and each API process) retries the job when
``TANDEM_JOB_RETRIES`` allows, else ends it ``failed`` with the code ``worker_lost``. A killed
build leaves only its staging folder, which the next build removes: the index keeps serving
its current version. ``SIGTERM`` stops a worker gracefully: its build is cancelled (nothing is
published) and the job goes back to the queue for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.jobs.backend import HealthState, busy
from app.jobs.errors import JobFinished, JobNotFound, JobsUnavailable
from app.jobs.models import (
    JobRecord,
    JobSpec,
    JobState,
    Progress,
    error_dict,
    is_job_id,
)
from app.jobs.progress import ProgressTracker
from app.jobs.sources import remove_folder, upload_folder, upload_root
from app.settings import Settings
from core.errors import TandemError, UsageError

if TYPE_CHECKING:
    from saq import Job, Queue

log = logging.getLogger("tandem.jobs")

#: The saq function name of a build job.
FUNCTION = "tandem.build"
#: saq's error on a job swept because its worker stopped sending heartbeats.
WORKER_LOST = "worker lost: no heartbeat from the worker running this job"
CANCELLED = "cancelled by request"
#: How often a running job's progress may be written.
PROGRESS_INTERVAL_S = 0.5
#: Listing entries kept per index (and overall).
LIST_MAX = 1000
#: An upload folder whose job is unknown is removed after this long (it may be mid-upload).
ORPHAN_UPLOAD_S = 3600
#: Silence after which a job without a heartbeat setting is declared lost.
LOST_WITHOUT_HEARTBEAT_S = 300

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
"""


class Keys:
    """Redis keys of the jobs beside saq's own."""

    def __init__(self, prefix: str) -> None:
        self.prefix = f"{prefix}:jobs"

    def active(self, index: str) -> str:
        return f"{self.prefix}:active:{index}"

    def cancel(self, job_id: str) -> str:
        return f"{self.prefix}:cancel:{job_id}"

    def by_index(self, index: str) -> str:
        return f"{self.prefix}:index:{index}"

    @property
    def all(self) -> str:
        return f"{self.prefix}:all"


def make_queue(settings: Settings, *, worker: bool = False) -> Queue:
    """The saq queue over ``TANDEM_REDIS_URL``."""
    if not settings.redis_url:
        raise UsageError("jobs over Redis need TANDEM_REDIS_URL")
    from redis import asyncio as aioredis

    redis = aioredis.from_url(
        settings.redis_url,
        socket_connect_timeout=5,
        # a worker blocks on the queue for up to 5 s (dequeue_timeout): read timeout above it
        socket_timeout=30 if worker else 10,
        health_check_interval=30,
    )
    return _queue_class()(redis, name=settings.job_queue, swept_error_message=WORKER_LOST)


def _queue_class() -> Any:
    """saq's Redis queue with a sweep that cannot mistake a job being started for a lost one."""
    from saq.job import Status
    from saq.queue.redis import RedisQueue
    from saq.utils import now

    class TandemQueue(RedisQueue):  # type: ignore[misc]
        """saq's own sweep declares lost any job in the active list whose status is not yet
        ``active``, which is every job between its dequeue and its first status write: with
        frequent sweeps that race ends live jobs. Here a job is lost only when its worker has
        been silent for its heartbeat: an active job by its ``touched`` time, a dequeued one
        by how long this sweeper has seen it stay unstarted."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._unstarted: dict[str, float] = {}

        async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
            if not await self.redis.set(self._sweep, 1, ex=max(1, int(lock)), nx=True):
                return []  # another process swept a moment ago
            swept: list[str] = []
            unstarted: dict[str, float] = {}
            for raw in await self.redis.lrange(self._active, 0, -1):
                job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
                job = await self._get_job_by_id(job_id)
                if job is None:
                    pipe: Any
                    async with self.redis.pipeline(transaction=True) as pipe:
                        pipe.lrem(self._active, 0, job_id)
                        pipe.zrem(self._incomplete, job_id)
                        await pipe.execute()
                    swept.append(job_id)
                    continue
                grace_s = job.heartbeat or LOST_WITHOUT_HEARTBEAT_S
                if job.status == Status.ACTIVE:
                    lost = now() - job.touched > grace_s * 1000
                else:
                    first = self._unstarted.get(job_id, time.monotonic())
                    unstarted[job_id] = first
                    lost = time.monotonic() - first > grace_s
                if not lost:
                    continue
                unstarted.pop(job_id, None)
                swept.append(job_id)
                log.warning("job %s: its worker stopped answering; %s", job.key, job.info())
                if job.retryable:
                    await self.retry(job, error=WORKER_LOST)
                else:
                    await self.finish(job, Status.ABORTED, error=WORKER_LOST)
            self._unstarted = unstarted
            return swept

    return TandemQueue


# -- records -----------------------------------------------------------------------------------
def state_of(job: Job) -> JobState:
    from saq.job import Status

    meta = job.meta or {}
    if job.status in (Status.NEW, Status.QUEUED):
        return "queued"
    if job.status in (Status.ACTIVE, Status.ABORTING):
        return "running"
    if job.status == Status.COMPLETE:
        return "done"
    if job.status == Status.FAILED:
        return "cancelled" if meta.get("cancelled") else "failed"
    return "cancelled" if job.error == CANCELLED else "failed"  # ABORTED: cancelled or lost


def record_of(job: Job) -> JobRecord:
    """The API's view of a saq job."""
    from saq.job import Status

    meta = job.meta or {}
    spec = JobSpec.from_dict(meta["spec"])
    state = state_of(job)
    error = meta.get("error")
    if state == "cancelled":
        error = error or error_dict("cancelled", CANCELLED)
    elif state == "failed" and (job.status == Status.ABORTED or not error):
        if job.status == Status.ABORTED:
            error = error_dict(
                "worker_lost",
                "the worker running this job stopped before the job ended; a build publishes "
                "all or nothing, so the index serves its previous version (or, had the build "
                "just finished, the complete new one)",
            )
        else:
            lines = (job.error or "failed").strip().splitlines()
            error = error_dict("job_failed", lines[-1][:500] if lines else "failed")
    elif state != "failed":
        error = None
    return JobRecord(
        spec=spec,
        state=state,
        progress=Progress.from_dict(meta.get("progress")),
        result=job.result if state == "done" and isinstance(job.result, dict) else None,
        error=error,
        started_at=job.started / 1000 if job.started else None,
        finished_at=job.completed / 1000 if job.completed else None,
        attempts=job.attempts,
    )


def _is_terminal(job: Job | None) -> bool:
    from saq.job import TERMINAL_STATUSES

    return job is None or job.status in TERMINAL_STATUSES


# -- the API side ------------------------------------------------------------------------------
class RedisJobs:
    """Submit to, read and cancel jobs of the saq queue; sweep lost jobs."""

    name = "redis"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue = make_queue(settings)
        self.keys = Keys(settings.cache_prefix)
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def redis(self) -> Any:
        return self.queue.redis  # type: ignore[attr-defined]

    async def start(self) -> None:
        await self.queue.connect()
        self._sweeper = asyncio.create_task(
            sweep_forever(self.queue, self.settings, self.keys), name="tandem-job-sweeper"
        )
        log.info("jobs: Redis queue %r (run `tandem worker` to process them)", self.queue.name)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        with contextlib.suppress(Exception):
            await self.queue.disconnect()

    async def _job(self, job_id: str) -> Job | None:
        if not is_job_id(job_id):
            return None
        try:
            return await self.queue.job(job_id)
        except Exception as exc:
            raise _unavailable(exc) from exc

    async def check_free(self, index: str) -> None:
        try:
            holder = await self.redis.get(self.keys.active(index))
        except Exception as exc:
            raise _unavailable(exc) from exc
        if holder is None:
            return
        other_id = holder.decode()
        other = await self._job(other_id)
        if not _is_terminal(other):
            assert other is not None
            raise busy(index, record_of(other), other_id)

    async def _claim(self, index: str, job_id: str) -> None:
        key = self.keys.active(index)
        for _ in range(3):
            if await self.redis.set(key, job_id, nx=True):
                return
            holder = await self.redis.get(key)
            if holder is None:
                continue
            other_id = holder.decode()
            other = await self._job(other_id)
            if not _is_terminal(other):
                assert other is not None
                raise busy(index, record_of(other), other_id)
            if await self.redis.eval(_TAKE_OVER, 1, key, other_id, job_id):
                return
        raise busy(index, None, "another job")

    async def submit(self, spec: JobSpec) -> JobRecord:
        from saq import Job

        s = self.settings
        try:
            await self._claim(spec.index, spec.job_id)
            job = Job(
                function=FUNCTION,
                key=spec.job_id,
                timeout=s.job_timeout_s,
                heartbeat=s.job_heartbeat_s,
                retries=s.job_retries + 1,
                ttl=s.job_ttl_s,
                meta={"spec": spec.to_dict(), "progress": Progress().as_dict()},
            )
            try:
                await self.queue.enqueue(job)
            except BaseException:
                await self.redis.eval(_RELEASE, 1, self.keys.active(spec.index), spec.job_id)
                raise
            created = spec.created_at
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(self.keys.by_index(spec.index), {spec.job_id: created})
                pipe.zremrangebyrank(self.keys.by_index(spec.index), 0, -LIST_MAX - 1)
                pipe.zadd(self.keys.all, {spec.job_id: created})
                pipe.zremrangebyrank(self.keys.all, 0, -LIST_MAX - 1)
                await pipe.execute()
        except TandemError:
            raise
        except Exception as exc:
            raise _unavailable(exc) from exc
        log.info("job %s: %s of index %s queued", spec.job_id, spec.action, spec.index)
        return record_of(job)

    async def get(self, job_id: str) -> JobRecord | None:
        job = await self._job(job_id)
        if job is None or not (job.meta or {}).get("spec"):
            return None
        return await self._with_cancel(record_of(job))

    async def _with_cancel(self, record: JobRecord) -> JobRecord:
        """``cancelling`` for a running job whose cancel flag is set."""
        if record.state == "running":
            try:
                if await self.redis.exists(self.keys.cancel(record.job_id)):
                    record.state = "cancelling"
            except Exception as exc:
                raise _unavailable(exc) from exc
        return record

    async def list(self, index: str | None, limit: int) -> list[JobRecord]:
        key = self.keys.all if index is None else self.keys.by_index(index)
        try:
            ids = [i.decode() for i in await self.redis.zrevrange(key, 0, limit - 1)]
            jobs = await self.queue.jobs(ids) if ids else []
            gone = [i for i, j in zip(ids, jobs, strict=True) if j is None]
            if gone:
                await self.redis.zrem(key, *gone)
        except Exception as exc:
            raise _unavailable(exc) from exc
        return [record_of(j) for j in jobs if j is not None and (j.meta or {}).get("spec")]

    async def cancel(self, job_id: str) -> JobRecord:
        from saq.job import Status

        job = await self._job(job_id)
        if job is None or not (job.meta or {}).get("spec"):
            raise JobNotFound(f"job {job_id!r} not found")
        if _is_terminal(job):
            raise JobFinished(f"job {job_id} has already ended ({record_of(job).state})")
        try:
            ttl = max(self.settings.job_timeout_s, self.settings.job_ttl_s)
            await self.redis.set(self.keys.cancel(job_id), "1", ex=ttl)
            if job.status in (Status.NEW, Status.QUEUED):
                await self.queue.abort(job, CANCELLED)  # ends it at once if still queued
            fresh = await self.queue.job(job_id)
            if _is_terminal(fresh):
                await release(
                    self.redis, self.keys, self.settings, JobSpec.from_dict(job.meta["spec"])
                )
        except Exception as exc:
            raise _unavailable(exc) from exc
        return await self._with_cancel(record_of(fresh or job))

    async def health(self) -> tuple[HealthState, str]:
        try:
            info = await asyncio.wait_for(self.queue.info(), timeout=2)
        except Exception as exc:  # noqa: BLE001
            return "down", f"job queue unreachable: {_describe(exc)}"
        workers = len(info.get("workers") or {})
        detail = (
            f"Redis queue {info.get('name')}: {workers} workers, {info.get('queued', 0)} queued, "
            f"{info.get('active', 0)} running"
        )
        if not workers:  # searches are unaffected: not "down"
            return "absent", detail + " (no `tandem worker` is consuming the queue)"
        return "ok", detail


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _unavailable(exc: BaseException) -> JobsUnavailable:
    return JobsUnavailable(f"the job queue (Redis) is unavailable: {_describe(exc)}")


async def release(redis: Any, keys: Keys, settings: Settings, spec: JobSpec) -> None:
    """A job has ended: free its index, drop its cancel flag and its uploaded files."""
    await redis.eval(_RELEASE, 1, keys.active(spec.index), spec.job_id)
    await redis.delete(keys.cancel(spec.job_id))
    if spec.upload:
        await asyncio.to_thread(remove_folder, upload_folder(settings, spec.job_id))


# -- sweeping (API and workers) ----------------------------------------------------------------
async def sweep_forever(queue: Queue, settings: Settings, keys: Keys) -> None:
    """Every ``TANDEM_JOB_SWEEP_S``: end lost jobs, free indexes and uploads of ended jobs."""
    while True:
        await asyncio.sleep(settings.job_sweep_s)
        try:
            await sweep(queue, settings, keys)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Redis may be down; try again later
            log.debug("job sweep failed: %s", _describe(exc))


async def sweep(queue: Queue, settings: Settings, keys: Keys) -> None:
    from saq.job import Status

    redis: Any = queue.redis  # type: ignore[attr-defined]
    # saq: jobs whose heartbeat stopped are retried or aborted with WORKER_LOST (one sweeper
    # at a time across all processes, at most every job_sweep_s).
    await queue.sweep(lock=settings.job_sweep_s, abort=1.0)
    stale_ms = settings.job_heartbeat_s * 2000
    async for raw in redis.scan_iter(match=keys.active("*"), count=200):
        key = raw.decode()
        holder = await redis.get(key)
        if holder is None:
            continue
        job = await queue.job(holder.decode())
        lost = job is not None and time.time() * 1000 - job.touched > stale_ms
        if job is not None and job.status == Status.ABORTING and lost:  # its worker is gone
            await queue.finish(job, Status.ABORTED, error=CANCELLED)
        if _is_terminal(job):
            if job is not None and (job.meta or {}).get("spec"):
                await release(redis, keys, settings, JobSpec.from_dict(job.meta["spec"]))
            else:
                await redis.eval(_RELEASE, 1, key, holder)
    await _sweep_uploads(queue, settings)


async def _sweep_uploads(queue: Queue, settings: Settings) -> None:
    root = upload_root(settings)
    names = await asyncio.to_thread(_upload_dirs, root)
    for name, mtime in names:
        job = await queue.job(name)
        orphan = job is None and time.time() - mtime > ORPHAN_UPLOAD_S
        if orphan or (job is not None and _is_terminal(job)):
            await asyncio.to_thread(remove_folder, root / name)


def _upload_dirs(root: Path) -> list[tuple[str, float]]:
    try:
        return [
            (e.name, e.stat().st_mtime)
            for e in os.scandir(root)
            if e.is_dir(follow_symlinks=False) and is_job_id(e.name)
        ]
    except OSError:
        return []


# -- the worker side ---------------------------------------------------------------------------
async def run_job(ctx: dict[str, Any]) -> dict[str, Any]:
    """The saq function of a build job: the build in a thread, progress and heartbeat here."""
    from app.jobs.runner import execute_job, failure_of
    from indexers.builder import BuildCancelled

    job: Job = ctx["job"]
    settings: Settings = ctx["settings"]
    keys: Keys = ctx["keys"]
    redis: Any = job.get_queue().redis  # type: ignore[attr-defined]
    spec = JobSpec.from_dict(job.meta["spec"])
    tracker = ProgressTracker()
    cancel = threading.Event()
    for stale in ("error", "cancelled"):
        job.meta.pop(stale, None)
    job.meta["progress"] = Progress().as_dict()
    if await redis.exists(keys.cancel(spec.job_id)):
        cancel.set()
    await beat(job)
    log.info("job %s: %s of index %s started", spec.job_id, spec.action, spec.index)
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, execute_job, spec, settings, tracker, cancel.is_set)
    monitor = asyncio.create_task(_monitor(job, tracker, cancel, redis, keys, settings))
    try:
        try:
            result: dict[str, Any] = await asyncio.shield(future)
        except asyncio.CancelledError:  # saq abort, job timeout or worker shutdown
            cancel.set()
            with contextlib.suppress(BaseException):
                await future  # the build stops at its next batch; its lock is then free
            raise
    except BuildCancelled as exc:
        _no_retry(job, failure_of(exc))
        job.meta["cancelled"] = True
        raise JobStopped(CANCELLED) from None
    except TandemError as exc:
        _no_retry(job, failure_of(exc))
        log.warning("job %s failed: %s", spec.job_id, exc.message)
        raise JobStopped(exc.message) from None
    except Exception as exc:
        job.meta["error"] = failure_of(exc)  # retried when TANDEM_JOB_RETRIES allows
        raise
    finally:
        monitor.cancel()
        job.meta["progress"] = tracker.snapshot().as_dict()
    log.info("job %s: done, %s v%s", spec.job_id, spec.index, result.get("version"))
    return result


class JobStopped(Exception):
    """Ends a job ``failed`` (or ``cancelled``) without a retry; the reason is in its meta."""


def _no_retry(job: Job, error: dict[str, str]) -> None:
    job.meta["error"] = error
    job.retries = job.attempts  # saq retries while retries > attempts


async def _monitor(
    job: Job,
    tracker: ProgressTracker,
    cancel: threading.Event,
    redis: Any,
    keys: Keys,
    settings: Settings,
) -> None:
    """Write progress (and so the heartbeat), and watch for a cancel request."""
    written, last = -1, 0.0
    every = max(1.0, settings.job_heartbeat_s / 4)
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_S)
        try:
            if not cancel.is_set() and await redis.exists(keys.cancel(job.key)):
                log.info("job %s: cancel requested", job.key)
                cancel.set()
            now = time.monotonic()
            if tracker.version != written or now - last >= every:
                written = tracker.version
                job.meta["progress"] = tracker.snapshot().as_dict()
                if last and now - last > settings.job_heartbeat_s * 0.75:  # close to lost
                    log.warning(
                        "job %s: heartbeat %.1f s late (the worker is starved of CPU?); it is "
                        "declared lost after %d s",
                        job.key,
                        now - last - every,
                        settings.job_heartbeat_s,
                    )
                if not await beat(job):
                    log.warning("job %s: no longer active here", job.key)
                last = now
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a Redis hiccup; the build goes on
            log.warning("job %s: progress not written: %s", job.key, _describe(exc))


async def beat(job: Job) -> bool:
    """Write a running job's meta (progress) and heartbeat.

    Unlike ``job.update()``, never writes back a status or error that a cancel or a sweep set
    meanwhile (a transaction on the job's key); False when the job is no longer active.
    """
    from redis.exceptions import WatchError
    from saq.job import Status
    from saq.utils import now

    queue: Any = job.get_queue()
    key = job.id
    async with queue.redis.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(key)
            stored = queue.deserialize(await pipe.get(key))
            if stored is None or stored.status != Status.ACTIVE:
                return False
            job.touched = now()
            job.status, job.error = stored.status, stored.error
            pipe.multi()
            pipe.set(key, queue.serialize(job))
            await pipe.execute()
        except WatchError:  # written meanwhile: the next beat tries again
            return False
    return True


async def after_job(ctx: dict[str, Any]) -> None:
    """saq's after-process hook: a job that ended frees its index and uploads."""
    job: Job | None = ctx.get("job")
    if job is None or not _is_terminal(job) or not (job.meta or {}).get("spec"):
        return
    try:
        await release(
            job.get_queue().redis,  # type: ignore[attr-defined]
            ctx["keys"],
            ctx["settings"],
            JobSpec.from_dict(job.meta["spec"]),
        )
    except Exception as exc:  # noqa: BLE001 - the sweeper does it later
        log.warning("job %s: not released yet: %s", job.key, _describe(exc))
