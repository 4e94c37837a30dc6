"""A small thread-safe circuit breaker for the cloud backend.

Contract:
- ``acquire()`` returns when a call may go ahead and raises ``CloudUnavailable`` when it may not:
  the breaker is *open* (``failures`` consecutive failures were recorded less than ``cooldown``
  seconds ago), or it is *half-open* and another caller already holds the single trial call.
- Every successful ``acquire()`` must be followed by exactly one of ``success()``, ``failure()``
  or ``release()`` (the call ended without a verdict, e.g. the consumer stopped reading).
- A success closes the breaker and resets the count; a failure of the half-open trial re-opens it
  for another full cool-down.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from assistant.errors import CloudUnavailable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic):
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        return OPEN if self._clock() - self._opened_at < self.cooldown else HALF_OPEN

    def acquire(self) -> None:
        with self._lock:
            state = self._state()
            if state == CLOSED:
                return
            if state == HALF_OPEN and not self._trial_running:
                self._trial_running = True  # exactly one caller probes whether the cloud is back
                return
            left = max(0.0, self.cooldown - (self._clock() - self._opened_at))
            raise CloudUnavailable(
                f"the cloud model is paused after {self._count} failures in a row; "
                f"it will be tried again in {left:.0f} s"
            )

    def success(self) -> None:
        with self._lock:
            self._count = 0
            self._opened_at = None
            self._trial_running = False

    def failure(self) -> None:
        with self._lock:
            self._count += 1
            if self._trial_running or self._count >= self.failures:
                self._opened_at = self._clock()
            self._trial_running = False

    def release(self) -> None:
        with self._lock:
            self._trial_running = False


_shared: dict[tuple, CircuitBreaker] = {}
_shared_lock = threading.Lock()


def shared_breaker(key: tuple, failures: int, cooldown: float) -> CircuitBreaker:
    """One breaker per endpoint per process, so every turn sees the same failure history."""
    with _shared_lock:
        if key not in _shared:
            _shared[key] = CircuitBreaker(failures, cooldown)
        return _shared[key]
