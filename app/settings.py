"""Typed settings, read from ``TANDEM_*`` environment variables (and a ``.env`` file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
    store: str = Field("faiss", description="Vector store for new indexes: faiss or qdrant.")
    qdrant_url: str | None = Field(None, description="Qdrant server URL (scale-out store).")
    qdrant_api_key: str | None = Field(None, description="Qdrant API key, if the server wants one.")
    chunk_tokens: int | None = Field(None, description="Chunk size in model tokens.")
    candidates: int = Field(50, ge=1, le=1000, description="First-stage candidates fused/reranked.")
    rerank_top_n: int = Field(20, ge=1, le=200, description="Candidates scored by the reranker.")


@lru_cache
def get_settings() -> Settings:
    return Settings()
