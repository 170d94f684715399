"""The job record, what a worker needs to run a job, and the wire bodies of the jobs API."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec

#: ``cancelling``: a cancel was asked for a running job, which stops at its next check (then
#: ``cancelled``; or ``done``, had the build already published).
JobState = Literal["queued", "running", "cancelling", "done", "failed", "cancelled"]
Action = Literal["build", "add", "remove"]
TERMINAL: frozenset[str] = frozenset({"done", "failed", "cancelled"})
ACTIONS: tuple[str, ...] = ("build", "add", "remove")


def new_job_id() -> str:
    """A random job id (32 hex characters): unguessable, safe in paths and Redis keys."""
    return uuid.uuid4().hex


def is_job_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def iso(ts: float | None) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass
class Progress:
    """How far a build is: documents loaded, chunks to embed and embedded, seconds left."""

    documents: int = 0
    chunks_total: int = 0
    chunks_done: int = 0
    eta_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "chunks_total": self.chunks_total,
            "chunks_done": self.chunks_done,
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Progress:
        data = data or {}
        eta = data.get("eta_s")
        return cls(
            documents=int(data.get("documents") or 0),
            chunks_total=int(data.get("chunks_total") or 0),
            chunks_done=int(data.get("chunks_done") or 0),
            eta_s=None if eta is None else float(eta),
        )


@dataclass
class JobSpec:
    """What a worker needs to run a job (stored with it; JSON-serialisable)."""

    job_id: str
    index: str
    action: str
    sources: list[str]
    """Paths relative to ``TANDEM_SOURCES_ROOT`` (build, add), or the index's own sources or
    document ids (remove). Empty for an upload."""
    upload: bool = False
    """The files are in ``<upload_dir>/<job_id>/`` (a multipart upload)."""
    options: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "index": self.index,
            "action": self.action,
            "sources": list(self.sources),
            "upload": self.upload,
            "options": dict(self.options),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        return cls(
            job_id=str(data["job_id"]),
            index=str(data["index"]),
            action=str(data["action"]),
            sources=[str(s) for s in data.get("sources") or []],
            upload=bool(data.get("upload")),
            options=dict(data.get("options") or {}),
            created_at=float(data.get("created_at") or time.time()),
        )


@dataclass
class JobRecord:
    """A job as the API shows it."""

    spec: JobSpec
    state: JobState = "queued"
    progress: Progress = field(default_factory=Progress)
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0

    @property
    def job_id(self) -> str:
        return self.spec.job_id

    @property
    def index(self) -> str:
        return self.spec.index

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    def public(self) -> JobOut:
        return JobOut(
            job_id=self.spec.job_id,
            index=self.spec.index,
            action=self.spec.action,  # type: ignore[arg-type]
            state=self.state,
            progress=ProgressOut(**self.progress.as_dict()),
            result=self.result,
            error=None if self.error is None else JobError(**self.error),
            created_at=iso(self.spec.created_at) or "",
            started_at=iso(self.started_at),
            finished_at=iso(self.finished_at),
            attempts=self.attempts,
        )


def error_dict(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


# -- wire bodies ---------------------------------------------------------------------------------
class JobOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Build options a job may set (the others come from the server's settings)."""

    store: Annotated[
        Literal["faiss", "qdrant"] | None,
        msgspec.Meta(description="Vector store of a new index; default TANDEM_STORE."),
    ] = None
    chunk_tokens: Annotated[int, msgspec.Meta(ge=16, le=8192)] | None = None
    overlap_tokens: Annotated[int, msgspec.Meta(ge=0, le=1024)] | None = None
    text_field: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="Text field of .jsonl documents.",
        ),
    ] = "text"
    dedup: Annotated[bool, msgspec.Meta(description="Drop duplicate chunks.")] = True
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 64
    strict: Annotated[
        bool,
        msgspec.Meta(description="Fail (publish nothing) if any file fails or is skipped."),
    ] = False
    engine: Annotated[
        Literal["local", "ray"],
        msgspec.Meta(
            description="local: the worker builds; ray: the build runs on Ray Data (the "
            "server's TANDEM_RAY_ADDRESS, else a local Ray instance; needs the ray extra)."
        ),
    ] = "local"
    ray_address: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=1,
                max_length=512,
                description="engine ray: the Ray cluster; only TANDEM_RAY_ADDRESS or one of "
                "TANDEM_RAY_ADDRESSES (others: ray_address_forbidden).",
            ),
        ]
        | None
    ) = None
    ray_workers: (
        Annotated[
            int,
            msgspec.Meta(ge=1, le=4096, description="engine ray: actors per pool (default: CPUs)."),
        ]
        | None
    ) = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}


SourcePath = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class JobRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A job over files under TANDEM_SOURCES_ROOT (or, for remove, the index's sources)."""

    action: Annotated[
        Action,
        msgspec.Meta(
            description="build: mirror the sources into a new version; add: add or replace "
            "their documents; remove: drop documents by source or id."
        ),
    ] = "build"
    sources: Annotated[
        list[SourcePath],
        msgspec.Meta(
            min_length=1,
            description="Paths relative to TANDEM_SOURCES_ROOT (build, add) or sources / "
            "document ids of the index (remove).",
            examples=[["handbook/", "faq.md"]],
        ),
    ]
    options: JobOptions = msgspec.field(default_factory=JobOptions)


class ProgressOut(msgspec.Struct, kw_only=True):
    documents: Annotated[int, msgspec.Meta(description="Documents in the new version.")]
    chunks_total: Annotated[int, msgspec.Meta(description="Chunks to embed.")]
    chunks_done: Annotated[int, msgspec.Meta(description="Chunks embedded so far.")]
    eta_s: Annotated[
        float | None, msgspec.Meta(description="Seconds left (estimate); null: not known yet.")
    ]


class JobError(msgspec.Struct, kw_only=True):
    code: Annotated[
        str,
        msgspec.Meta(
            description="index_busy, index_not_found, invalid_source, worker_lost, cancelled, "
            "job_failed, ..."
        ),
    ]
    message: str


class JobOut(msgspec.Struct, kw_only=True):
    """One job."""

    job_id: str
    index: str
    action: Action
    state: Annotated[
        JobState,
        msgspec.Meta(
            description="queued, running, cancelling (a cancel was asked; it stops at its next "
            "check), done, failed or cancelled."
        ),
    ]
    progress: ProgressOut
    result: Annotated[
        dict[str, Any] | None,
        msgspec.Meta(description="When done: the new version and its counts."),
    ]
    error: Annotated[JobError | None, msgspec.Meta(description="When failed or cancelled.")]
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempts: Annotated[int, msgspec.Meta(description="Times a worker started it.")]


class JobAccepted(msgspec.Struct, kw_only=True):
    job_id: str
    index: str
    action: Action
    state: JobState


class JobList(msgspec.Struct, kw_only=True):
    jobs: list[JobOut]
