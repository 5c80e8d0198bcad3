"""The adaptive in-flight limit, driven in simulated time: synthetic latencies and outcomes, no sleeping."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

import capframe
from capframe._concurrency import AdaptiveLimit, Outcome
from capframe.errors import ArgumentTypeError, InvalidArgumentError

RPM = 1000
RATE = RPM / 60


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# What a simulated server does with a request that finds n requests in flight (itself included):
# its latency and how it ends.
Server = Callable[[int, float], tuple[float, Outcome]]


def steady(latency: float) -> Server:
    return lambda n, t: (latency, Outcome.ANSWERED)


def degrading(latency: float, capacity: int) -> Server:
    """Latency grows in proportion to the requests in flight beyond ``capacity``; 503s beyond twice it
    (what ``Sandbox(capacity=...)`` does)."""

    def serve(n: int, t: float) -> tuple[float, Outcome]:
        if n > 2 * capacity:
            return 0.001, Outcome.OVERLOADED
        return latency * max(1.0, n / capacity), Outcome.ANSWERED

    return serve


@dataclass
class Run:
    seconds: float = 0.0
    sent: int = 0
    outcomes: dict[Outcome, int] = field(default_factory=dict)
    limits: list[tuple[float, int]] = field(default_factory=list)  # (time, limit) at each send
    in_flight: list[tuple[float, int]] = field(default_factory=list)  # (time, in flight with it) at each send

    def limit_at(self, t: float) -> int:
        return [limit for when, limit in self.limits if when <= t][-1]


def simulate(server: Server, requests: int, *, rpm: float | None = RPM, max_concurrency: int = 64) -> Run:
    """``requests`` requests paced at ``rpm``, as many in flight as the limit allows; failed ones are
    asked again. Time jumps from event to event."""
    clock = Clock()
    interval = 60 / rpm if rpm else 0.0
    limit = AdaptiveLimit(max_concurrency, (lambda: 1 / interval) if interval else (lambda: None), clock=clock)
    run = Run()
    pending, next_send, order = requests, 0.0, itertools.count()
    in_flight: list[tuple[float, int, object, Outcome]] = []
    while pending or in_flight:
        if pending and clock.now >= next_send and len(in_flight) < limit.limit:
            sent = limit.sent()
            latency, outcome = server(sent.in_flight, clock.now)
            heapq.heappush(in_flight, (clock.now + latency, next(order), sent, outcome))
            run.limits.append((clock.now, limit.limit))
            run.in_flight.append((clock.now, sent.in_flight))
            run.sent += 1
            pending -= 1
            next_send = clock.now + interval
            continue
        times = [in_flight[0][0]] if in_flight else []
        if pending:
            # At the limit, the limit itself grows as requests age: look again a little later.
            times.append(max(next_send, clock.now + 0.05) if len(in_flight) >= limit.limit else next_send)
        clock.now = max(clock.now, min(times))
        while in_flight and in_flight[0][0] <= clock.now:
            _, _, done, outcome = heapq.heappop(in_flight)
            limit.done(done, outcome)  # type: ignore[arg-type]
            run.outcomes[outcome] = run.outcomes.get(outcome, 0) + 1
            if outcome is not Outcome.ANSWERED:
                pending += 1
    run.seconds = clock.now
    return run


def floor(requests: int, latency: float) -> float:
    """The soonest the budget allows: the last request sent (requests - 1) x 60/R in, answered latency later."""
    return (requests - 1) * 60 / RPM + latency


@pytest.mark.parametrize("latency", [0.05, 0.5, 1.0, 2.0, 3.0])
def test_the_pacer_not_the_concurrency_is_the_limit_at_any_latency(latency: float) -> None:
    run = simulate(steady(latency), 100)
    assert run.seconds <= 1.02 * floor(100, latency)
    # A fixed 8 in flight serves 8 / latency requests a second: slower than the budget beyond 0.48 s.
    fixed_eight = (100 - 1) / min(RATE, 8 / latency) + latency
    if latency >= 1.0:
        assert fixed_eight > 1.5 * run.seconds


@pytest.mark.parametrize("latency", [0.5, 1.0, 3.0])
def test_the_target_is_littles_law_with_headroom(latency: float) -> None:
    run = simulate(steady(latency), 400)
    expected = min(64, math.ceil(RATE * latency * 1.25) + 1)
    late = [limit for t, limit in run.limits if t > 2 * latency + 1]
    assert set(late) == {expected}


def test_before_the_first_answer_requests_keep_the_pace() -> None:
    """Outstanding requests' ages bound their latency from below: the limit grows while they wait."""
    run = simulate(steady(3.0), 100)
    sends_before_first_answer = [t for t, _ in run.limits if t < 3.0]
    assert len(sends_before_first_answer) == math.ceil(3.0 * RATE)


def test_unpaced_starts_at_8_and_doubles_each_round_up_to_the_max() -> None:
    run = simulate(steady(1.0), 300, rpm=None, max_concurrency=40)
    assert [run.limit_at(t) for t in (0.5, 1.5, 2.5, 3.5)] == [8, 16, 32, 40]


def test_unpaced_against_a_server_at_capacity_settles_near_it() -> None:
    run = simulate(degrading(1.0, capacity=12), 600, rpm=None)
    assert run.outcomes.get(Outcome.OVERLOADED, 0) / run.sent < 0.01
    settled = [limit for t, limit in run.limits if t > 10]
    assert 10 <= sum(settled) / len(settled) <= 16


def test_a_fixed_limit_stays_fixed() -> None:
    clock = Clock()
    limit = AdaptiveLimit(64, lambda: RATE, fixed=8, clock=clock)
    sent = [limit.sent() for _ in range(8)]
    clock.now = 5.0
    for s in sent:
        limit.done(s, Outcome.OVERLOADED)
    assert limit.limit == 8


def steady_limit(latency: float = 1.0) -> tuple[AdaptiveLimit, Clock]:
    """A limit that has seen 64 answers at a steady latency, sent at the pace (RATE x latency in flight)."""
    clock = Clock()
    limit = AdaptiveLimit(64, lambda: RATE, clock=clock)
    in_flight: list[tuple[float, int, object]] = []
    for i in range(65):
        while in_flight and (i == 64 or in_flight[0][0] <= i / RATE):  # answers due before the next send
            clock.now, _, sent = heapq.heappop(in_flight)
            limit.done(sent, Outcome.ANSWERED)  # type: ignore[arg-type]
        if i < 64:
            clock.now = i / RATE
            heapq.heappush(in_flight, (clock.now + latency, i, limit.sent()))
    return limit, clock


def test_failures_cut_multiplicatively_once_per_round() -> None:
    limit, clock = steady_limit()
    before = limit.limit
    assert before == math.ceil(RATE * 1.25) + 1
    in_flight = [limit.sent() for _ in range(before)]
    clock.now += 1.0
    for sent in in_flight:  # one burst of 5xx/timeouts: every request in flight failed
        limit.done(sent, Outcome.OVERLOADED)
    after = limit.limit
    assert after == int(before * 0.7)
    # The failure of a request sent after the cut is news: with nothing but failures since, it cuts again.
    sent = limit.sent()
    clock.now += 0.1
    limit.done(sent, Outcome.OVERLOADED)
    assert limit.limit == int(after * 0.7)


def test_a_few_random_5xx_among_many_answers_do_not_cut() -> None:
    count = itertools.count()

    def flaky(n: int, t: float) -> tuple[float, Outcome]:  # one request in 40 fails: not overloaded
        return (3.0, Outcome.OVERLOADED) if next(count) % 40 == 39 else (3.0, Outcome.ANSWERED)

    run = simulate(flaky, 600)
    assert {limit for t, limit in run.limits if t > 7} == {64}
    assert run.seconds <= floor(615, 3.0) + 3.0  # the last retries add a latency


def test_the_ceiling_grows_back_by_about_one_a_round() -> None:
    limit, clock = steady_limit()
    for sent in [limit.sent() for _ in range(20)]:
        limit.done(sent, Outcome.OVERLOADED)
    cut = limit.limit
    for _ in range(3 * cut):  # about three rounds of answers at the old latency
        sent = limit.sent()
        clock.now += 1.0
        limit.done(sent, Outcome.ANSWERED)
    assert cut + 2 <= limit.limit <= cut + 4


def test_429s_and_fast_failures_are_not_latency_samples() -> None:
    limit, clock = steady_limit(latency=2.0)
    before = limit.p90()
    for outcome in (Outcome.THROTTLED, Outcome.OVERLOADED):
        for _ in range(64):
            sent = limit.sent()
            clock.now += 0.001
            limit.done(sent, outcome)
    assert limit.p90() == before


def test_a_server_at_capacity_holds_concurrency_near_it_with_few_503s() -> None:
    # Capacity 8 at 1 s serves 8 requests a second, half the budget: asking more only queues.
    run = simulate(degrading(1.0, capacity=8), 600)
    overloaded = run.outcomes.get(Outcome.OVERLOADED, 0)
    assert overloaded / run.sent < 0.01
    settled = [limit for t, limit in run.limits if t > 10]
    assert min(settled) >= 6
    assert max(settled) <= 14
    assert 7 <= sum(settled) / len(settled) <= 12
    # Throughput stays at the server's capacity: 600 requests at 8 a second take about 75 s.
    assert run.seconds < 600 / 8 * 1.15


def queueing(latency: float, capacity: int) -> Server:
    """Latency grows in proportion to the requests in flight beyond ``capacity``, without limit: it
    answers ``capacity / latency`` requests a second however many are asked."""
    return lambda n, t: (latency * max(1.0, n / capacity), Outcome.ANSWERED)


@pytest.mark.parametrize(("latency", "capacity"), [(0.4, 8), (0.2, 4), (1.0, 20)])
def test_a_struggling_server_never_sees_much_more_than_twice_what_it_serves(latency: float, capacity: int) -> None:
    """The issue's case: 3,000 a minute against a server that serves 20 a second. The p90 of its
    queueing delay raised the target to 64 in flight within 2 s (latency 3.2 s) before a cut: the limit
    only grows past twice the concurrency answered near the baseline latency, or what was sent before
    the first answer (the pace times the first latency)."""
    rpm = 3000
    run = simulate(queueing(latency, capacity), 400, rpm=rpm)
    blind = math.ceil(rpm / 60 * latency)  # sent before any answer could say anything
    assert max(n for _, n in run.in_flight) <= blind + 1
    assert max(limit for t, limit in run.limits if t > 3 * latency + 1) <= 2 * capacity
    assert run.seconds <= 1.1 * 400 / (capacity / latency)  # the server's own pace is still reached


def test_a_queueing_cut_keeps_the_concurrency_the_baseline_was_measured_at() -> None:
    """At 2 in flight, latency doubling as a third is sent (a busy client's own jitter, or a server at
    capacity) cuts to 2, not to 3 x 1/2 = 1.5 -> 1: two were served at the baseline."""
    clock = Clock()
    limit = AdaptiveLimit(64, lambda: RATE, clock=clock)
    for in_flight, latency in [(2, 0.05)] * 8 + [(3, 0.1)] * 4:
        pending = [limit.sent() for _ in range(in_flight)]
        clock.now += latency
        limit.done(pending[-1], Outcome.ANSWERED)
        for sent in pending[:-1]:
            limit.forget(sent)
    assert limit.limit == 2


def test_an_api_that_slows_at_the_same_concurrency_gets_more_in_flight() -> None:
    """Latency that grows while concurrency does not is the API, not queueing: no cut, Little's law."""

    def slows_down(n: int, t: float) -> tuple[float, Outcome]:
        return (0.5 if t < 10 else 2.0), Outcome.ANSWERED

    run = simulate(slows_down, 800)
    assert run.limit_at(9.9) == math.ceil(RATE * 0.5 * 1.25) + 1
    assert run.limit_at(40) == math.ceil(RATE * 2.0 * 1.25) + 1
    # Sent at the pace throughout: the slowdown costs about the new latency, not a stall.
    assert run.seconds <= 1.05 * floor(800, 2.0)


def test_slots_wait_for_the_limit_and_free_on_exit() -> None:
    asyncio.run(asyncio.wait_for(_slots_wait_for_the_limit(), 10))


async def _slots_wait_for_the_limit() -> None:
    limit = AdaptiveLimit(64, lambda: RATE, fixed=2)
    held: list[int] = []
    release = asyncio.Event()

    async def request(i: int) -> None:
        async with limit.slot() as slot:
            slot.sent()
            held.append(i)
            await release.wait()
            slot.done(Outcome.ANSWERED)

    tasks = [asyncio.create_task(request(i)) for i in range(5)]
    await asyncio.sleep(0.1)
    assert held == [0, 1]
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert sorted(held) == [0, 1, 2, 3, 4]


def test_a_waiting_request_gets_a_slot_as_the_limit_grows_with_age() -> None:
    """No answer arrives, yet the limit rises as the first requests age: waiters must notice."""
    asyncio.run(asyncio.wait_for(_limit_grows_with_age(), 10))


async def _limit_grows_with_age() -> None:
    limit = AdaptiveLimit(64, lambda: 100.0)  # 100 a second: 0.1 s in flight asks for ~14
    started = asyncio.Event()
    count = 0

    async def request() -> None:
        nonlocal count
        async with limit.slot() as slot:
            slot.sent()
            count += 1
            await started.wait()

    tasks = [asyncio.create_task(request()) for _ in range(10)]
    await asyncio.sleep(0.3)
    assert count == 10
    started.set()
    await asyncio.gather(*tasks)


# --- through the client ---


def test_concurrency_is_auto_by_default_and_an_int_still_fixes_it() -> None:
    client = capframe.Client("eu", username="u", password="p")
    assert (client.concurrency, client.max_concurrency) == ("auto", 64)
    assert capframe.Client("eu", username="u", password="p", concurrency=3).concurrency == 3
    with pytest.raises(InvalidArgumentError, match='"auto" or an int'):
        capframe.Client("eu", username="u", password="p", concurrency="fast")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match='"auto" or an int'):
        capframe.Client("eu", username="u", password="p", concurrency=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="max_concurrency"):
        capframe.Client("eu", username="u", password="p", max_concurrency=0)


def sends(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int]]:
    """(limit, in flight) from capframe's DEBUG line at each send."""
    found = (re.search(r"sent; concurrency (\d+) \((\d+) in flight", r.getMessage()) for r in caplog.records)
    return [(int(m[1]), int(m[2])) for m in found if m]


def test_auto_keeps_as_many_in_flight_as_latency_asks_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    # 2,000 a minute at 0.6 s: about 20 in flight spend the budget, where a fixed 8 could not.
    client = capframe.Client.sandbox(3000, latency=0.6, requests_per_minute=2000)
    assert client.sandbox_org is not None
    ids = client.sandbox_org.customer_ids(3000)
    with caplog.at_level(logging.DEBUG, logger="capframe"):
        frame = capframe.fetch_customers(ids, "INSTORE", client=client, progress=False)
    assert frame.height == 3000
    assert max(in_flight for _, in_flight in sends(caplog)) > 12
    line = next(r.getMessage() for r in caplog.records if "sent; concurrency" in r.getMessage())
    assert re.search(r"concurrency \d+ \(\d+ in flight, p90 \d+\.\d\ds, pace 1980/min\)", line)


def test_a_fixed_concurrency_is_never_exceeded(caplog: pytest.LogCaptureFixture) -> None:
    client = capframe.Client.sandbox(2000, latency=0.3, requests_per_minute=3000, concurrency=3)
    assert client.sandbox_org is not None
    with caplog.at_level(logging.DEBUG, logger="capframe"):
        capframe.fetch_customers(client.sandbox_org.customer_ids(2000), "INSTORE", client=client, progress=False)
    assert {limit for limit, _ in sends(caplog)} == {3}
    assert max(in_flight for _, in_flight in sends(caplog)) == 3


def test_a_pull_from_a_degrading_sandbox_loses_nothing() -> None:
    client = capframe.Client.sandbox(3000, latency=0.2, capacity=3, requests_per_minute=3000)
    org = client.sandbox_org
    assert org is not None
    frame = capframe.fetch_customers(org.customer_ids(3000), "INSTORE", client=client, progress=False)
    reference = capframe.Client.sandbox(3000, requests_per_minute=None)
    expected = capframe.fetch_customers(org.customer_ids(3000), "INSTORE", client=reference, progress=False)
    assert frame.sort("customer_id").equals(expected.sort("customer_id"))
    # How near the capacity the limit settles is timing: on a busy machine the client's own delays look
    # like the server queueing (this failed 2 runs in 7 under load). It is asserted in simulated time by
    # test_a_server_at_capacity_holds_concurrency_near_it_with_few_503s and measured by bench_fetch (d).
