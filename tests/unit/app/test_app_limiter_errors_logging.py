"""The model-call limiter, the error mapping and the JSON log formatter."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import pytest
from litestar.exceptions import (
    ClientException,
    NotFoundException,
    SerializationException,
    ValidationException,
)

from app.errors import (
    PayloadTooLarge,
    RateLimited,
    ServiceBusy,
    Unauthorized,
    describe,
    error_body,
)
from app.limiter import EmbeddingBatcher, ModelLimiter
from app.logging import REQUEST_ID, JSONFormatter
from core.errors import ModelNotFound, UsageError
from retrievers.errors import RerankerUnavailable
from stores.errors import EmbedderMismatch, IndexBusy, IndexNotFound, StoreUnavailable


async def test_limiter_bounds_concurrency_and_queue():
    limiter = ModelLimiter(threads=2, max_waiting=1)
    gate = threading.Event()
    running = 0
    peak = 0
    lock = threading.Lock()

    def work() -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(5)
        with lock:
            running -= 1
        return threading.get_ident()

    tasks = [asyncio.create_task(limiter.run(work)) for _ in range(3)]
    await asyncio.sleep(0.2)
    assert limiter.busy == 2 and limiter.waiting == 1
    with pytest.raises(ServiceBusy) as info:
        await limiter.run(work)
    assert info.value.status == 503 and info.value.retry_after == 1
    gate.set()
    idents = await asyncio.gather(*tasks)
    assert peak == 2
    assert threading.get_ident() not in idents  # never on the event loop's thread
    assert limiter.busy == 0 and limiter.waiting == 0


async def test_limiter_passes_results_and_errors():
    limiter = ModelLimiter(1, 0)
    assert await limiter.run(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(ZeroDivisionError):
        await limiter.run(lambda: 1 / 0)
    out, ms = await limiter.timed(sum, [1, 2])
    assert out == 3 and ms >= 0


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (UsageError("bad"), 400, "bad_request"),
        (Unauthorized("no key"), 401, "unauthorized"),
        (IndexNotFound("nope"), 404, "index_not_found"),
        (RerankerUnavailable("off"), 409, "reranker_unavailable"),
        (EmbedderMismatch("other model"), 409, "embedder_mismatch"),
        (IndexBusy("building"), 409, "index_busy"),
        (PayloadTooLarge("big"), 413, "payload_too_large"),
        (RateLimited("slow down", retry_after=7), 429, "rate_limited"),
        (ServiceBusy("busy"), 503, "busy"),
        (StoreUnavailable("qdrant down"), 503, "store_unavailable"),
        (ModelNotFound("no model"), 503, "model_not_found"),
        (NotFoundException(), 404, "not_found"),
        (
            ValidationException("bad", extra=[{"key": "top_k", "message": "too big"}]),
            422,
            "validation_error",
        ),
        (
            ValidationException("bad", extra=[{"key": "data", "message": "'data'"}]),
            400,
            "invalid_json",
        ),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 400, "invalid_json"),
        (RuntimeError("secret detail"), 500, "internal_error"),
    ],
)
def test_describe_maps_every_error(exc: Exception, status: int, code: str):
    got_status, got_code, message, headers = describe(exc)
    assert (got_status, got_code) == (status, code)
    assert message
    if status == 500:
        assert "secret" not in message
    if status == 429:
        assert headers == {"Retry-After": "7"}
    if status == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")


def test_describe_malformed_json():
    try:
        try:
            raise SerializationException("Input data was truncated")
        except SerializationException as inner:
            raise ClientException("Input data was truncated") from inner
    except ClientException as exc:
        status, code, message, _ = describe(exc)
    assert (status, code) == (400, "invalid_json") and "truncated" in message
    assert error_body("x", "y") == {"error": {"code": "x", "message": "y"}}


def test_json_formatter_adds_request_id_and_extras():
    record = logging.makeLogRecord(
        {
            "name": "tandem.access",
            "levelname": "INFO",
            "msg": "request %s",
            "args": ("ok",),
            "status": 200,
        }
    )
    token = REQUEST_ID.set("rid-1")
    try:
        line = JSONFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)
    out: dict[str, Any] = json.loads(line)
    assert out["msg"] == "request ok" and out["request_id"] == "rid-1"
    assert out["status"] == 200 and out["level"] == "info" and out["logger"] == "tandem.access"
    assert "\n" not in line


class SlowLengthEncoder:
    """Encodes a text as [len(text)], slowly, recording each call's batch."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> Any:
        import time

        import numpy as np

        self.calls.append(list(texts))
        time.sleep(0.05)
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)


async def test_batcher_batches_concurrent_queries_and_not_a_lone_one():
    encoder = SlowLengthEncoder()
    batcher = EmbeddingBatcher(ModelLimiter(2, 10), max_batch=4)
    assert float((await batcher.embed(encoder, "k", "abc"))[0]) == 3.0
    assert encoder.calls == [["abc"]]
    texts = ["x" * n for n in range(1, 10)]
    vectors = await asyncio.gather(*(batcher.embed(encoder, "k", t) for t in texts))
    assert [float(v[0]) for v in vectors] == [float(len(t)) for t in texts]
    sizes = [len(c) for c in encoder.calls[1:]]
    assert sum(sizes) == 9 and max(sizes) <= 4 and len(sizes) < 9


async def test_batcher_passes_errors_to_every_waiter():
    class Broken:
        def encode(self, texts: list[str]) -> Any:
            raise ValueError("boom")

    batcher = EmbeddingBatcher(ModelLimiter(1, 10))
    results = await asyncio.gather(
        *(batcher.embed(Broken(), "b", "x") for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    encoder = SlowLengthEncoder()
    assert float((await batcher.embed(encoder, "b", "ok"))[0]) == 2.0  # recovers


async def test_batched_real_embeddings_match_single_ones():
    import numpy as np

    from smallmodels.embedder import load_embedder

    embedder = load_embedder(None)
    batcher = EmbeddingBatcher(ModelLimiter(2, 10))
    queries = ["how does lightning form", "sourdough starter", "chess knight", "roman water"]
    together = await asyncio.gather(*(batcher.embed(embedder, "m", q) for q in queries))
    alone = embedder.encode(queries)
    assert np.allclose(np.stack(together), alone, atol=1e-5)
