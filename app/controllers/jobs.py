"""``/v1/indexes/{name}/jobs`` and ``/v1/jobs``: build, update and prune indexes over HTTP.

* ``POST /v1/indexes/{name}/jobs`` — a JSON body ``{"action", "sources", "options"}`` (paths
  under ``TANDEM_SOURCES_ROOT``) or a ``multipart/form-data`` upload (files, and optional
  ``action`` and ``options`` fields) → ``202 {"job_id", ...}`` with ``Location``.
* ``GET /v1/jobs/{job_id}`` — state (queued, running, done, failed, cancelled), progress
  (documents, chunks_total, chunks_done, eta_s), result, error.
* ``DELETE /v1/jobs/{job_id}`` — cancel: a queued job ends at once (``cancelled``), a running
  one answers ``cancelling`` at once and ends ``cancelled`` at its build's next check (nothing
  is published); 409 ``job_finished`` when it has already ended.
* A ``remove`` of a source or document id the index does not have is a 404
  ``source_not_found`` at submission.
* ``GET /v1/jobs?index=NAME&limit=N`` — jobs, newest first.

One index has at most one active (queued or running) job: a second one gets 409
``index_busy`` naming the first. API keys apply as everywhere: a key restricted to some indexes
can submit, see and cancel jobs of those only (others' jobs are 404 to it).

The lifespan hook ``jobs`` starts the backend (:func:`app.jobs.create_backend`): the Redis
queue when ``TANDEM_REDIS_URL`` is set (run ``tandem worker`` processes), else an in-process
worker.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi import ResponseSpec
from litestar.params import Parameter

from app.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from app.jobs.backend import JobBackend, create_backend
from app.jobs.errors import (
    InvalidSource,
    JobNotFound,
    JobsUnavailable,
    SourceNotInIndex,
)
from app.jobs.models import (
    JobAccepted,
    JobList,
    JobOptions,
    JobOut,
    JobRequest,
    JobSpec,
    new_job_id,
)
from app.jobs.sources import (
    FRAMING_SLACK,
    UploadLimits,
    check_remove_sources,
    missing_from_index,
    receive_upload,
    remove_folder,
    resolve_sources,
    upload_folder,
)
from app.schemas import ErrorBody
from app.security import principal_of, require_index_access
from app.state import ServiceState
from core.errors import TandemError
from stores.errors import IndexNotFound
from stores.layout import IndexLayout, check_name

if TYPE_CHECKING:
    from litestar import Litestar

log = logging.getLogger("tandem.jobs")

EXTRA = "jobs"
MAX_LIST = 500


class InvalidJSON(TandemError):
    code = "invalid_json"
    status = 400


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    text = {
        400: "Bad source path, malformed body or upload.",
        401: "No valid API key.",
        403: "The key may not use this index; a source outside TANDEM_SOURCES_ROOT.",
        404: "No such job (or index, for add and remove; or a source to remove that the index "
        "does not have).",
        405: "Method not allowed on this route.",
        409: "The index already has a queued or running job; the job has already ended.",
        413: "Body or upload too large, too many files.",
        415: "Neither application/json nor multipart/form-data.",
        422: "The body does not match the schema.",
        429: "Rate limit exceeded (see Retry-After).",
        503: "The job queue (Redis) is unavailable, or jobs are switched off.",
    }
    return {c: ResponseSpec(ErrorBody, description=text[c]) for c in codes}


def _backend(tandem: ServiceState) -> JobBackend:
    backend: JobBackend | None = tandem.extras.get(EXTRA)
    if backend is None:
        raise JobsUnavailable("the jobs API is switched off on this server (TANDEM_JOBS_ENABLED)")
    return backend


async def _read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    if (request.content_length or 0) > limit:
        raise PayloadTooLarge(f"request body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"request body larger than {limit} bytes")
    return bytes(body)


def _decode(raw: bytes | str, type_: type[Any], what: str) -> Any:
    try:
        return msgspec.json.decode(raw, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"{what}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise InvalidJSON(f"{what} is not valid JSON: {exc}") from exc


async def _require_index(tandem: ServiceState, name: str, action: str) -> None:
    if action == "build":
        return
    layout = IndexLayout(tandem.settings.data_dir, name)
    if not await anyio.to_thread.run_sync(layout.exists):
        raise IndexNotFound(f"index {name!r} not found: build it first (action 'build')")


async def _json_spec(
    request: Request[Any, Any, Any], tandem: ServiceState, name: str, job_id: str
) -> JobSpec:
    s = tandem.settings
    req: JobRequest = _decode(await _read_body(request, s.max_body_bytes), JobRequest, "body")
    if req.action == "remove":
        sources = check_remove_sources(req.sources, s.job_max_sources)
    else:
        await anyio.to_thread.run_sync(
            resolve_sources, s.sources_root, req.sources, s.job_max_sources
        )
        sources = list(req.sources)
    await _require_index(tandem, name, req.action)
    if req.action == "remove":  # heard at once, not as a failed job later
        missing = await anyio.to_thread.run_sync(missing_from_index, s.data_dir, name, sources)
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            raise SourceNotInIndex(
                f"index {name!r} has no document matching {shown} (give sources or document "
                "ids of the index)"
            )
    return JobSpec(job_id, name, req.action, sources, options=req.options.as_dict())


async def _upload_spec(
    request: Request[Any, Any, Any],
    tandem: ServiceState,
    name: str,
    job_id: str,
    boundary: str,
) -> JobSpec:
    s = tandem.settings
    limits = UploadLimits(s.upload_max_bytes, s.upload_max_files)
    if (request.content_length or 0) > s.upload_max_bytes + FRAMING_SLACK:
        raise PayloadTooLarge(f"upload too large: at most {s.upload_max_bytes} bytes per job")
    await _backend(tandem).check_free(name)  # before receiving megabytes for nothing
    upload = await receive_upload(request.stream(), boundary, upload_folder(s, job_id), limits)
    action = upload.fields.get("action", "build").strip()
    if action not in ("build", "add"):
        raise InvalidSource(f"action {action!r}: an upload can only 'build' or 'add'")
    options: JobOptions = _decode(upload.fields.get("options") or "{}", JobOptions, "options")
    await _require_index(tandem, name, action)
    return JobSpec(job_id, name, action, upload.files, upload=True, options=options.as_dict())


class JobsController(Controller):
    path = "/v1"
    tags = ("jobs",)

    @post(
        "/indexes/{name:str}/jobs",
        operation_id="create_job",
        status_code=202,
        summary="Build, add to or remove from an index in the background.",
        description='Send JSON `{"action": "build"|"add"|"remove", "sources": [...], '
        '"options": {...}}` with paths relative to TANDEM_SOURCES_ROOT (for remove: sources '
        "or document ids of the index), or multipart/form-data with the files and optional "
        "`action` (build or add) and `options` (JSON) fields. Options: store, chunk_tokens, "
        "overlap_tokens, text_field, dedup, batch_size. Poll the job at the Location returned.",
        request_max_body_size=None,  # bounded here: JSON by TANDEM_MAX_BODY_BYTES, uploads by
        # TANDEM_UPLOAD_MAX_BYTES (streamed to disk)
        responses=_errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
    )
    async def create_job(
        self, request: Request[Any, Any, Any], tandem: ServiceState, name: str
    ) -> Response[JobAccepted]:
        require_index_access(request, name)
        check_name(name)
        from multipart import parse_options_header

        ctype, params = parse_options_header(request.headers.get("content-type", ""))
        job_id = new_job_id()
        request.scope.setdefault("state", {})["index"] = name
        if ctype == "multipart/form-data":
            boundary = params.get("boundary")
            if not boundary:
                raise InvalidSource("multipart/form-data without a boundary")
            try:
                spec = await _upload_spec(request, tandem, name, job_id, boundary)
                record = await _backend(tandem).submit(spec)
            except BaseException:
                await anyio.to_thread.run_sync(
                    remove_folder, upload_folder(tandem.settings, job_id)
                )
                raise
        elif ctype in ("application/json", "") or ctype.endswith("+json"):
            spec = await _json_spec(request, tandem, name, job_id)
            record = await _backend(tandem).submit(spec)
        else:
            raise UnsupportedMediaType(
                f"content type {ctype!r}: send application/json or multipart/form-data"
            )
        return Response(
            JobAccepted(
                job_id=record.job_id,
                index=record.index,
                action=record.spec.action,  # type: ignore[arg-type]
                state=record.state,
            ),
            status_code=202,
            headers={"Location": f"/v1/jobs/{record.job_id}"},
        )

    @get(
        "/jobs/{job_id:str}",
        operation_id="get_job",
        summary="A job: state, progress, result or error.",
        responses=_errors(401, 404, 429, 503),
    )
    async def get_job(
        self, request: Request[Any, Any, Any], tandem: ServiceState, job_id: str
    ) -> JobOut:
        record = await _backend(tandem).get(job_id)
        if record is None or not principal_of(request).can_read(record.index):
            raise JobNotFound(f"job {job_id!r} not found")
        return record.public()

    @delete(
        "/jobs/{job_id:str}",
        operation_id="cancel_job",
        status_code=200,
        summary="Cancel a queued or running job (nothing is published).",
        responses=_errors(401, 404, 409, 429, 503),
    )
    async def cancel_job(
        self, request: Request[Any, Any, Any], tandem: ServiceState, job_id: str
    ) -> JobOut:
        backend = _backend(tandem)
        record = await backend.get(job_id)
        if record is None or not principal_of(request).can_read(record.index):
            raise JobNotFound(f"job {job_id!r} not found")
        return (await backend.cancel(job_id)).public()

    @get(
        "/jobs",
        operation_id="list_jobs",
        summary="Jobs, newest first (of one index with ?index=NAME).",
        responses=_errors(400, 401, 403, 429, 503),
    )
    async def list_jobs(
        self,
        request: Request[Any, Any, Any],
        tandem: ServiceState,
        index: Annotated[str | None, Parameter(query="index", required=False)] = None,
        limit: Annotated[int, Parameter(query="limit", ge=1, le=MAX_LIST)] = 50,
    ) -> JobList:
        backend = _backend(tandem)
        principal = principal_of(request)
        if index is not None:
            check_name(index)
            require_index_access(request, index)
            records = await backend.list(index, limit)
        else:
            records = [r for r in await backend.list(None, limit) if principal.can_read(r.index)]
        return JobList(jobs=[r.public() for r in records])


@asynccontextmanager
async def jobs_hook(app: Litestar, state: ServiceState) -> AsyncIterator[None]:
    """Start and stop the job backend (unless ``TANDEM_JOBS_ENABLED=0``); with Redis, the
    readiness component ``jobs``."""
    settings = state.settings
    if not settings.jobs_enabled:
        log.info("jobs API off (TANDEM_JOBS_ENABLED=0)")
        yield
        return
    backend = create_backend(settings)
    if backend.name == "local" and settings.workers > 1:
        log.warning(
            "jobs run in-process and are seen by the process that took them only: with %d "
            "workers, set TANDEM_REDIS_URL and run `tandem worker`",
            settings.workers,
        )
    await backend.start()
    state.extras[EXTRA] = backend
    if backend.name == "redis":
        state.health_checks[EXTRA] = backend.health
    try:
        yield
    finally:
        state.extras.pop(EXTRA, None)
        state.health_checks.pop(EXTRA, None)
        await backend.close()
