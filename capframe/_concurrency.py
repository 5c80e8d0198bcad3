"""How many requests a pull keeps in flight: enough that the pacer, not the concurrency, is the limit.

Little's law: requests in flight = rate x latency. At 1,000 requests a minute a fixed 8 in flight
spends the whole budget only while a request takes under half a second; a bulk request of 100 full
profiles can take seconds. So the limit follows latency::

    target = ceil(rate x p90 latency x 1.25) + 1, between 1 and max_concurrency

``rate`` is the pacer's current pace and the p90 is over the last requests answered together with the
ages of those still in flight: an outstanding request's age is a lower bound on its latency, so before
the first answer (or when the API slows down) the limit grows as requests wait, instead of stalling
until they return. A cap below the target (the ceiling) holds it back when the server degrades:

- 5xx and timeouts cut the ceiling to 0.7 of the limit when they are a tenth of the requests that
  ended since the last cut (of the last limit's worth, 10 at least): a lone 5xx among many answers
  is not the server failing under its load (cutting on each would hold a slow API with a few random
  errors to a handful in flight), but one before any answer is. Failures of requests sent before
  the last cut are old news: a burst of them is one signal (TCP's once-per-round cut);
- server queueing: when the median latency of a round of answers is well above (1.3x) its baseline
  and concurrency grew (1.2x at least) by enough to explain it, the ceiling drops to the concurrency
  that the baseline latency would serve at the throughput seen now (concurrency x baseline /
  latency): an estimate of the server's capacity, never below the concurrency the baseline was
  measured at (a busy client's own jitter at 2 in flight must not cut it to 1). Latency that grows while concurrency does not is
  the API getting slower: that becomes the new baseline, and the target grows to match;
- the ceiling grows back by one per round of answers while it is what holds the limit down;
- growth needs proof: the limit never passes twice the most requests in flight (counted when each was
  sent) that were answered near the baseline latency, or what was sent before the first answer,
  which nothing could hold back. Latency that grows with what is asked (a server queueing) proves
  nothing, so the target cannot run ahead of the cut: a struggling server sees at most about twice
  what it serves, not the 64 that a p90 of its queueing delay asks for.

Unpaced (``requests_per_minute=None``) there is no rate to multiply: the ceiling is the limit. It
starts at 8 and doubles each round of answers until the first cut, then grows by one a round.

The baseline is measured from ordinary traffic: this never pins concurrency low to re-measure a
minimum latency (Envoy's gradient controller does, and stalls a slow API while it measures). Like the
other designs this draws on (Netflix's Gradient2 and AIMD limits, TCP's once-per-round cut, BBR's
in-flight cap) and their known pitfalls, answers that carry no latency information are not samples: a 429 is the pacer's
business, and a fast 503 would drag the p90 down and raise the limit.

The logic is synchronous and takes its clock as an argument, so tests drive it in milliseconds with
synthetic latencies; :meth:`AdaptiveLimit.slot` is the asyncio side.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

__all__ = ["AdaptiveLimit", "Outcome", "Slot"]

_HEADROOM = 1.25  # in flight beyond rate x p90: latency varies, and an answer is read before a slot frees
_SAMPLES = 64  # answers the p90 is taken over
_CUT = 0.7  # the ceiling after 5xx or timeouts, as a share of the limit
_FAILING = 0.1  # failing: this share of the last limit's worth of requests failed
_NEAR = 1.1  # a latency within 10% of the baseline counts as the baseline
_QUEUEING = 1.3  # a latency this far above the baseline is the server queueing (if concurrency explains it)
_GREW = 1.2  # concurrency this far above the baseline's grew (not just the jitter of a paced pull)
_UNPACED_START = 8  # the ceiling an unpaced pull starts at
_POLL = 0.05  # s: how often a waiting request looks again when nothing else wakes it (the limit grows with age)


class Outcome(enum.Enum):
    """What an attempt says about the server's load."""

    ANSWERED = "answered"  # an answer (200, or a 4xx that says nothing about load): a latency sample
    OVERLOADED = "overloaded"  # 5xx, timeout or a failed connection: the server is struggling
    THROTTLED = "throttled"  # 429: over the rate budget, which the pacer handles; not a latency sample


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: each send is itself, hashed by identity
class _Sent:
    number: int  # sends so far, this one included: what was sent after a cut is news
    at: float
    in_flight: int  # requests in flight once this one was sent, itself included


class AdaptiveLimit:
    """The in-flight limit of one pull: fixed (``fixed=n``) or following latency, as above.

    ``rate`` gives the pace in requests a second (None: unpaced, so the target is ``max_concurrency``).
    """

    def __init__(
        self,
        max_concurrency: int,
        rate: Callable[[], float | None],
        *,
        fixed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_concurrency = fixed if fixed is not None else max_concurrency
        self.fixed = fixed
        self._rate = rate
        self._clock = clock
        # Unpaced, Little's law gives no target: start where a fixed limit would, and double each
        # round until the server first says it is enough (TCP's slow start).
        self._ceiling = float(self.max_concurrency if rate() is not None else min(_UNPACED_START, self.max_concurrency))
        self._slow_start = rate() is None
        self._latencies: deque[float] = deque(maxlen=_SAMPLES)
        self._outstanding: set[_Sent] = set()  # requests in flight, for their ages
        self._ends: deque[bool] = deque(maxlen=_SAMPLES)  # whether each request sent since the last cut failed
        self._round: list[tuple[float, int, bool]] = []  # (latency, in flight, news) of answers since the last look
        self._baseline: tuple[float, float] | None = None  # (latency, in flight) when latency was at its base
        self._sends = 0
        self._proven = 0  # the most in flight at a send whose answer came near the baseline latency
        self._sent_blind: int | None = None  # sent before the first answer: the cap's floor
        self._sends_at_cut = 0
        self._in_use = 0  # slots held: requests in flight and those waiting for the pacer
        self._changed: asyncio.Event | None = None

    # --- the logic ---

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        if self.fixed is not None:
            return self.fixed
        rate = self._rate()
        target = self.max_concurrency if rate is None else math.ceil(rate * self.p90() * _HEADROOM) + 1
        return max(1, min(target, int(self._ceiling), self._proof(), self.max_concurrency))

    def _proof(self) -> int:
        """How far the limit may grow on what answers have shown (no answer yet: as far as it likes)."""
        if self._sent_blind is None:
            return self.max_concurrency
        return max(self._sent_blind, 2 * self._proven)

    def p90(self) -> float:
        """The p90 latency of the last answers and the ages of requests in flight (0 before any)."""
        now = self._clock()
        values = [*self._latencies, *(now - s.at for s in self._outstanding)]
        if not values:
            return 0.0
        values.sort()
        return values[min(len(values) - 1, math.ceil(0.9 * len(values)) - 1)]

    def sent(self) -> _Sent:
        """A request goes out now; pass what this returns to :meth:`done`."""
        self._sends += 1
        sent = _Sent(self._sends, self._clock(), len(self._outstanding) + 1)
        self._outstanding.add(sent)
        return sent

    def forget(self, sent: _Sent) -> None:
        """The request ``sent`` was cut short (cancelled, or no answer of any kind): learn nothing from it."""
        self._outstanding.discard(sent)

    def done(self, sent: _Sent, outcome: Outcome) -> None:
        """The request ``sent`` ended with ``outcome``."""
        now = self._clock()
        self._outstanding.discard(sent)
        if self.fixed is not None:
            return
        news = sent.number > self._sends_at_cut  # sent after the last cut: what it says is about the limit now
        if outcome is Outcome.THROTTLED:
            return
        if news:
            self._ends.append(outcome is Outcome.OVERLOADED)
        if outcome is Outcome.OVERLOADED:
            recent = list(self._ends)[-max(10, self.limit) :]
            if news and sum(recent) >= _FAILING * len(recent):
                self._cut(self.limit * _CUT)
            return
        latency = now - sent.at
        self._latencies.append(latency)
        if self._sent_blind is None:
            self._sent_blind = self._sends
        base = self._baseline[0] if self._baseline is not None else min(self._latencies)
        if latency <= _NEAR * base:
            self._proven = max(self._proven, sent.in_flight)
        if news and self._ceiling < self.max_concurrency and self._binds():
            self._ceiling = min(self.max_concurrency, self._ceiling + (1 if self._slow_start else 1 / self._ceiling))
        self._round.append((latency, sent.in_flight, news))
        if len(self._round) >= max(4, math.ceil(self.limit / 2)):
            self._look()
        self._wake()

    def _binds(self) -> bool:
        """Whether the ceiling, not the latency target, is what holds the limit now."""
        rate = self._rate()
        return rate is None or math.ceil(rate * self.p90() * _HEADROOM) + 1 > self._ceiling

    def _look(self) -> None:
        """Compare the round of answers just ended with the baseline: queueing, slowing, or neither.

        A round mostly of requests sent before the last cut only ever lowers the baseline: their
        latency is what the cut was about."""
        latency = statistics.median(lat for lat, _, _ in self._round)
        in_flight = statistics.median(n for _, n, _ in self._round)
        news = sum(news for _, _, news in self._round) * 2 >= len(self._round)
        self._round.clear()
        if self._baseline is None:
            self._baseline = (latency, in_flight)
            return
        base, base_in_flight = self._baseline
        if latency <= _NEAR * base:
            self._baseline = (min(base, latency), in_flight)
        elif latency > _QUEUEING * base and news:
            # Queueing: concurrency grew, by enough to explain the latency (a server at capacity answers
            # no faster as more is asked: latency grows in proportion to the requests in flight).
            if in_flight / base_in_flight >= max(_GREW, 0.5 * latency / base):
                # Not below the concurrency the baseline was measured at: it was served without queueing.
                self._cut(max(base_in_flight, in_flight * base / latency))
            else:
                self._baseline = (latency, in_flight)  # the API itself is slower now

    def _cut(self, ceiling: float) -> None:
        self._ceiling = max(1.0, min(self._ceiling, ceiling))
        self._slow_start = False
        self._sends_at_cut = self._sends
        self._ends.clear()

    def describe(self) -> str:
        """The limit and what it is made of, for a DEBUG log line."""
        rate = self._rate()
        pace = "unpaced" if rate is None else f"pace {rate * 60:.0f}/min"
        return f"concurrency {self.limit} ({len(self._outstanding)} in flight, p90 {self.p90():.2f}s, {pace})"

    # --- the asyncio side ---

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Hold one of the ``limit`` slots; tell the slot when each attempt is sent and how it ended."""
        while self._in_use >= self.limit:
            changed = self._changed = self._changed or asyncio.Event()
            # The limit also grows as requests in flight age, which no event announces: look again soon.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), _POLL)
        self._in_use += 1
        slot = Slot(self)
        try:
            yield slot
        finally:
            slot.abandon()
            self._in_use -= 1
            self._wake()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None


class Slot:
    """One request's place among those in flight, held across its retries."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self._limit = limit
        self._sent: _Sent | None = None

    def sent(self) -> None:
        """This attempt goes out now (after the pacer's wait, so the wait is not latency)."""
        self._sent = self._limit.sent()

    def done(self, outcome: Outcome) -> None:
        """This attempt ended: its latency is measured from :meth:`sent`."""
        if self._sent is not None:
            self._limit.done(self._sent, outcome)
            self._sent = None

    def abandon(self) -> None:
        """An attempt cut short (cancelled, or an error that is no answer): forget it, learn nothing."""
        if self._sent is not None:
            self._limit.forget(self._sent)
            self._sent = None
