"""The Qdrant store without a model: filter push-down, server mode, aliases and pruning.

"Server mode" runs against qdrant-client's in-memory Qdrant registered for a URL (no server
binary can be installed here); the code paths are those of a real server.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient

from stores.errors import StoreUnavailable
from stores.qdrant_store import (
    QdrantStore,
    close_clients,
    collection_name,
    drop_index,
    filter_fields_of,
    filter_key,
    filter_text,
    index_collections,
    register_client,
    switch_alias,
)

URL = "http://qdrant.test:6333"
DIM = 16


@pytest.fixture
def server() -> Iterator[QdrantClient]:
    client = QdrantClient(":memory:")
    register_client(URL, client)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # local Qdrant: "payload indexes have no effect"
        yield client
    close_clients()


def payloads(n: int) -> list[dict[str, Any]]:
    return [
        {
            "row": i,
            "doc_id": f"d{i // 2}",
            "source": f"s{i % 4}.md",
            "topic": ["science", "food", "history"][i % 3],
            "year": 2000 + i % 5,
            "draft": i % 2 == 0,
            "score": i / 10,
            "a.b": "dotted" if i % 2 else "plain",
        }
        for i in range(n)
    ]


def vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def matching(rows: list[dict[str, Any]], filters: dict[str, list[str]]) -> np.ndarray:
    keep = [
        p["row"]
        for p in rows
        if all(filter_text(p.get(k)) in values for k, values in filters.items())
    ]
    return np.array(keep, dtype=np.int64)


def test_filter_keys_are_flat_and_distinct() -> None:
    keys = {f: filter_key(f) for f in ["topic", "a.b", "a_2eb", "a__b", "a_b", "x-y", "über"]}
    assert len(set(keys.values())) == len(keys)
    assert all(k.startswith("tf_") and "." not in k for k in keys.values())
    assert filter_key("topic") == "tf_topic"


def test_filter_text_matches_the_chunk_store() -> None:
    assert [filter_text(v) for v in (True, False, 2020, "x")] == ["true", "false", "2020", "x"]
    assert filter_text(1.5) is None and filter_text(None) is None and filter_text([1]) is None


def test_filter_fields_leave_out_columns_and_floats() -> None:
    assert filter_fields_of(payloads(6)) == ["a.b", "draft", "topic", "year"]


def test_local_store_pushes_filters_down(tmp_path: Path) -> None:
    rows, vecs = payloads(40), vectors(40)
    store = QdrantStore(tmp_path, DIM, create=True, payloads=rows)
    store.build(vecs)
    store.save()
    store.close()
    store = QdrantStore(tmp_path, DIM)
    try:
        assert store.count == 40 and store.params()["mode"] == "local"
        assert store.supports_filters({"topic": ["food"], "year": ["2001"]})
        assert not store.supports_filters({"source": ["s1.md"]})
        assert not store.supports_filters({"score": ["0.5"]})
        assert not store.supports_filters({})
        queries = vectors(5, seed=7)
        for flt in (
            {"topic": ["food"]},
            {"topic": ["food", "history"], "draft": ["true"]},
            {"year": ["2003"]},
            {"a.b": ["dotted"]},
        ):
            pushed = store.search(queries, 8, filters=flt)
            by_rows = store.search(queries, 8, allowed=matching(rows, flt))
            np.testing.assert_array_equal(pushed[1], by_rows[1])
            np.testing.assert_allclose(pushed[0], by_rows[0], rtol=1e-6)
            allowed = set(matching(rows, flt).tolist())
            assert {int(r) for r in pushed[1].ravel() if r >= 0} <= allowed
        # exact inner product: the same top-k as numpy
        _, got = store.search(queries, 5)
        expected = np.argsort(-(queries @ vecs.T), axis=1)[:, :5]
        np.testing.assert_array_equal(got, expected)
        none = store.search(queries, 3, filters={"topic": ["nothing"]})
        assert (none[1] == -1).all()
    finally:
        store.close()


def test_server_mode_collections_alias_and_pruning(server: QdrantClient, tmp_path: Path) -> None:
    for version in (1, 2, 3):
        folder = tmp_path / f"v{version}"
        folder.mkdir()
        store = QdrantStore(
            folder,
            DIM,
            create=True,
            url=URL,
            collection=collection_name("docs", version),
            payloads=payloads(10),
        )
        store.build(vectors(10, seed=version))
        store.save()
        assert store.params()["mode"] == "server"
        store.close()
        assert switch_alias(URL, None, "docs", version)
        aliases = {a.alias_name: a.collection_name for a in server.get_aliases().aliases}
        assert aliases == {"tandem-docs": f"tandem-docs-v{version}"}
    # v1 is pruned like its folder would be (two versions kept)
    assert index_collections(server, "docs") == {2: "tandem-docs-v2", 3: "tandem-docs-v3"}
    # a server version is opened with the URL its caller passes (the app's qdrant_url)
    reopened = QdrantStore(tmp_path / "v3", DIM, url=URL, collection=collection_name("docs", 3))
    assert reopened.count == 10 and reopened.supports_filters({"topic": ["food"]})
    reopened.close()
    with pytest.raises(StoreUnavailable, match="lives on a Qdrant server"):
        QdrantStore(tmp_path / "v3", DIM, collection=collection_name("docs", 3))
    # a local-mode index stays local even when a server is configured
    local = tmp_path / "local"
    local.mkdir()
    store = QdrantStore(local, DIM, create=True, payloads=payloads(4))
    store.build(vectors(4))
    store.save()
    store.close()
    store = QdrantStore(local, DIM, url=URL)
    assert store.url is None and store.count == 4
    store.close()
    # removing the index drops its collections and alias; another index is untouched
    other = QdrantStore(tmp_path, DIM, create=True, url=URL, collection="tandem-docs-v1-v1")
    other.build(vectors(2))
    assert sorted(drop_index(URL, None, "docs")) == ["tandem-docs-v2", "tandem-docs-v3"]
    assert [c.name for c in server.get_collections().collections] == ["tandem-docs-v1-v1"]
    assert server.get_aliases().aliases == []


def test_a_failed_alias_switch_does_not_fail_the_build(server: QdrantClient) -> None:
    assert switch_alias(URL, None, "ghost", 7) is False  # no such collection: logged


def test_shards_and_replicas_are_passed_to_a_new_server_collection(
    server: QdrantClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[dict[str, Any]] = []
    create = server.create_collection

    def spy(name: str, **kwargs: Any) -> Any:
        created.append(kwargs)
        return create(name, **kwargs)

    monkeypatch.setattr(server, "create_collection", spy)
    store = QdrantStore(
        tmp_path,
        DIM,
        create=True,
        url=URL,
        collection=collection_name("docs", 1),
        shard_number=3,
        replication_factor=2,
    )
    store.close()
    assert (created[-1]["shard_number"], created[-1]["replication_factor"]) == (3, 2)
    store = QdrantStore(tmp_path, DIM, create=True, url=URL, collection=collection_name("docs", 2))
    store.close()
    assert "shard_number" not in created[-1] and "replication_factor" not in created[-1]


def test_local_clients_close_quietly_at_exit(tmp_path: Path) -> None:
    # A local client left open until interpreter shutdown made qdrant-client print an ignored
    # ImportError traceback at the end of every CLI run and of `make test`.
    import subprocess
    import sys

    code = (
        "from pathlib import Path; from stores.qdrant_store import _local_client; "
        f"_local_client(Path({str(tmp_path)!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Exception ignored" not in done.stderr
    assert "Traceback" not in done.stderr
