"""Typed settings, read from ``TANDEM_*`` environment variables (and a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of Tandem; each field is the environment variable ``TANDEM_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TANDEM_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".tandem"), description="Where indexes live.")
    embedder: str | None = Field(
        None, description="Embedder spec for new indexes (default: packaged all-MiniLM-L6-v2)."
    )
    reranker: str | None = Field(None, description="Cross-encoder reranker spec; unset: off.")
    reader: str | None = Field(None, description="Extractive reader spec for small answers.")
    checker: str | None = Field(None, description="Groundedness checker spec.")
    embedder_backend: Literal["torch", "onnx", "onnx-int8"] | None = Field(
        None,
        description="Backend of embedder specs that choose none (no @backend= option): torch, "
        "onnx or onnx-int8; unset: onnx-int8 when onnxruntime is installed, else torch.",
    )
    onnx_cache: Path | None = Field(
        None,
        description="Folder of the models exported to ONNX (made on first use, shared by the "
        "API and the workers); unset: ~/.cache/tandem/onnx.",
    )
    onnx_threads: int | None = Field(
        None,
        ge=0,
        le=256,
        description="Parallel ONNX Runtime workers per model (0 counts as 1); unset: torch's "
        "thread setting.",
    )
    store: str = Field("faiss", description="Vector store for new indexes: faiss or qdrant.")
    faiss_hnsw_threshold: int | None = Field(
        None,
        ge=0,
        description="FAISS: vectors up to which a new index is exact (flat), beyond it HNSW; "
        "unset: 100,000.",
    )
    faiss_ivfpq_threshold: int | None = Field(
        None,
        ge=0,
        description="FAISS: vectors beyond which a new index is IVF-PQ instead of HNSW; unset: "
        "500,000.",
    )
    faiss_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="Where FAISS builds and searches: cpu, cuda (faiss-gpu and a GPU) or auto "
        "(the GPU when there is one).",
    )
    qdrant_url: str | None = Field(None, description="Qdrant server URL (scale-out store).")
    qdrant_api_key: str | None = Field(None, description="Qdrant API key, if the server wants one.")
    chunk_tokens: int | None = Field(None, description="Chunk size in model tokens.")
    candidates: int = Field(50, ge=1, le=1000, description="First-stage candidates fused/reranked.")
    rerank_top_n: int | None = Field(
        None,
        ge=1,
        le=200,
        description="Candidates scored by the reranker; unset: the reranker's own (the top_n its "
        "folder was tuned with, else 20).",
    )
    fusion: str = Field("convex", pattern="^(convex|rrf)$", description="Hybrid fusion.")
    dense_weight: float = Field(
        0.4, ge=0.0, le=1.0, description="Dense share of the convex fusion (BM25 gets the rest)."
    )
    rrf_k: int = Field(60, ge=1, le=1000, description="k of reciprocal rank fusion.")

    # -- HTTP service (tandem serve) -----------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `tandem serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `tandem serve` listens on.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    api_keys: str = Field(
        "",
        description="Comma-separated API keys; `KEY:idx1|idx2` restricts a key to those "
        "indexes. Empty: no authentication and loopback-only binding.",
    )
    allow_open: bool = Field(
        False, description="Allow binding a non-loopback address with no API keys configured."
    )
    public_schema: bool = Field(False, description="Serve /schema without an API key.")
    redis_url: str | None = Field(None, description="Redis URL for the cache; unset: in-process.")
    redis_timeout_ms: int = Field(
        150, ge=10, le=10_000, description="Redis connect and socket timeout."
    )
    redis_backoff_s: float = Field(
        1.0, ge=0.0, le=300.0, description="First pause before retrying a failed Redis."
    )
    redis_backoff_max_s: float = Field(
        15.0, ge=0.0, le=3600.0, description="Longest pause before retrying a failed Redis."
    )
    cache_ttl_s: int = Field(300, ge=0, le=30 * 86400, description="Cache TTL; 0: no cache.")
    cache_max_entries: int = Field(
        10_000, ge=0, description="Entries of the in-process LRU cache (no Redis)."
    )
    cache_prefix: str = Field("tandem", description="Key prefix in a shared Redis.")
    refresh_interval_ms: int = Field(
        500,
        ge=0,
        le=600_000,
        description="How often (at most) a request checks for a newly published index version.",
    )
    model_threads: int = Field(
        2, ge=1, le=64, description="Model calls (embed, search, rerank) run at once."
    )
    model_queue: int = Field(
        64, ge=0, le=100_000, description="Model calls allowed to wait; beyond: 503 busy."
    )
    embed_batch: int = Field(
        32, ge=1, le=1024, description="Most queries embedded in one model call under load."
    )
    torch_threads: int = Field(
        1,
        ge=0,
        le=256,
        description="Torch intra-op threads while serving (0: torch's default). One thread per "
        "model call is fastest for single queries, and much faster on a busy machine.",
    )
    max_query_chars: int = Field(2000, ge=1, le=100_000, description="Longest query accepted.")
    max_body_bytes: int = Field(65_536, ge=1024, description="Largest request body (else 413).")
    max_filter_fields: int = Field(16, ge=0, le=256, description="Most filter fields per request.")
    rate_limit_requests: int = Field(
        600, ge=0, description="Requests per key per window; 0: no rate limit."
    )
    rate_limit_window_s: int = Field(60, ge=1, le=86400, description="Rate-limit window.")
    log_level: str = Field("INFO", description="Service log level.")

    # -- grounded answers (/ask, /v1/chat/completions, tandem ask) -----------------------------
    llm_url: str | None = Field(
        None,
        description="OpenAI-compatible API root of the LLM (llama.cpp server, vLLM, Ollama, a "
        "hosted API), e.g. http://127.0.0.1:8080/v1. Takes precedence over TANDEM_LLM_GGUF.",
    )
    llm_model: str | None = Field(None, description="Model name sent to the LLM server.")
    llm_api_key: str | None = Field(None, description="Bearer key for the LLM server.")
    llm_gguf: str | None = Field(
        None,
        description="In-process llama.cpp model (the [llama] extra): a GGUF path, or 'default' "
        "for the packaged Gemma 3 270M.",
    )
    llm_connect_timeout_s: float = Field(
        2.0, gt=0, le=120, description="LLM connect timeout (per try)."
    )
    llm_first_token_timeout_s: float = Field(
        15.0, gt=0, le=600, description="LLM time to first token (retries included)."
    )
    llm_timeout_s: float = Field(60.0, gt=0, le=3600, description="LLM total generation limit.")
    llm_retries: int = Field(
        2, ge=0, le=10, description="Retries of an LLM call on connection errors only."
    )
    llm_retry_backoff_s: float = Field(
        0.25, ge=0, le=30, description="First pause before a retry (doubles each time)."
    )
    llm_breaker_failures: int = Field(
        3, ge=1, le=1000, description="Consecutive LLM failures that open the circuit."
    )
    llm_breaker_reset_s: float = Field(
        30.0, ge=0, le=3600, description="Pause before probing an LLM whose circuit is open."
    )
    llm_max_tokens: int = Field(256, ge=1, le=32_768, description="Longest LLM answer (tokens).")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="LLM sampling temperature.")
    llm_context_tokens: int = Field(
        4096,
        ge=256,
        le=1_048_576,
        description="LLM context window used to pack passages (the n_ctx of an in-process model).",
    )
    llm_threads: int = Field(
        0, ge=0, le=256, description="Threads of the in-process LLM (0: all CPUs)."
    )
    llm_gpu_layers: int = Field(
        0, ge=-1, le=10_000, description="Layers of the in-process LLM on the GPU (-1: all)."
    )
    llm_child_start_timeout_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        description="Time the in-process LLM's child process (llama_cpp.server) has to load "
        "the model and answer its first token.",
    )
    llm_child_restart_s: float = Field(
        1.0,
        gt=0,
        le=600,
        description="Pause before restarting a dead LLM child; doubles with each failed "
        "start, up to TANDEM_LLM_CHILD_RESTART_MAX_S.",
    )
    llm_child_restart_max_s: float = Field(
        60.0, gt=0, le=3600, description="Longest pause between restarts of the LLM child."
    )
    llm_child_hang_timeouts: int = Field(
        3,
        ge=0,
        le=1000,
        description="Generations in a row that time out before the LLM child is killed as "
        "hung (and restarted); 0: never.",
    )
    llm_cpu_max_gb: float = Field(
        2.0,
        ge=0,
        le=1024,
        description="Largest GGUF run in process without a GPU; a larger one makes the "
        "hardware 'constrained' (small answers only).",
    )
    llm_memory_headroom_gb: float = Field(
        1.0, ge=0, le=1024, description="Free memory to keep beside an in-process LLM."
    )
    ask_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Time budget of one question (LLM fallback included)."
    )
    ask_top_k: int = Field(5, ge=1, le=50, description="Passages given to the answerers.")
    small_confident: float = Field(
        0.35,
        ge=0,
        le=1.01,
        description="mode=auto serves the small answer when its confidence reaches this "
        "(cascade); above 1: always ask the LLM when there is one. The default was chosen on "
        "the oracle table of `tandem bench cascade` (NYT, Gemma 3 270M; BENCHMARKS.md): rerun "
        "it on your LLM and corpus to set yours.",
    )
    small_min_confidence: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Small mode says 'no answer found' below this: the raw score of an "
        "uncalibrated answerer; for a calibrated one (app/answers/calibration.json), the "
        "probability that the passages answer the question, when above the fitted threshold.",
    )
    checker_threshold: float = Field(
        0.5, ge=0, le=1, description="Checker score under which an answer sentence is unsupported."
    )
    ungrounded: Literal["flag", "drop", "fallback"] = Field(
        "flag",
        description="What to do with an LLM answer the checker does not support: flag its "
        "unsupported sentences (grounded.unsupported), drop them from the answer (the small "
        "answer when none is left), or serve the small answer instead when the answer's score "
        "is under TANDEM_CHECKER_THRESHOLD (reason llm_ungrounded).",
    )
    llm_cost_model: Path | None = Field(
        None,
        description="LLM cost model measured by `tandem bench cascade --cost-model FILE` (seconds "
        "per prompt token, mean completion): estimates what a small answer saved; unset: "
        "app/answers/llm_cost.json when present, else this service's own LLM calls.",
    )
    llm_draft: Literal["none", "prompt-lookup"] = Field(
        "none",
        description="Speculative decoding of the in-process LLM: prompt-lookup drafts tokens "
        "from n-grams of the prompt (the passages) and checks them in one forward pass "
        "(greedy requests only). Off by default: 1.10x with Gemma 3 270M on 2 CPU cores, short "
        "of the 1.5x asked, and greedy text not guaranteed identical (BENCHMARKS.md); "
        "measure yours with `tandem bench speculative`.",
    )
    llm_draft_tokens: int = Field(
        4, ge=1, le=64, description="Draft tokens per step of prompt-lookup decoding."
    )

    # -- index-building jobs (POST /v1/indexes/{name}/jobs, tandem worker) -------------------
    jobs_enabled: bool = Field(True, description="Serve the jobs API (/v1/jobs).")
    jobs_backend: Literal["auto", "redis", "local"] = Field(
        "auto",
        description="Where jobs run: redis (a saq queue consumed by `tandem worker`), local (an "
        "in-process worker of the API) or auto (redis when TANDEM_REDIS_URL is set).",
    )
    sources_root: Path | None = Field(
        None,
        description="Folder that job sources are relative to; unset: only uploads are accepted.",
    )
    upload_dir: Path | None = Field(
        None,
        description="Where uploads wait for their job (shared with the workers); default: "
        "<data_dir>/uploads.",
    )
    upload_max_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Largest multipart upload of one job (else 413)."
    )
    upload_max_files: int = Field(
        200, ge=1, le=100_000, description="Most files in one upload (else 413)."
    )
    job_max_sources: int = Field(100, ge=1, le=10_000, description="Most sources in one job.")
    job_queue: str = Field("tandem-jobs", description="Name of the saq queue in Redis.")
    job_local_workers: int = Field(
        1, ge=1, le=16, description="Jobs the in-process worker runs at once (no Redis)."
    )
    worker_concurrency: int = Field(
        1, ge=1, le=64, description="Jobs one `tandem worker` process runs at once."
    )
    job_heartbeat_s: int = Field(
        15,
        ge=1,
        le=3600,
        description="A running job not heard of for this long is declared lost (worker died).",
    )
    job_sweep_s: int = Field(
        5, ge=1, le=3600, description="How often lost jobs and stale job state are looked for."
    )
    job_retries: int = Field(
        0,
        ge=0,
        le=10,
        description="Times a job whose worker died (or that crashed) is tried again; 0: it fails.",
    )
    job_timeout_s: int = Field(
        6 * 3600, ge=0, description="Longest a job may run (0: no limit); then it fails."
    )
    job_ttl_s: int = Field(
        7 * 86400, ge=60, description="How long finished jobs stay listed in Redis."
    )
    job_lock_wait_s: int = Field(
        600,
        ge=0,
        le=86400,
        description="How long a job waits for a build of its index started outside the jobs "
        "API (tandem index build) before failing with index_busy.",
    )
    ray_address: str | None = Field(
        None,
        description="Ray cluster of --engine ray builds (ray://host:10001, auto, host:6379); "
        "unset: each build starts a local Ray instance. Needs the ray extra.",
    )
    ray_addresses: list[str] = Field(
        default_factory=list,
        description="Other Ray clusters a job may name in options.ray_address (a JSON list); "
        "a job naming any other address is refused (a Ray cluster runs code in the server).",
    )
    worker_heartbeat_file: Path = Field(
        Path("/tmp/tandem-worker.alive"),
        description="File `tandem worker` touches while alive (its container healthcheck).",
    )
    qdrant_shards: int | None = Field(
        None, ge=1, le=1024, description="Shards of each new Qdrant collection (cluster mode)."
    )
    qdrant_replicas: int | None = Field(
        None, ge=1, le=64, description="Replication factor of each new Qdrant collection."
    )

    # -- OpenTelemetry (app/tracing.py) --------------------------------------------------------
    otel_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector URL (e.g. http://otel-collector:4318): traces on; "
        "unset: the standard OTEL_EXPORTER_OTLP_ENDPOINT, else tracing is off.",
    )
    otel_content: bool = Field(
        False, description="Put the query/question text on spans (off: never recorded)."
    )
    otel_service_name: str = Field("tandem", description="service.name of the exported spans.")

    @field_validator(
        "embedder_backend",
        "onnx_cache",
        "onnx_threads",
        "faiss_hnsw_threshold",
        "faiss_ivfpq_threshold",
        "faiss_device",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any, info: Any) -> Any:
        """An empty variable means the default (as when these were read from the environment
        by the layers below); backend and device names ignore case and spaces."""
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return "auto" if info.field_name == "faiss_device" else None
            if info.field_name in {"embedder_backend", "faiss_device"}:
                return value.lower()
        return value

    def retriever_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`retrievers.retriever.Retriever` set by these settings."""
        return {
            "candidates": self.candidates,
            "fusion": self.fusion,
            "dense_weight": self.dense_weight,
            "rrf_k": self.rrf_k,
            "store_options": self.store_options(),
        }

    def store_options(self) -> dict[str, Any]:
        """Options of the vector store of a published index version, opened for reading
        (``store_options`` of :class:`retrievers.retriever.Retriever`)."""
        return {
            "url": self.qdrant_url,
            "api_key": self.qdrant_api_key,
            "device": self.faiss_device,
        }

    def build_store_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`indexers.builder.BuildOptions` that place and shape
        the vector store of a new index version."""
        return {
            "qdrant_url": self.qdrant_url,
            "qdrant_api_key": self.qdrant_api_key,
            "qdrant_shards": self.qdrant_shards,
            "qdrant_replicas": self.qdrant_replicas,
            "hnsw_threshold": self.faiss_hnsw_threshold,
            "ivfpq_threshold": self.faiss_ivfpq_threshold,
            "faiss_device": self.faiss_device,
        }


@lru_cache
def get_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # fields come from the environment
