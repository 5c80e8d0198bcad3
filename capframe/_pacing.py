"""An evenly spaced rate limiter that holds across event loops and threads.

A budget of N requests a minute is spent as one request every 60/N seconds: never a burst, so no
window of any length holds more than its share. Slots are reserved under a thread lock, then
awaited with ``asyncio.sleep``, so pulls running in different loops (a notebook's worker thread,
a script) share one budget per :class:`~capframe.Client`.

A 429 says the API key is over its limit (another process may be spending the same budget): every
later request waits out its ``Retry-After``, and the pace halves, then recovers linearly to the
budget over a minute, the window the budget is counted in. The pace only ever slows below the
budget, so no 60 s window holds more than N requests.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

__all__ = ["Pacer"]


# Slots are 1% further apart than the budget: a send delayed past its slot (a busy event loop)
# must not push a window over the limit, and 99% of the budget is still spent.
_HEADROOM = 1.01
_SLOWDOWN = 0.5  # the pace after a 429, as a share of the pace before it
_SLOWEST = 1 / 16  # the pace never falls below this share of the budget: it recovers from there
_RECOVERY = 60.0  # s after the pause: back to the full budget
_SAME_SIGNAL = 1.0  # s: 429s this close together are one signal


class Pacer:
    def __init__(self, requests_per_minute: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 60.0 * _HEADROOM / requests_per_minute if requests_per_minute else 0.0
        self._clock = clock
        self._next = 0.0
        self._paused_until = -_RECOVERY
        self._slowed_to = 1.0  # the share of the budget right after the last 429
        self._slowed_at = -_RECOVERY
        self._lock = threading.Lock()

    def share(self) -> float:
        """The share of the budget the pace is at now: 1.0 unless a 429 slowed it."""
        with self._lock:
            return self._share(self._clock())

    def _share(self, now: float) -> float:
        recovered = min(max((now - self._paused_until) / _RECOVERY, 0.0), 1.0)
        return self._slowed_to + (1.0 - self._slowed_to) * recovered

    def rate(self) -> float | None:
        """Requests a second at the current pace; None when unpaced."""
        return self.share() / self.interval if self.interval else None

    def reserve(self) -> float:
        """The next request's slot, on the clock: the one after it is a pace's interval later."""
        with self._lock:
            slot = max(self._clock(), self._next)
            self._next = slot + (self.interval / self._share(slot) if self.interval else 0.0)
            return slot

    async def wait(self) -> None:
        """Wait for this request's slot."""
        slot = self.reserve()
        # Loop: a timer may fire a little early, and early is over budget.
        while (delay := slot - self._clock()) > 0:
            await asyncio.sleep(delay)

    def pause(self, retry_after: float | None) -> None:
        """A 429: hold every later request back for ``retry_after`` seconds and slow the pace.

        The 429s of requests already in flight when the first arrived are one signal: the pace is
        slowed once per pause (and at most once a second, for 429s without a ``Retry-After``)."""
        with self._lock:
            now = self._clock()
            if now >= max(self._paused_until, self._slowed_at + _SAME_SIGNAL):
                self._slowed_to = max(_SLOWEST, self._share(now) * _SLOWDOWN)
                self._slowed_at = now
            self._paused_until = max(self._paused_until, now + (retry_after or 0.0))
            self._next = max(self._next, self._paused_until)
