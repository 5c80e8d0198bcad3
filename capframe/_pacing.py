"""An evenly spaced rate limiter that holds across event loops and threads.

A budget of N requests a minute is spent as one request every 60/N seconds: never a burst, so no
window of any length holds more than its share. Slots are reserved under a thread lock, then
awaited with ``asyncio.sleep``, so pulls running in different loops (a notebook's worker thread,
a script) share one budget per :class:`~capframe.Client`.
"""

from __future__ import annotations

import asyncio
import threading
import time

__all__ = ["Pacer"]


# Slots are 1% further apart than the budget: a send delayed past its slot (a busy event loop)
# must not push a window over the limit, and 99% of the budget is still spent.
_HEADROOM = 1.01


class Pacer:
    def __init__(self, requests_per_minute: float | None) -> None:
        self.interval = 60.0 * _HEADROOM / requests_per_minute if requests_per_minute else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    async def wait(self) -> None:
        """Wait for this request's slot."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        # Loop: a timer may fire a little early, and early is over budget.
        while (delay := slot - time.monotonic()) > 0:
            await asyncio.sleep(delay)

    def pause(self, seconds: float) -> None:
        """Hold every later request back: a 429 says the whole API key is over its limit."""
        with self._lock:
            self._next = max(self._next, time.monotonic() + seconds)
