"""The same corpus in FAISS (exact) and in Qdrant (local and "server" mode) gives the same hits.

Metric: top-10 overlap ``|A ∩ B| / |A|`` per query, averaged over queries, retrieval modes and
filters (pushed down to Qdrant, or sent as row ids when they cannot be); it must be at least
0.95. "Server mode" is qdrant-client's in-memory Qdrant registered for a URL: the build makes
collection ``tandem-<name>-v<N>``, payload indexes and the alias as with a real server.
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from qdrant_client import QdrantClient

from indexers.builder import BuildOptions, run_build
from retrievers.retriever import Retriever
from stores.qdrant_store import close_clients, register_client, server_client

pytestmark = pytest.mark.filterwarnings("ignore:Local mode performs exact:UserWarning")

URL = "http://qdrant.congruence:6333"
TOPICS = {
    "science": ["volcano", "glacier", "comet", "magnet", "enzyme", "neutron"],
    "food": ["sourdough", "espresso", "kimchi", "risotto", "chocolate", "cheddar"],
    "history": ["aqueduct", "pharaoh", "printing press", "samurai", "viking ship", "abbey"],
    "sport": ["marathon", "chess opening", "slalom", "cricket bat", "surfboard", "rowing"],
}
ACTIONS = [
    "was studied closely by a small team in the northern valley",
    "changed how people in the old harbour town lived and worked",
    "appears in a famous museum collection with a long description",
]
QUERIES = [
    "how does a volcano erupt",
    "ice moving down a valley",
    "coffee brewed under pressure",
    "fermented cabbage",
    "ancient water channels in Rome",
    "Egyptian kings",
    "Japanese warriors",
    "long distance running race",
    "skiing between gates",
    "museum collection",
    "harbour town life",
    "research team in the north",
    "a board game strategy",
    "bread made with wild yeast",
    "particles in an atom",
    "boats of the Norse",
]
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"topic": "science"},
    {"topic": ["food", "history"]},
    {"featured": True},
    {"year": 2021},
    {"topic": "sport", "featured": False},
    {"source": "docs.jsonl"},  # a column: sent to Qdrant as row ids
    {"rating": 2.5},  # a float field: sent as row ids
]


def documents() -> list[dict[str, Any]]:
    docs = []
    for i, ((topic, things), action) in enumerate(
        itertools.product(
            [(t, th) for t, ths in TOPICS.items() for th in ths],
            ACTIONS,
        )
    ):
        docs.append(
            {
                "text": f"The {things} {action}. Notes on the {things}, entry {i}.",
                "topic": topic,
                "year": 2019 + i % 4,
                "featured": i % 3 == 0,
                "rating": (i % 5) / 2,
            }
        )
    return docs


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Retriever]]:
    root = tmp_path_factory.mktemp("congruence")
    corpus = root / "corpus"
    corpus.mkdir()
    with (corpus / "docs.jsonl").open("w") as fh:
        for doc in documents():
            fh.write(json.dumps(doc) + "\n")
    data = root / "data"
    server = QdrantClient(":memory:")
    register_client(URL, server)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # in-memory Qdrant: payload indexes, search params
        run_build(data, "faiss", [corpus], options=BuildOptions(store="faiss", dedup=False))
        run_build(data, "local", [corpus], options=BuildOptions(store="qdrant", dedup=False))
        run_build(
            data,
            "server",
            [corpus],
            options=BuildOptions(store="qdrant", qdrant_url=URL, dedup=False),
        )
        f = Retriever(data, "faiss")
        out = {
            "faiss": f,
            "local": Retriever(data, "local", embedder=f.embedder),
            "server": Retriever(data, "server", embedder=f.embedder, store_options={"url": URL}),
        }
        yield out
    for r in out.values():
        r.close()
    close_clients()


def overlap(a: list[str], b: list[str]) -> float:
    return len(set(a) & set(b)) / max(1, len(a), len(b)) if (a or b) else 1.0


def test_the_stores_are_what_they_claim(built: dict[str, Retriever]) -> None:
    assert built["faiss"].snapshot.manifest["store"]["kind"] == "flat"  # exact
    local, server = built["local"].snapshot, built["server"].snapshot
    assert local.manifest["store"]["mode"] == "local"
    assert server.manifest["store"]["mode"] == "server"
    assert server.manifest["store"]["collection"] == "tandem-server-v1"
    assert server.vectors.count == built["faiss"].snapshot.vectors.count == 72
    for snap in (local, server):
        pushable = snap.vectors.supports_filters  # type: ignore[attr-defined]
        assert pushable({"topic": ["science"], "featured": ["true"], "year": ["2021"]})
        assert not pushable({"source": ["docs.jsonl"]}) and not pushable({"rating": ["2.5"]})
    got = {a.alias_name: a.collection_name for a in server_client(URL).get_aliases().aliases}
    assert got == {"tandem-server": "tandem-server-v1"}


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_faiss_and_qdrant_top10_overlap(
    built: dict[str, Retriever], mode: str, record_property: Any
) -> None:
    scores: dict[str, list[float]] = {"local": [], "server": []}
    vectors = built["faiss"].embed_queries(QUERIES)  # one model call for every search
    for flt in FILTERS:
        expected = built["faiss"].search_many(QUERIES, 10, mode, flt, query_vectors=vectors)
        for name in ("local", "server"):
            results = built[name].search_many(QUERIES, 10, mode, flt, query_vectors=vectors)
            for want, got in zip(expected, results, strict=True):
                ids = [h.chunk_id for h in want.hits]
                scores[name].append(overlap(ids, [h.chunk_id for h in got.hits]))
                for h in got.hits:  # every hit satisfies the filter
                    for key, value in (flt or {}).items():
                        values = value if isinstance(value, list) else [value]
                        found = h.source if key == "source" else h.metadata[key]
                        assert found in values, (flt, h.metadata)
    for name, values in scores.items():
        mean = sum(values) / len(values)
        assert len(values) == len(FILTERS) * len(QUERIES)
        record_property(f"overlap_{name}", round(mean, 4))
        assert mean >= 0.95, (name, mode, mean, min(values))


def test_dense_scores_agree(built: dict[str, Retriever]) -> None:
    vectors = built["faiss"].embed_queries(QUERIES)
    a = built["faiss"].search_many(QUERIES, 5, "dense", query_vectors=vectors)
    b = built["server"].search_many(QUERIES, 5, "dense", query_vectors=vectors)
    for x, y in zip(a, b, strict=True):
        assert sorted(round(h.score, 4) for h in x.hits) == sorted(
            round(h.score, 4) for h in y.hits
        )
