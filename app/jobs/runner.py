"""Run one job's build: the same ``run_build`` as ``tandem index``, with progress and cancel.

:func:`execute_job` is synchronous and CPU-bound: both workers call it in a thread, so their
event loop stays free (heartbeats, progress writes, cancel requests, HTTP requests). It checks
the sources again (they may have changed since the job was submitted), builds with the
settings of the process running it (embedder, store, Qdrant URL), and waits up to
``TANDEM_JOB_LOCK_WAIT_S`` while another build of the index (say ``tandem index build`` from a
shell) holds the index lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from app import tracing
from app.jobs.errors import InvalidSource, RayAddressForbidden
from app.jobs.models import JobSpec, error_dict
from app.jobs.progress import ProgressTracker
from app.jobs.sources import check_remove_sources, resolve_sources, upload_folder
from app.settings import Settings
from core.errors import TandemError
from indexers.builder import BuildCancelled, BuildOptions, BuildResult, run_build
from stores.errors import IndexBusy
from stores.layout import IndexLayout

#: Pause between two tries to take an index lock held by a build outside the jobs API.
LOCK_POLL_S = 0.5
#: Failed files listed in a job's result (the manifest has them all).
MAX_FAILED_FILES = 50


def build_options(
    spec: JobSpec,
    settings: Settings,
    exists: bool,
    on_progress: Callable[[dict[str, Any]], None] | None,
    cancelled: Callable[[], bool] | None,
) -> BuildOptions:
    """The builder's options: the job's own, then this process's settings."""
    o = spec.options
    opts = BuildOptions(
        # an existing index keeps its store and embedder unless the job names a store
        store=o.get("store") or (None if exists else settings.store),
        model=None if exists else settings.embedder,
        chunk_tokens=o.get("chunk_tokens") or (None if exists else settings.chunk_tokens),
        text_field=str(o.get("text_field") or "text"),
        dedup=bool(o.get("dedup", True)),
        strict=bool(o.get("strict", False)),
        batch_size=int(o.get("batch_size") or 64),
        on_progress=on_progress,
        cancelled=cancelled,
        **settings.build_store_options(),
    )
    if o.get("overlap_tokens") is not None:
        opts.overlap_tokens = int(o["overlap_tokens"])
    return opts


def job_paths(spec: JobSpec, settings: Settings) -> list[str]:
    """What the build reads: checked again here, right before it runs."""
    if spec.action == "remove":
        return check_remove_sources(spec.sources, settings.job_max_sources)
    if spec.upload:
        folder = upload_folder(settings, spec.job_id)
        if not folder.is_dir():
            raise InvalidSource(f"the files uploaded for job {spec.job_id} are gone")
        return [str(folder)]
    roots = resolve_sources(settings.sources_root, spec.sources, settings.job_max_sources)
    return [str(p) for p in roots]


def execute_job(
    spec: JobSpec,
    settings: Settings,
    tracker: ProgressTracker,
    cancelled: Callable[[], bool],
) -> dict[str, Any]:
    """Run the job's build; returns its result. Raises what the build raises."""
    tracing.setup(settings)  # a worker process traces its jobs when an endpoint is configured
    with tracing.job_span(spec.index, spec.job_id, spec.action) as span:
        result = _run(spec, settings, tracker, cancelled)
        tracing.record_build(span, result)
    tracker.finish()
    return result_of(result)


def _run(
    spec: JobSpec,
    settings: Settings,
    tracker: ProgressTracker,
    cancelled: Callable[[], bool],
) -> BuildResult:
    paths = job_paths(spec, settings)
    layout = IndexLayout(settings.data_dir, spec.index)
    deadline = time.monotonic() + settings.job_lock_wait_s
    while True:
        if cancelled():
            raise BuildCancelled(f"job {spec.job_id} cancelled")
        opts = build_options(spec, settings, layout.exists(), tracker.update, cancelled)
        try:
            result = _build(spec, settings, paths, opts)
            break
        except IndexBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(LOCK_POLL_S)
    return result


def ray_options(spec: JobSpec, settings: Settings) -> Any:
    """The job's :class:`indexers.ray_build.RayOptions` (``options.engine`` ``ray``). A job may
    name only a Ray cluster the server is configured for: a cluster runs code in this process."""
    from indexers.ray_build import RayOptions

    o = spec.options
    address = o.get("ray_address") or settings.ray_address
    allowed = {a for a in [settings.ray_address, *settings.ray_addresses] if a}
    if o.get("ray_address") and o["ray_address"] not in allowed:
        raise RayAddressForbidden(
            f"Ray cluster {o['ray_address']!r} is not one this server may use "
            "(TANDEM_RAY_ADDRESS, TANDEM_RAY_ADDRESSES)"
        )
    return RayOptions(
        address=address,
        workers=o.get("ray_workers"),
        batch_size=max(1, int(o.get("batch_size") or 64)) * 4,
    )


def _build(spec: JobSpec, settings: Settings, paths: list[str], opts: BuildOptions) -> BuildResult:
    if spec.options.get("engine", "local") == "ray":
        from indexers.ray_build import run_ray_build

        ropts = ray_options(spec, settings)
        return run_ray_build(settings.data_dir, spec.index, paths, spec.action, opts, ropts)
    return run_build(settings.data_dir, spec.index, paths, spec.action, opts)


def result_of(result: BuildResult) -> dict[str, Any]:
    out = result.as_dict()
    out["curation"] = dict(result.curation)
    for kind in ("failed", "skipped", "dropped", "merged", "kept"):
        out[f"{kind}_files"] = result.files(kind)[:MAX_FAILED_FILES]
    return out


def failure_of(exc: BaseException) -> dict[str, str]:
    """``{"code", "message"}`` of what ended a job."""
    if isinstance(exc, BuildCancelled):
        return error_dict("cancelled", "cancelled by request")
    if isinstance(exc, TandemError):
        return error_dict(exc.code, exc.message)
    text = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {text[-1]}" if text else type(exc).__name__
    return error_dict("job_failed", detail[:500])
