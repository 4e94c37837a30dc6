"""How many API turns run at once, and how long one may wait for its turn.

Contract: ``Capacity(slots, queue_size, wait)``. ``slot()`` is a context manager that holds one
of ``slots`` reply slots (the ``concurrency`` setting, as the browser's queue) for one turn. A
request finding them all busy waits, with at most ``queue_size`` others, up to ``wait`` seconds;
past either bound it gets ``Busy`` (the endpoint's 429, with ``retry_after`` seconds), so a
request beyond capacity never hangs.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from typing import Iterator

from assistant.errors import ConfidantError


class Busy(ConfidantError):
    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Capacity:
    def __init__(self, slots: int, queue_size: int, wait: float):
        self._slots = threading.BoundedSemaphore(slots)
        self.queue_size, self.wait = queue_size, wait
        self._waiting = 0
        self._lock = threading.Lock()

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(min(self.wait, 60.0)))

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            self._wait_for_slot()
        try:
            yield
        finally:
            self._slots.release()

    def _wait_for_slot(self) -> None:
        with self._lock:
            if self._waiting >= self.queue_size:
                raise Busy("Confidant is busy: every reply slot is taken and the queue is full. Try again shortly.",
                           self.retry_after)
            self._waiting += 1
        try:
            if not self._slots.acquire(timeout=self.wait):
                raise Busy(f"Confidant is busy: no reply slot became free within {self.wait:g} s. Try again shortly.",
                           self.retry_after)
        finally:
            with self._lock:
                self._waiting -= 1
