"""smallmodels.cache.ModelCache: one instance per key and process, built once under threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from smallmodels.cache import ModelCache


class Factory:
    """Counts its calls; each call returns a new object naming its key."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, *key: object) -> dict[str, object]:
        with self._lock:
            self.calls.append(key)
        time.sleep(self.delay)  # a slow load: other threads arrive while it runs
        return {"key": key}


def test_each_key_is_built_once_and_shared() -> None:
    factory = Factory()
    cache: ModelCache[dict[str, object]] = ModelCache(factory)
    first = cache.get("minilm", "cpu")
    assert first == {"key": ("minilm", "cpu")}
    assert cache.get("minilm", "cpu") is first
    other = cache.get("minilm", "cuda")  # every part of the key counts
    assert other is not first and other == {"key": ("minilm", "cuda")}
    assert factory.calls == [("minilm", "cpu"), ("minilm", "cuda")]
    assert len(cache) == 2


def test_concurrent_gets_of_one_key_build_it_once() -> None:
    factory = Factory(delay=0.05)
    cache: ModelCache[dict[str, object]] = ModelCache(factory)
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda _: cache.get("reader"), range(16)))
    assert factory.calls == [("reader",)]
    assert all(g is got[0] for g in got)


def test_clear_forgets_every_instance() -> None:
    factory = Factory()
    cache: ModelCache[dict[str, object]] = ModelCache(factory)
    before = cache.get("a")
    cache.get("b")
    cache.clear()
    assert len(cache) == 0
    after = cache.get("a")  # loaded again: a retrained folder is seen
    assert after == before and after is not before
    assert factory.calls == [("a",), ("b",), ("a",)]


def test_errors_are_not_cached() -> None:
    attempts: list[str] = []

    def flaky(spec: str) -> str:
        attempts.append(spec)
        if len(attempts) == 1:
            raise OSError("model folder not there yet")
        return f"model {spec}"

    cache: ModelCache[str] = ModelCache(flaky)
    with pytest.raises(OSError, match="not there yet"):
        cache.get("m")
    assert len(cache) == 0
    assert cache.get("m") == "model m"  # the next get tries again
    assert cache.get("m") == "model m" and attempts == ["m", "m"]
