"""Index-building jobs: submitted over HTTP, run by a worker, watched until done.

* :mod:`app.jobs.models` — the job record and its wire form (``JobRecord.public()``).
* :mod:`app.jobs.sources` — which files a job may read: paths under ``TANDEM_SOURCES_ROOT``
  (no ``..``, no absolute paths, no symlinks out) and bounded multipart uploads.
* :mod:`app.jobs.runner` — one job's build (``run_build`` in a thread); imported by the
  process that builds only (the builder pulls in llama-index).
* :mod:`app.jobs.progress` — a build's progress and ETA.
* :mod:`app.jobs.local` — the embedded default: an in-process worker of the API (no Redis).
* :mod:`app.jobs.queue` — with Redis: a saq queue, consumed by ``tandem worker`` processes.
* :mod:`app.jobs.backend` — :func:`create_backend` picks one of the two from the settings.

Both backends give the same API and the same semantics: one active (queued or running) job
per index, a second one is refused with 409 ``index_busy``; cancel stops a queued job at once
and a running one at its next embedding batch; a job whose worker died ends ``failed``
(``worker_lost``) or is retried (``TANDEM_JOB_RETRIES``), and the index keeps serving the
version it had, since a build publishes atomically or not at all.
"""

from app.jobs.backend import JobBackend, create_backend
from app.jobs.models import JobRecord, JobSpec, JobState

__all__ = ["JobBackend", "JobRecord", "JobSpec", "JobState", "create_backend"]
