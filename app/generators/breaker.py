"""A circuit breaker: stop calling an LLM that keeps failing, probe it again later.

* **closed**: calls go through; ``failures`` consecutive failures open the circuit.
* **open**: calls are refused (:meth:`CircuitBreaker.allow` is False) for ``reset_after_s``
  (doubling after each failed probe, up to ``max_reset_s``).
* **half-open**: once the pause is over one caller probes; the others are still refused until
  it reports back. A success closes the circuit, a failure opens it again.

Callers report every allowed call: :meth:`success`, :meth:`failure`, or :meth:`abandon` when
the call ended without a verdict (the client went away). Whoever watches the LLM itself (the
supervisor of the llama.cpp child) may :meth:`trip` the circuit when it dies and
:meth:`probe_now` when it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

log = logging.getLogger("tandem.llm")

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        failures: int = 3,
        reset_after_s: float = 30.0,
        max_reset_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "llm",
    ) -> None:
        self.threshold = max(1, failures)
        self.reset_after_s = max(0.0, reset_after_s)
        self.max_reset_s = max(self.reset_after_s, max_reset_s)
        self.clock = clock
        self.name = name
        self.failures = 0
        self.opened = 0
        """Times the circuit has opened since it was last closed."""
        self._open_until: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        if self._open_until is None:
            return "closed"
        if self._probing or self.clock() >= self._open_until:
            return "half_open"
        return "open"

    @property
    def retry_in_s(self) -> float:
        """Seconds until the next probe is allowed (0 when closed or due)."""
        if self._open_until is None:
            return 0.0
        return max(0.0, self._open_until - self.clock())

    def allow(self) -> bool:
        """True when a call may go to the LLM now (a half-open circuit lets one probe through)."""
        if self._open_until is None:
            return True
        if self._probing or self.clock() < self._open_until:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        if self._open_until is not None:
            log.info("%s answers again: circuit closed", self.name)
        self.failures = 0
        self.opened = 0
        self._open_until = None
        self._probing = False

    def failure(self) -> None:
        self.failures += 1
        if self._probing or (self._open_until is None and self.failures >= self.threshold):
            pause = min(self.max_reset_s, self.reset_after_s * 2**self.opened)
            self.opened += 1
            self._open_until = self.clock() + pause
            log.warning(
                "%s failed %d times in a row: circuit open, next try in %.0fs",
                self.name,
                self.failures,
                pause,
            )
        self._probing = False

    def trip(self, why: str = "") -> None:
        """Open the circuit now (the LLM is known to be down, e.g. its process died)."""
        pause = min(self.max_reset_s, self.reset_after_s * 2**self.opened)
        self.opened += 1
        self.failures = max(self.failures, self.threshold)
        self._open_until = self.clock() + pause
        self._probing = False
        log.warning("%s is down%s: circuit open", self.name, f" ({why})" if why else "")

    def probe_now(self) -> None:
        """Let the next call probe an open circuit at once (the LLM is known to be back)."""
        if self._open_until is not None and not self._probing:
            self._open_until = min(self._open_until, self.clock())

    def abandon(self) -> None:
        """An allowed call ended without success or failure: let another caller probe."""
        self._probing = False
