"""``tandem worker``: a saq worker that runs index-building jobs from the Redis queue.

Run as many as you like, on any machine sharing the data dir (and the sources root and the
upload dir) with the API. Each runs ``TANDEM_WORKER_CONCURRENCY`` jobs at once (1 is right for
CPU builds: a build already uses every core torch gives it), sweeps jobs lost by dead workers,
and touches ``TANDEM_WORKER_HEARTBEAT_FILE`` every few seconds for container healthchecks
(:func:`healthy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

# The builder (torch, llama-index) is imported here, before any job starts: importing it inside
# a job would hold the event loop, and so the job's heartbeat, for seconds.
import app.jobs.runner  # noqa: F401
from app.jobs.queue import FUNCTION, Keys, after_job, make_queue, run_job, sweep_forever
from app.runtime import configure_lower_layers
from app.settings import Settings

log = logging.getLogger("tandem.worker")

#: How often the heartbeat file is touched; :func:`healthy` allows a few misses.
HEARTBEAT_EVERY_S = 5.0
HEARTBEAT_STALE_S = 30.0


def touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        os.utime(path, None)


def healthy(path: Path, max_age_s: float = HEARTBEAT_STALE_S) -> bool:
    """True when a worker on this machine touched ``path`` within ``max_age_s``."""
    try:
        return time.time() - path.stat().st_mtime < max_age_s
    except OSError:
        return False


async def _heartbeat(path: Path) -> None:
    while True:
        await asyncio.to_thread(touch, path)
        await asyncio.sleep(HEARTBEAT_EVERY_S)


def build_worker(settings: Settings, concurrency: int | None = None, burst: bool = False) -> Any:
    """The saq ``Worker`` over the job queue (not started)."""
    from saq import Worker

    configure_lower_layers(settings)

    queue = make_queue(settings, worker=True)
    keys = Keys(settings.cache_prefix)
    background: list[asyncio.Task[None]] = []

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["settings"] = settings
        ctx["keys"] = keys
        background.append(asyncio.create_task(sweep_forever(queue, settings, keys)))
        background.append(asyncio.create_task(_heartbeat(settings.worker_heartbeat_file)))
        log.info(
            "tandem worker %s: queue %r on %s, %d job(s) at a time, data dir %s",
            ctx["worker"].id,
            queue.name,
            _redacted(settings.redis_url or ""),
            concurrency or settings.worker_concurrency,
            settings.data_dir,
        )

    async def shutdown(ctx: dict[str, Any]) -> None:
        for task in background:
            task.cancel()
        with contextlib.suppress(OSError):
            settings.worker_heartbeat_file.unlink()

    return Worker(
        queue,
        functions=[(FUNCTION, run_job)],
        id=f"{socket.gethostname()}-{os.getpid()}",
        concurrency=concurrency or settings.worker_concurrency,
        startup=startup,
        shutdown=shutdown,
        after_process=after_job,
        timers={
            "schedule": 1,
            "worker_info": 5,
            "sweep": settings.job_sweep_s,
            "abort": 1,
        },
        dequeue_timeout=5,
        burst=burst,
        shutdown_grace_period_s=0,
        cancellation_hard_deadline_s=120.0,
        metadata={"host": socket.gethostname(), "pid": os.getpid()},
    )


def _redacted(url: str) -> str:
    """A Redis URL without its password."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


async def _run(worker: Any) -> None:
    try:
        await worker.queue.connect()
        await worker.start()
    finally:
        with contextlib.suppress(Exception):
            await worker.queue.disconnect()


def run_worker(settings: Settings, concurrency: int | None = None, burst: bool = False) -> None:
    """Run a worker until SIGTERM/SIGINT (a running build is cancelled and requeued)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    worker = build_worker(settings, concurrency, burst)
    asyncio.run(_run(worker))
