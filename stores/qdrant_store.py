"""Qdrant through qdrant-client: a server URL (scale-out) or a local path (embedded mode).

Each index version is its own collection. With a server, the collection is named
``tandem-<index>-v<N>`` and the alias ``tandem-<index>`` is switched to it on publish; in local
mode the collection lives inside the version folder (``qdrant/``), so it is published and
pruned with the version like every other file.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from stores.errors import StoreUnavailable

LOCAL_FOLDER = "qdrant"
COLLECTION = "chunks"
UPSERT_BATCH = 512

# Local-mode clients hold a file lock on their folder: share one per folder in a process.
_LOCAL_CLIENTS: dict[str, Any] = {}
_LOCAL_LOCK = threading.Lock()


def _client(url: str | None, folder: Path, api_key: str | None = None) -> Any:
    try:
        from qdrant_client import QdrantClient
    except ImportError as exc:  # pragma: no cover - qdrant-client is a dependency
        raise StoreUnavailable("qdrant-client is not installed: pip install qdrant-client") from exc
    if url:
        return QdrantClient(url=url, api_key=api_key, timeout=30)
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
    ) -> None:
        from qdrant_client import models

        self.models = models
        self.folder = Path(folder)
        self.dimension = dimension
        self.url = url
        self.collection = collection or COLLECTION
        self.payloads = payloads
        self._count = 0
        try:
            self.client = _client(url, self.folder, api_key)
            if create:
                if self.client.collection_exists(self.collection):
                    self.client.delete_collection(self.collection)
                self.client.create_collection(
                    self.collection,
                    vectors_config=models.VectorParams(
                        size=dimension, distance=models.Distance.DOT
                    ),
                )
            else:
                self._count = int(self.client.count(self.collection, exact=True).count)
        except StoreUnavailable:
            raise
        except Exception as exc:
            where = url or str(self.folder / LOCAL_FOLDER)
            raise StoreUnavailable(f"Qdrant at {where} is unavailable: {exc}") from exc

    def build(self, vectors: np.ndarray) -> None:
        models = self.models
        for start in range(0, len(vectors), UPSERT_BATCH):
            batch = vectors[start : start + UPSERT_BATCH]
            points = [
                models.PointStruct(
                    id=start + i,
                    vector=vec.tolist(),
                    payload=(self.payloads[start + i] if self.payloads else {"row": start + i}),
                )
                for i, vec in enumerate(batch)
            ]
            self.client.upsert(self.collection, points=points, wait=True)
        self._count = len(vectors)

    def save(self) -> None:
        """Qdrant persists on write; nothing else to do."""

    @property
    def count(self) -> int:
        return self._count

    def search(
        self,
        queries: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        query_filter: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        models = self.models
        if queries.ndim == 1:
            queries = queries[None, :]
        k = max(1, k)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        if allowed is not None and len(allowed) == 0:
            return scores, rows
        flt = query_filter
        if flt is None and allowed is not None:
            flt = models.Filter(must=[models.HasIdCondition(has_id=[int(r) for r in allowed])])
        for qi, query in enumerate(queries):
            result = self.client.query_points(
                self.collection,
                query=query.tolist(),
                limit=k,
                query_filter=flt,
                with_payload=False,
            )
            for j, point in enumerate(result.points):
                scores[qi, j] = point.score
                rows[qi, j] = int(point.id)
        return scores, rows

    def params(self) -> dict[str, Any]:
        return {
            "backend": "qdrant",
            "distance": "dot",
            "collection": self.collection,
            "mode": "server" if self.url else "local",
        }

    def close(self) -> None:
        if self.url:
            self.client.close()
        else:
            release_local(self.folder)


def switch_alias(url: str, api_key: str | None, name: str, version: int) -> None:
    """Point alias ``tandem-<name>`` at version ``version``'s collection in one request."""
    from qdrant_client import QdrantClient, models

    alias = f"tandem-{name}"
    client = QdrantClient(url=url, api_key=api_key, timeout=30)
    try:
        ops: list[Any] = []
        existing = {a.alias_name for a in client.get_aliases().aliases}
        if alias in existing:
            ops.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        ops.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(
                    collection_name=f"tandem-{name}-v{version}", alias_name=alias
                )
            )
        )
        client.update_collection_aliases(change_aliases_operations=ops)
    finally:
        client.close()
