"""Qdrant through qdrant-client: a server URL (scale-out) or a local path (embedded mode).

Each index version is its own collection.

* **Server mode** (a server ``url``, the application's qdrant_url setting): the collection is
  named ``tandem-<index>-v<N>`` (``shard_number`` shards, ``replication_factor`` replicas each:
  the application's qdrant_shards / qdrant_replicas settings); on publish the
  alias ``tandem-<index>`` is switched to it in one atomic request (:func:`switch_alias`) and
  the collections of versions pruned from the data dir are deleted. Tandem itself reads the
  collection named in each version's manifest, so a serving process and its chunk store
  always agree on the version; the alias is for other clients of the cluster.
* **Local mode** (no URL): the collection lives inside the version folder (``qdrant/``), so it
  is published and pruned with the version like every other file. A local collection is held
  by one process at a time.

**Filters are pushed down.** Each point carries, besides ``row``, ``doc_id``, ``source`` and
the chunk's metadata, a normalised copy of every metadata field that can be filtered on
(``tf_<field>``: the text form the chunk store compares, ``"true"``/``"false"`` for booleans),
with a keyword payload index on it in server mode. A search whose filters are all on such
fields is answered by Qdrant with a ``Filter`` (:meth:`QdrantStore.supports_filters`); others
(``source``, ``doc_id``, ``chunk_id``, float fields, indexes built before this) fall back to
the rows the chunk store matched, sent as a ``HasId`` list. The fields of a version are listed
in its ``qdrant.json``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stores.errors import StoreUnavailable

log = logging.getLogger(__name__)

LOCAL_FOLDER = "qdrant"
COLLECTION = "chunks"
UPSERT_BATCH = 512
QUERY_BATCH = 64
#: Per-version description of the collection (filter fields), beside the manifest.
META_FILE = "qdrant.json"
#: Payload prefix of the normalised filter fields.
FILTER_PREFIX = "tf_"
#: Payload keys that are columns in the chunk store, not metadata: a document's metadata may
#: carry a field of the same name, so Qdrant's copy cannot stand for the column.
COLUMN_KEYS = frozenset({"row", "source", "doc_id", "chunk_id"})
#: Keyword payload indexes created per collection (server mode), at most.
MAX_PAYLOAD_INDEXES = 64
#: Least HNSW ``ef`` of a server-mode search (raised to ``k`` when larger).
DEFAULT_HNSW_EF = 128
#: The alias every index's current collection is reachable under.
ALIAS_PREFIX = "tandem-"

# Local-mode clients hold a file lock on their folder: share one per folder in a process.
_LOCAL_CLIENTS: dict[str, Any] = {}
_LOCAL_LOCK = threading.Lock()
# Server-mode clients, one per (url, api key) in a process (thread-safe HTTP clients).
_SERVER_CLIENTS: dict[tuple[str, str | None], Any] = {}
_SERVER_LOCK = threading.Lock()


def collection_name(index: str, version: int) -> str:
    """The server-mode collection of one index version."""
    return f"{ALIAS_PREFIX}{index}-v{version}"


def alias_name(index: str) -> str:
    return f"{ALIAS_PREFIX}{index}"


def server_client(url: str, api_key: str | None = None) -> Any:
    """The shared client of a Qdrant server (created on first use)."""
    api_key = api_key or None  # an empty setting means no key
    key = (url, api_key)
    with _SERVER_LOCK:
        client = _SERVER_CLIENTS.get(key)
        if client is None:
            try:
                from qdrant_client import QdrantClient
            except ImportError as exc:  # pragma: no cover - qdrant-client is a dependency
                raise StoreUnavailable(
                    "qdrant-client is not installed: pip install qdrant-client"
                ) from exc
            client = QdrantClient(url=url, api_key=api_key, timeout=30)
            _SERVER_CLIENTS[key] = client
        return client


def register_client(url: str, client: Any, api_key: str | None = None) -> None:
    """Answer ``url`` with ``client`` in this process (an embedded or in-memory Qdrant)."""
    with _SERVER_LOCK:
        _SERVER_CLIENTS[(url, api_key or None)] = client


def _close_all(lock: threading.Lock, registry: dict[Any, Any]) -> None:
    with lock:
        clients = list(registry.values())
        registry.clear()
    for client in clients:
        with contextlib.suppress(Exception):
            client.close()


def close_clients() -> None:
    """Close every shared server client (at process exit, or between tests)."""
    _close_all(_SERVER_LOCK, _SERVER_CLIENTS)


def close_local_clients() -> None:
    """Close every local-mode client. Registered with :mod:`atexit`: a client left for the
    garbage collector at interpreter shutdown makes qdrant-client print an ignored
    ``ImportError`` traceback (its ``__del__`` imports after ``sys.meta_path`` is gone)."""
    _close_all(_LOCAL_LOCK, _LOCAL_CLIENTS)


atexit.register(close_local_clients)
atexit.register(close_clients)


def _local_client(folder: Path) -> Any:
    try:
        from qdrant_client import QdrantClient
    except ImportError as exc:  # pragma: no cover - qdrant-client is a dependency
        raise StoreUnavailable("qdrant-client is not installed: pip install qdrant-client") from exc
    path = str((folder / LOCAL_FOLDER).resolve())
    with _LOCAL_LOCK:
        if path not in _LOCAL_CLIENTS:
            _LOCAL_CLIENTS[path] = QdrantClient(path=path)
        return _LOCAL_CLIENTS[path]


def release_local(folder: Path) -> None:
    """Close the local-mode client of a version folder (before it is moved or deleted)."""
    path = str((Path(folder) / LOCAL_FOLDER).resolve())
    with _LOCAL_LOCK:
        client = _LOCAL_CLIENTS.pop(path, None)
    if client is not None:
        client.close()


# -- filter fields -----------------------------------------------------------------------------
def filter_key(field: str) -> str:
    """The payload key of a filter field: ``tf_`` + the name with ``_`` doubled and any other
    character outside ``[A-Za-z0-9]`` as ``_xx`` (hex), so that no field name is read as a
    nested path and no two names collide."""
    out = []
    for ch in field:
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif ch == "_":
            out.append("__")
        else:
            out.append("".join(f"_{b:02x}" for b in ch.encode()))
    return FILTER_PREFIX + "".join(out)


def filter_text(value: Any) -> str | None:
    """The text the chunk store compares a value as; None when it is not pushed down."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    return None  # floats (formatting differs from SQLite's), lists, objects, null


def filter_fields_of(payloads: Sequence[Mapping[str, Any]]) -> list[str]:
    """Metadata fields whose every value can be compared in Qdrant as in the chunk store."""
    seen: set[str] = set()
    refused: set[str] = set(COLUMN_KEYS)
    for payload in payloads:
        for key, value in payload.items():
            if key in refused:
                continue
            if filter_text(value) is None and value is not None:
                refused.add(key)
            else:
                seen.add(key)
    return sorted(seen - refused)


def _read_meta(folder: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((folder / META_FILE).read_text())
        return data
    except (OSError, ValueError):
        return {}


class QdrantStore:
    backend = "qdrant"

    def __init__(
        self,
        folder: Path,
        dimension: int,
        *,
        create: bool = False,
        url: str | None = None,
        api_key: str | None = None,
        collection: str | None = None,
        payloads: list[dict[str, Any]] | None = None,
        shard_number: int | None = None,
        replication_factor: int | None = None,
        hnsw_ef: int = DEFAULT_HNSW_EF,
    ) -> None:
        from qdrant_client import models

        self.models = models
        self.folder = Path(folder)
        self.dimension = dimension
        self.collection = collection or COLLECTION
        self.payloads = payloads
        self.hnsw_ef = hnsw_ef
        self._count = 0
        if not create:
            url, api_key = self._where(url, api_key)
        self.url = url
        meta = {} if create else _read_meta(self.folder)
        self.filter_fields: frozenset[str] = frozenset(meta.get("filter_fields") or ())
        try:
            self.client = server_client(url, api_key) if url else _local_client(self.folder)
            if create:
                self._create(shard_number, replication_factor)
            else:
                self._count = int(self.client.count(self.collection, exact=True).count)
        except StoreUnavailable:
            raise
        except Exception as exc:
            where = url or str(self.folder / LOCAL_FOLDER)
            hint = ""
            if not url and self.collection != COLLECTION:
                hint = " (this index lives on a Qdrant server: configure its URL, qdrant_url)"
            raise StoreUnavailable(f"Qdrant at {where} is unavailable{hint}: {exc}") from exc

    def _where(self, url: str | None, api_key: str | None) -> tuple[str | None, str | None]:
        """Server or local for an existing version, whatever the caller's settings say."""
        local = (self.folder / LOCAL_FOLDER).is_dir() and self.collection == COLLECTION
        if local:
            return None, None
        return url, api_key

    def _create(self, shards: int | None, replicas: int | None) -> None:
        models = self.models
        if self.client.collection_exists(self.collection):
            self.client.delete_collection(self.collection)
        extra: dict[str, Any] = {}
        if self.url and shards:
            extra["shard_number"] = shards
        if self.url and replicas:
            extra["replication_factor"] = replicas
        self.client.create_collection(
            self.collection,
            vectors_config=models.VectorParams(size=self.dimension, distance=models.Distance.DOT),
            **extra,
        )

    def build(self, vectors: np.ndarray) -> None:
        models = self.models
        payloads = self.payloads or [{"row": i} for i in range(len(vectors))]
        fields = filter_fields_of(payloads)
        keys = {f: filter_key(f) for f in fields}
        if self.url:  # payload indexes do nothing in local mode (brute force)
            for f in fields[:MAX_PAYLOAD_INDEXES]:
                self.client.create_payload_index(
                    self.collection, keys[f], models.PayloadSchemaType.KEYWORD, wait=True
                )
        for start in range(0, len(vectors), UPSERT_BATCH):
            batch = vectors[start : start + UPSERT_BATCH]
            points = []
            for i, vec in enumerate(batch):
                payload = dict(payloads[start + i])
                for f in fields:
                    text = filter_text(payload.get(f))
                    if text is not None:
                        payload[keys[f]] = text
                points.append(
                    models.PointStruct(id=start + i, vector=vec.tolist(), payload=payload)
                )
            self.client.upsert(self.collection, points=points, wait=True)
        self._count = len(vectors)
        self.filter_fields = frozenset(fields)

    def save(self) -> None:
        """Qdrant persists on write; the filter fields go to ``qdrant.json``."""
        data = {
            "collection": self.collection,
            "mode": "server" if self.url else "local",
            "filter_fields": sorted(self.filter_fields),
        }
        (self.folder / META_FILE).write_text(json.dumps(data, indent=2))

    @property
    def count(self) -> int:
        return self._count

    # -- search ------------------------------------------------------------------------------
    def supports_filters(self, filters: Mapping[str, Sequence[str]]) -> bool:
        """True when Qdrant can apply ``filters`` itself (see the module docstring)."""
        return bool(filters) and all(key in self.filter_fields for key in filters)

    def qdrant_filter(self, filters: Mapping[str, Sequence[str]]) -> Any:
        """``{"topic": ["a", "b"], ...}`` (normalised) as a Qdrant ``Filter``: all fields,
        any of the values of each."""
        models = self.models
        return models.Filter(
            must=[
                models.FieldCondition(
                    key=filter_key(key), match=models.MatchAny(any=[str(v) for v in values])
                )
                for key, values in filters.items()
            ]
        )

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        query_filter: Any = None,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` per query; restricted by ``filters`` (pushed down), ``query_filter`` (a
        Qdrant ``Filter``) or ``allowed`` rows, in that order of preference."""
        models = self.models
        if queries.ndim == 1:
            queries = queries[None, :]
        k = max(1, k)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        flt = query_filter
        if flt is None and filters:
            flt = self.qdrant_filter(filters)
        if flt is None and allowed is not None:
            if len(allowed) == 0:
                return scores, rows
            flt = models.Filter(must=[models.HasIdCondition(has_id=[int(r) for r in allowed])])
        params = models.SearchParams(hnsw_ef=max(self.hnsw_ef, k)) if self.url else None
        for start in range(0, len(queries), QUERY_BATCH):
            requests = [
                models.QueryRequest(
                    query=q.tolist(), filter=flt, limit=k, params=params, with_payload=False
                )
                for q in queries[start : start + QUERY_BATCH]
            ]
            answers = self.client.query_batch_points(self.collection, requests=requests)
            for qi, answer in enumerate(answers, start=start):
                for j, point in enumerate(answer.points[:k]):
                    scores[qi, j] = point.score
                    rows[qi, j] = int(point.id)
        return scores, rows

    def params(self) -> dict[str, Any]:
        return {
            "backend": "qdrant",
            "distance": "dot",
            "collection": self.collection,
            "mode": "server" if self.url else "local",
            "filter_fields": sorted(self.filter_fields),
        }

    def close(self) -> None:
        if not self.url:  # server clients are shared by the process
            release_local(self.folder)


# -- aliases and old versions (server mode) ----------------------------------------------------
def switch_alias(
    url: str, api_key: str | None, name: str, version: int, keep: int | None = None
) -> bool:
    """Point alias ``tandem-<name>`` at version ``version``'s collection in one request, then
    delete the collections of versions the data dir no longer keeps.

    Called right after the version is published; Tandem reads collections by name, so a
    failure here is logged (the alias lags) and returns False rather than failing the build.
    """
    from stores.layout import KEEP_VERSIONS

    client = server_client(url, api_key)
    try:
        switch_alias_with(client, name, version)
    except Exception as exc:  # noqa: BLE001 - logged; the published version serves anyway
        log.error(
            "index %s: alias %s not switched to v%d: %s", name, alias_name(name), version, exc
        )
        return False
    with contextlib.suppress(Exception):
        prune_collections(client, name, version, KEEP_VERSIONS if keep is None else keep)
    return True


def switch_alias_with(client: Any, name: str, version: int) -> None:
    """The atomic alias switch of :func:`switch_alias` on a given client."""
    from qdrant_client import models

    alias = alias_name(name)
    ops: list[Any] = []
    if any(a.alias_name == alias for a in client.get_aliases().aliases):
        ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    ops.append(
        models.CreateAliasOperation(
            create_alias=models.CreateAlias(
                collection_name=collection_name(name, version), alias_name=alias
            )
        )
    )
    client.update_collection_aliases(change_aliases_operations=ops)


def index_collections(client: Any, name: str) -> dict[int, str]:
    """``{version: collection}`` of index ``name`` on a server."""
    pattern = re.compile(rf"^{re.escape(ALIAS_PREFIX + name)}-v(\d+)$")
    found = {}
    for c in client.get_collections().collections:
        m = pattern.match(c.name)
        if m:
            found[int(m.group(1))] = c.name
    return found


def prune_collections(client: Any, name: str, current: int, keep: int) -> list[str]:
    """Delete the collections of versions older than the ``keep`` newest up to ``current``."""
    dropped = []
    for version, collection in sorted(index_collections(client, name).items()):
        if version <= current - keep:
            client.delete_collection(collection)
            dropped.append(collection)
    if dropped:
        log.info("index %s: deleted Qdrant collections %s", name, ", ".join(dropped))
    return dropped


def drop_index(url: str, api_key: str | None, name: str) -> list[str]:
    """Delete every collection and the alias of index ``name`` (when the index is removed)."""
    from qdrant_client import models

    client = server_client(url, api_key)
    alias = alias_name(name)
    if any(a.alias_name == alias for a in client.get_aliases().aliases):
        client.update_collection_aliases(
            change_aliases_operations=[
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            ]
        )
    dropped = list(index_collections(client, name).values())
    for collection in dropped:
        client.delete_collection(collection)
    return dropped
