"""What the service holds while it runs: models, open indexes, cache, limiter, keys, metrics.

:class:`ServiceState` is built once in the app's lifespan (``app.state.tandem``, also injected
into handlers as the ``tandem`` dependency). Its :class:`IndexRegistry` opens every index at
startup and keeps them current while serving, without a restart and without downtime:

* each request for an index checks ``IndexLayout.current_version()`` (one small file read) at
  most every ``TANDEM_REFRESH_INTERVAL_MS``; a new version is opened in a worker thread with
  ``Retriever.refresh()`` while searches in flight finish on the old snapshot;
* an index that was deleted and rebuilt under the same version number is noticed by its
  manifest's identity (inode and mtime) and reopened;
* an index created after startup is opened on its first request;
* a background task does the same for every index every second or so, so that a new version is
  usually open before the first request asks for it.

The cache identity of a served version is :attr:`LoadedIndex.tag` (version + a hash of its
manifest), so cached answers of an old version (or of a deleted index of the same name) are
never returned for a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio.to_thread

from app.cache import Cache, RedisCache, create_cache
from app.errors import ComponentUnavailable
from app.limiter import EmbeddingBatcher, ModelLimiter
from app.metrics import Metrics
from app.runtime import configure_lower_layers
from app.security import KeyRing, RateLimiter
from app.settings import Settings
from core.errors import TandemError
from retrievers.retriever import Reranker, Retriever
from stores.errors import IndexNotFound
from stores.layout import MANIFEST, IndexLayout, check_name, list_indexes

if TYPE_CHECKING:
    from smallmodels.embedder import SentenceTransformerEmbedder

log = logging.getLogger("tandem.state")

HealthCheck = Callable[[], Awaitable[tuple[Literal["ok", "absent", "down"], str]]]


def manifest_tag(manifest: dict[str, Any]) -> str:
    """``"<version>-<hash>"``: the identity of one published version."""
    blob = json.dumps(manifest, sort_keys=True, default=str).encode()
    return f"{manifest.get('version')}-{hashlib.sha256(blob).hexdigest()[:12]}"


def _identity(layout: IndexLayout, version: int) -> tuple[int, int, int]:
    try:
        st = (layout.version_dir(version) / MANIFEST).stat()
    except FileNotFoundError:
        return (version, 0, 0)
    return (version, st.st_ino, st.st_mtime_ns)


@dataclass
class LoadedIndex:
    """One open index: its retriever and when it was last checked for a new version."""

    name: str
    retriever: Retriever
    identity: tuple[int, int, int]
    checked_at: float = field(default_factory=time.monotonic)
    _tag: tuple[object, str] | None = None

    @property
    def version(self) -> int:
        return self.retriever.version

    @property
    def manifest(self) -> dict[str, Any]:
        return self.retriever.snapshot.manifest

    @property
    def tag(self) -> str:
        """Cache identity of the snapshot being served now."""
        snap = self.retriever.snapshot
        if self._tag is None or self._tag[0] is not snap:
            self._tag = (snap, manifest_tag(snap.manifest))
        return self._tag[1]


class IndexRegistry:
    """Open retrievers by index name, kept current with the published versions."""

    def __init__(self, settings: Settings, metrics: Metrics, reranker: Reranker | None) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.metrics = metrics
        self.reranker = reranker
        self.interval_s = settings.refresh_interval_ms / 1000
        self._loaded: dict[str, LoadedIndex] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.failures: dict[str, str] = {}

    # -- access ------------------------------------------------------------------------------
    @property
    def loaded(self) -> dict[str, LoadedIndex]:
        return dict(self._loaded)

    def names(self) -> list[str]:
        """Published indexes on disk now."""
        return list_indexes(self.data_dir)

    async def get(self, name: str, *, force: bool = False) -> LoadedIndex:
        """The open index ``name``, refreshed if a new version was published.

        Raises :class:`IndexNotFound` (404) when it does not exist (any more).
        """
        check_name(name)
        entry = self._loaded.get(name)
        if entry is not None and not force and self._fresh(entry):
            return entry
        if entry is None and IndexLayout(self.data_dir, name).current_version() is None:
            raise IndexNotFound(f"index {name!r} not found")  # no lock kept for unknown names
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            entry = self._loaded.get(name)
            if entry is not None and not force and self._fresh(entry):
                return entry
            return await self._sync(name, entry)

    def _fresh(self, entry: LoadedIndex) -> bool:
        return time.monotonic() - entry.checked_at < self.interval_s

    async def _sync(self, name: str, entry: LoadedIndex | None) -> LoadedIndex:
        layout = IndexLayout(self.data_dir, name)
        current = layout.current_version()
        if current is None:
            if entry is not None:
                self._drop(name, "deleted")
            raise IndexNotFound(f"index {name!r} not found")
        identity = _identity(layout, current)
        if entry is not None and identity == entry.identity:
            entry.checked_at = time.monotonic()
            return entry
        if entry is not None and current != entry.version:
            try:
                switched = await anyio.to_thread.run_sync(entry.retriever.refresh)
            except Exception as exc:  # noqa: BLE001 - keep serving the version we have
                log.error(
                    "index %s: v%d could not be opened (%s); still serving v%d",
                    name,
                    current,
                    exc,
                    entry.version,
                )
                entry.checked_at = time.monotonic()
                return entry
            if switched:
                entry.identity = _identity(layout, entry.version)
                log.info("index %s: now serving v%d", name, entry.version)
                self._report(entry)
            entry.checked_at = time.monotonic()
            return entry
        # New index, or the same version number published again (deleted and rebuilt).
        try:
            retriever = await anyio.to_thread.run_sync(self._open, name)
        except TandemError as exc:
            self.failures[name] = exc.message
            raise
        new = LoadedIndex(name, retriever, _identity(layout, retriever.version))
        old = self._loaded.get(name)
        self._loaded[name] = new
        self.failures.pop(name, None)
        if old is not None:
            _close_soon(old.retriever)
        log.info("index %s: serving v%d (%d chunks)", name, new.version, retriever.snapshot.size)
        self._report(new)
        return new

    def _open(self, name: str) -> Retriever:
        return Retriever(
            self.data_dir, name, reranker=self.reranker, **self.settings.retriever_options()
        )

    def _report(self, entry: LoadedIndex) -> None:
        counts = entry.manifest.get("counts", {})
        self.metrics.set_index(
            entry.name, entry.version, int(counts.get("documents", 0)), int(counts.get("chunks", 0))
        )

    def _drop(self, name: str, why: str) -> None:
        entry = self._loaded.pop(name, None)
        self._locks.pop(name, None)
        self.metrics.drop_index(name)
        if entry is not None:
            log.info("index %s: %s, no longer served", name, why)
            _close_soon(entry.retriever)

    # -- lifecycle ---------------------------------------------------------------------------
    async def load_all(self) -> None:
        """Open every published index (startup); failures are logged and retried later."""
        for name in self.names():
            try:
                await self.get(name, force=True)
            except TandemError as exc:
                log.error("index %s could not be opened: %s", name, exc.message)

    async def sync_all(self) -> None:
        """Pick up new indexes and versions, forget deleted indexes (background task)."""
        names = set(await anyio.to_thread.run_sync(self.names))
        for name in list(self._loaded):
            if name not in names:
                self._drop(name, "deleted")
        for name in sorted(names):
            try:
                await self.get(name, force=True)
            except TandemError as exc:
                log.debug("index %s not refreshed: %s", name, exc.message)

    async def watch(self) -> None:
        period = min(max(1.0, self.interval_s), 5.0)
        while True:
            await asyncio.sleep(period)
            try:
                await self.sync_all()
            except Exception:  # the watcher must survive anything on disk
                log.exception("index watcher failed; retrying")

    def close(self) -> None:
        for entry in self._loaded.values():
            with contextlib.suppress(Exception):
                entry.retriever.close()
        self._loaded.clear()


def _close_soon(retriever: Retriever) -> None:
    """Close a replaced retriever once searches still using it are done."""
    import threading

    def close() -> None:
        time.sleep(30)
        with contextlib.suppress(Exception):
            retriever.close()

    threading.Thread(target=close, daemon=True).start()


def _describe(exc: BaseException) -> str:
    return exc.message if isinstance(exc, TandemError) else f"{type(exc).__name__}: {exc}"


def load_reranker(spec: str) -> Reranker:
    """The reranker for ``spec`` (``smallmodels.reranker`` is imported only when configured)."""
    try:
        from smallmodels.reranker import load_reranker as load
    except ModuleNotFoundError as exc:
        raise ComponentUnavailable(f"reranker {spec!r} configured but {exc}") from exc
    reranker: Reranker = load(spec)
    return reranker


class ServiceState:
    """Everything a request handler needs; ``app.state.tandem``.

    A plain class (not a dataclass) so that Litestar injects it as is.
    """

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        cache: Cache,
        limiter: ModelLimiter,
        keyring: KeyRing,
        rate_limiter: RateLimiter,
        indexes: IndexRegistry,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.cache = cache
        self.limiter = limiter
        self.keyring = keyring
        self.rate_limiter = rate_limiter
        self.indexes = indexes
        #: Query embeddings go through here: batched when requests arrive together.
        self.batcher = EmbeddingBatcher(limiter, settings.embed_batch)
        self.embedder: SentenceTransformerEmbedder | None = None
        self.reranker: Reranker | None = None
        self.model_errors: dict[str, str] = {}
        #: Room for plug-ins (answers, jobs, ...) to keep their own loaded objects by name.
        self.extras: dict[str, Any] = {}
        #: Extra readiness components of plug-ins: name -> async () -> (state, detail), state
        #: "ok", "absent" or "down". A plug-in that is down makes readiness "degraded", not 503.
        self.health_checks: dict[str, HealthCheck] = {}
        self.started_at = time.time()
        self._torch_threads = 0

    @classmethod
    def create(cls, settings: Settings, metrics: Metrics | None = None) -> ServiceState:
        """Build the state without loading anything heavy (see :meth:`start`)."""
        configure_lower_layers(settings)
        metrics = metrics or Metrics()
        cache = create_cache(
            settings.redis_url,
            max_entries=settings.cache_max_entries,
            timeout_ms=settings.redis_timeout_ms,
            backoff_s=settings.redis_backoff_s,
            backoff_max_s=settings.redis_backoff_max_s,
        )
        return cls(
            settings=settings,
            metrics=metrics,
            cache=cache,
            limiter=ModelLimiter(
                settings.model_threads, settings.model_queue, on_wait=metrics.model_waiting.set
            ),
            keyring=KeyRing.from_setting(settings.api_keys),
            rate_limiter=RateLimiter(
                settings.rate_limit_requests,
                settings.rate_limit_window_s,
                cache if isinstance(cache, RedisCache) else None,
                settings.cache_prefix,
            ),
            indexes=IndexRegistry(settings, metrics, None),
        )

    @property
    def reranking(self) -> bool:
        return self.reranker is not None

    async def start(self) -> None:
        """Load the models and open the indexes (once, in the lifespan)."""
        s = self.settings
        if not self.keyring.enabled:
            log.warning(
                "no API keys configured (TANDEM_API_KEYS): authentication is off; "
                "serve on a loopback address only"
            )
        else:
            log.info("API keys: %d configured", len(self.keyring))
        await anyio.to_thread.run_sync(self._load_models)
        self.indexes.reranker = self.reranker
        await self.indexes.load_all()
        loaded = self.indexes.loaded
        log.info(
            "serving %d indexes from %s: %s",
            len(loaded),
            s.data_dir,
            ", ".join(f"{n} v{e.version}" for n, e in loaded.items()) or "none yet",
        )
        status = await self.cache.status()
        log.info(
            "cache: %s%s",
            self.cache.backend,
            f" (redis {status})" if self.cache.backend == "redis" else "",
        )

    def _load_models(self) -> None:
        from smallmodels.embedder import load_embedder

        s = self.settings
        if s.torch_threads:
            import torch

            self._torch_threads = torch.get_num_threads()
            torch.set_num_threads(s.torch_threads)
        try:
            self.embedder = load_embedder(s.embedder)
            self.embedder.encode(["warm up"])  # first call pays one-off costs; not a request
            log.info("embedder %s loaded", self.embedder.name)
        except Exception as exc:  # noqa: BLE001 - reported by readiness, not a crash
            self.model_errors["embedder"] = _describe(exc)
            log.error("embedder could not be loaded: %s", _describe(exc))
        if not s.reranker:
            log.info("reranking off: no reranker configured (TANDEM_RERANKER)")
            return
        try:
            self.reranker = load_reranker(s.reranker)
            if s.rerank_top_n is not None and hasattr(self.reranker, "top_n"):
                self.reranker.top_n = s.rerank_top_n
            self.reranker.score("warm up", ["warm up"])
            log.info("reranker %s loaded", getattr(self.reranker, "name", s.reranker))
        except Exception as exc:  # noqa: BLE001 - reported by readiness and as 503 on rerank
            self.model_errors["reranker"] = _describe(exc)
            log.error(
                "reranker %r could not be loaded: %s; reranking off", s.reranker, _describe(exc)
            )

    async def close(self) -> None:
        self.indexes.close()
        await self.cache.close()
        if self._torch_threads:
            import torch

            torch.set_num_threads(self._torch_threads)

    def require_reranker(self) -> Reranker:
        """The reranker, or the error explaining why there is none."""
        if self.reranker is not None:
            return self.reranker
        if "reranker" in self.model_errors:
            raise ComponentUnavailable(
                f"the configured reranker failed to load: {self.model_errors['reranker']}"
            )
        from retrievers.errors import RerankerUnavailable

        raise RerankerUnavailable(
            "reranking was requested but no reranker is configured (set TANDEM_RERANKER)"
        )
