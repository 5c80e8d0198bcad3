"""When to ask again, and how long to wait first: pure arithmetic, no I/O.

Waits grow exponentially with jitter, or follow the ``Retry-After`` the server sent (seconds or an
HTTP date, of any size), capped by ``Client.max_retry_after``.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["SLOW_DOWN", "UNDOCUMENTED_TYPES", "RetriesExhausted", "RetryPolicy", "advice", "retry_after"]

MAX_BACKOFF = 30.0  # seconds: the longest wait capframe chooses by itself


class RetriesExhausted(Exception):
    """Internal: every attempt failed; the caller turns it into a FetchError naming its ids.

    ``lasting``: asking again gets the same answer (values of undocumented types, an answer past the
    size cap), so it was not asked again; ``remedy`` then says what to do instead.
    """

    def __init__(self, reason: str, status: int | None, *, lasting: bool = False, remedy: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.lasting = lasting or remedy is not None
        self.remedy = remedy or (UNDOCUMENTED_TYPES if self.lasting else None)


UNDOCUMENTED_TYPES = (
    "The API answered with values of types its documentation does not give (named above): asking again "
    "will not help. Report it to Capillary with the X-Cap-Requestid that capframe logs at DEBUG."
)
SLOW_DOWN = "The API is failing or limiting this client: try again later, or lower concurrency and requests_per_minute."


def advice(failures: Iterable[RetriesExhausted], transient: str = SLOW_DOWN) -> str:
    """What a FetchError tells the user to do: ``transient`` unless every failure will last."""
    failures = list(failures)
    if failures and all(f.lasting for f in failures):
        return " ".join(dict.fromkeys(f.remedy for f in failures if f.remedy))
    return transient


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to ask again and how long to wait before each time."""

    max_retries: int
    backoff: float
    max_retry_after: float

    def wait(self, attempt: int, after: float | None = None, rng: Callable[[], float] = random.random) -> float | None:
        """Seconds to wait before retry ``attempt`` (1 for the first), or None: no retry left.

        ``after``: what the server asked for (Retry-After), honoured up to ``max_retry_after``.
        """
        if attempt > self.max_retries:
            return None
        if after is not None:
            return min(after, self.max_retry_after)
        growth = 2.0 ** min(attempt - 1, 64)  # beyond 2**64 the cap has long won; a huge int would overflow
        return min(self.backoff * growth, MAX_BACKOFF) * (0.5 + 0.5 * rng())


def retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """A ``Retry-After`` header -> seconds to wait (perhaps inf), or None if it is not one."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return None if math.isnan(seconds) else max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: the year 99999999999
        return None
    return max(when - now(), 0.0)
