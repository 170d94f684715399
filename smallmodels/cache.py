"""The one per-process model cache: each model is loaded once per key and shared.

Loading a transformer costs seconds and hundreds of MB; the service, the CLI and the trainers
ask for the same models many times. :class:`ModelCache` holds one instance per key (spec,
device, ...), builds it under a lock so two threads never load the same model twice, and can
be cleared (tests, a model folder that was retrained).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class ModelCache(Generic[T]):
    """Instances of one model kind by key, built once per process by ``factory(*key)``."""

    def __init__(self, factory: Callable[..., T]) -> None:
        self._factory = factory
        self._items: dict[Hashable, T] = {}
        self._lock = threading.Lock()

    def get(self, *key: Hashable) -> T:
        """The instance for ``key``, built by ``factory(*key)`` on first use (errors propagate
        and nothing is cached)."""
        with self._lock:
            if key not in self._items:
                self._items[key] = self._factory(*key)
            return self._items[key]

    def clear(self) -> None:
        """Forget every instance (the next :meth:`get` loads again)."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
